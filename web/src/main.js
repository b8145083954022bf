// kaocap viewer: the video with the overlay, the 3D head and the blendshape bars, fed by the
// WebSocket of `kaocap serve`. Space freezes the display (results keep being applied to the
// state and the head mesh). window.kaocapViewer exposes the live state (tests read
// kaocapViewer.jawOpen, the head mesh's own morph weight); every applied result also fires a
// `kaocap:frame` event on window.
import { Bars } from './bars.js';
import { connect } from './connection.js';
import { HeadView } from './head.js';

const $ = (id) => document.getElementById(id);
const head = new HeadView($('head'), $('head-note'));
const bars = new Bars($('bars'));
const state = { connected: false, frozen: false, frames: 0, images: 0, frame: null, timestampMs: null, faces: 0 };
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
  get frozen() { return state.frozen; },
  morph: (name) => head.influence(name),
  freeze,
});

function freeze(on = !state.frozen) {
  state.frozen = on;
  head.freeze(on);
  $('status').textContent = on ? 'frozen (space)' : state.connected ? 'live' : 'reconnecting…';
}

window.addEventListener('keydown', (event) => {
  if (event.code !== 'Space' || event.repeat) return;
  event.preventDefault();
  freeze();
});

function onStatus(connected) {
  state.connected = connected;
  $('status').textContent = state.frozen ? 'frozen (space)' : connected ? 'live' : 'reconnecting…';
  $('status').classList.toggle('live', connected);
}

function onResult(result) {
  state.frames += 1;
  state.frame = result.frame;
  state.timestampMs = result.timestamp_ms;
  state.faces = result.faces.length;
  const face = result.faces[0];
  if (face) head.update(face);
  if (!state.frozen) show(face);
  countRate();
  window.dispatchEvent(new CustomEvent('kaocap:frame', { detail: { frame: result.frame, timestampMs: result.timestamp_ms } }));
}

function show(face) {
  if (face) {
    bars.update(face.blendshapes, face.blendshapes_missing);
    const { yaw_deg: yaw, pitch_deg: pitch, roll_deg: roll } = face.pose;
    $('pose').textContent = `yaw ${yaw.toFixed(0)}°  pitch ${pitch.toFixed(0)}°  roll ${roll.toFixed(0)}°`;
  } else {
    $('pose').textContent = 'no face';
  }
}

function onImage(blob) {
  state.images += 1;
  if (state.frozen) return;
  const previous = imageUrl;
  imageUrl = URL.createObjectURL(blob);
  $('video').src = imageUrl;
  if (previous) URL.revokeObjectURL(previous);
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
