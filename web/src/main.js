// kaocap viewer: the video with the overlay, the 3D head and the blendshape bars, fed by the
// WebSocket of `kaocap serve`. window.kaocapViewer exposes the live state (tests read
// kaocapViewer.jawOpen, the head mesh's own morph weight); every applied result also fires a
// `kaocap:frame` event on window.
import { Bars } from './bars.js';
import { connect } from './connection.js';
import { HeadView } from './head.js';

const $ = (id) => document.getElementById(id);
const head = new HeadView($('head'), $('head-note'));
const bars = new Bars($('bars'));
const state = { connected: false, frames: 0, images: 0, frame: null, timestampMs: null, faces: 0 };
const rate = { count: 0, since: performance.now() };
let imageUrl = null;

window.kaocapViewer = Object.freeze({
  get connected() { return state.connected; },
  get frames() { return state.frames; },
  get images() { return state.images; },
  get frame() { return state.frame; },
  get timestampMs() { return state.timestampMs; },
  get faces() { return state.faces; },
  get ready() { return head.mesh !== null; },
  get webgl() { return head.renderer !== null; },
  get jawOpen() { return head.influence('jawOpen'); },
  get headQuaternionWxyz() { return head.quaternionWxyz(); },
  morph: (name) => head.influence(name),
});

function onStatus(connected) {
  state.connected = connected;
  $('status').textContent = connected ? 'live' : 'reconnecting…';
  $('status').classList.toggle('live', connected);
}

function onResult(result) {
  state.frames += 1;
  state.frame = result.frame;
  state.timestampMs = result.timestamp_ms;
  state.faces = result.faces.length;
  const face = result.faces[0];
  if (face) {
    head.update(face);
    bars.update(face.blendshapes, face.blendshapes_missing);
    const { yaw_deg: yaw, pitch_deg: pitch, roll_deg: roll } = face.pose;
    $('pose').textContent = `yaw ${yaw.toFixed(0)}°  pitch ${pitch.toFixed(0)}°  roll ${roll.toFixed(0)}°`;
  } else {
    $('pose').textContent = 'no face';
  }
  countRate();
  window.dispatchEvent(new CustomEvent('kaocap:frame', { detail: { frame: result.frame, timestampMs: result.timestamp_ms } }));
}

function onImage(blob) {
  const previous = imageUrl;
  imageUrl = URL.createObjectURL(blob);
  $('video').src = imageUrl;
  if (previous) URL.revokeObjectURL(previous);
  state.images += 1;
  $('video-empty').hidden = true;
}

function countRate() {
  rate.count += 1;
  const now = performance.now();
  if (now - rate.since < 1000) return;
  $('rate').textContent = `${((1000 * rate.count) / (now - rate.since)).toFixed(0)} frames/s`;
  rate.count = 0;
  rate.since = now;
}

connect({ onResult, onImage, onStatus });
