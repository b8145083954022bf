// The 3D head: MediaPipe's canonical face with 52 ARKit morph targets (head.glb, made by
// scripts/make_viewer_head.py). Frames match kaocap.types: the face model frame has x to the
// subject's left, y up, z out of the face, and the pose rotates it into the camera frame (x to
// the image right, y up, z towards the viewer), which is three.js's view of a camera on +z.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

const HEAD_URL = 'head.glb';
const CAMERA_DISTANCE_CM = 55;
const CAMERA_FOV_DEG = 26;
// How far the eyeballs turn at eyeLook* = 1, degrees.
const GAZE_YAW_DEG = 30;
const GAZE_PITCH_DEG = 25;
const SKIN = 0xd8a890;

export class HeadView {
  constructor(canvas, note) {
    this.canvas = canvas;
    this.note = note;
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(CAMERA_FOV_DEG, 1, 1, 1000);
    this.camera.position.set(0, 0, CAMERA_DISTANCE_CM);
    this.head = new THREE.Group();
    this.scene.add(this.head, new THREE.HemisphereLight(0xffffff, 0x404050, 1.6));
    const key = new THREE.DirectionalLight(0xffffff, 2.2);
    key.position.set(-20, 30, 60);
    this.scene.add(key);
    this.mesh = null;
    this.eyes = {};
    this.dirty = true;
    this.frozen = false;
    this.renderer = this.makeRenderer();
    this.loaded = new GLTFLoader()
      .loadAsync(HEAD_URL)
      .then((gltf) => this.adopt(gltf.scene))
      .catch((error) => this.say(`cannot load ${HEAD_URL}: ${error.message ?? error}`));
  }

  makeRenderer() {
    try {
      const renderer = new THREE.WebGLRenderer({ canvas: this.canvas, antialias: true, alpha: true });
      renderer.setPixelRatio(window.devicePixelRatio);
      new ResizeObserver(() => this.resize()).observe(this.canvas);
      renderer.setAnimationLoop(() => this.render());
      return renderer;
    } catch (error) {
      this.say('WebGL is not available: the head is not drawn (its morph weights still follow)');
      return null;
    }
  }

  say(text) {
    this.note.textContent = text;
    this.note.hidden = false;
  }

  adopt(scene) {
    scene.traverse((object) => {
      if (object.isMesh && object.morphTargetDictionary) this.mesh = object;
    });
    if (!this.mesh) throw new Error('no mesh with morph targets');
    this.mesh.material = new THREE.MeshStandardMaterial({
      color: SKIN, roughness: 0.6, metalness: 0, flatShading: true, side: THREE.DoubleSide,
    });
    this.head.add(this.mesh);
    for (const side of ['eyeLeft', 'eyeRight']) {
      const spec = this.mesh.userData[side];
      if (spec) this.eyes[side] = this.makeEye(spec);
    }
    this.dirty = true;
  }

  makeEye({ center, radius }) {
    const eye = new THREE.Group();
    eye.position.fromArray(center);
    const white = new THREE.MeshStandardMaterial({ color: 0xf2efe8, roughness: 0.3 });
    const iris = new THREE.MeshStandardMaterial({ color: 0x3b2a20, roughness: 0.3 });
    eye.add(new THREE.Mesh(new THREE.SphereGeometry(radius, 24, 16), white));
    const pupil = new THREE.Mesh(new THREE.SphereGeometry(radius * 0.45, 16, 12), iris);
    pupil.position.z = radius * 0.62;
    eye.add(pupil);
    this.head.add(eye);
    return eye;
  }

  influence(name) {
    const index = this.mesh?.morphTargetDictionary[name];
    return index === undefined ? null : this.mesh.morphTargetInfluences[index];
  }

  quaternionWxyz() {
    const { w, x, y, z } = this.head.quaternion;
    return [w, x, y, z];
  }

  update(face) {
    const [w, x, y, z] = face.pose.quaternion_wxyz;
    this.head.quaternion.set(x, y, z, w);
    if (this.mesh) {
      const dictionary = this.mesh.morphTargetDictionary;
      const influences = this.mesh.morphTargetInfluences;
      for (const [name, value] of Object.entries(face.blendshapes)) {
        const index = dictionary[name];
        if (index !== undefined) influences[index] = value;
      }
    }
    this.gaze(face.blendshapes);
    this.dirty = true;
  }

  gaze(b) {
    const turn = (eye, yaw, pitch) => {
      if (!eye) return;
      eye.rotation.set(THREE.MathUtils.degToRad(pitch * GAZE_PITCH_DEG), THREE.MathUtils.degToRad(yaw * GAZE_YAW_DEG), 0);
    };
    // Looking out turns the subject's left eye towards +x and the right eye towards -x.
    turn(this.eyes.eyeLeft, b.eyeLookOutLeft - b.eyeLookInLeft, b.eyeLookDownLeft - b.eyeLookUpLeft);
    turn(this.eyes.eyeRight, b.eyeLookInRight - b.eyeLookOutRight, b.eyeLookDownRight - b.eyeLookUpRight);
  }

  resize() {
    const { clientWidth: width, clientHeight: height } = this.canvas;
    if (!width || !height) return;
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.dirty = true;
  }

  // Frozen: the mesh keeps following the results, the canvas keeps its last picture.
  freeze(on) {
    if (on) this.render();
    this.frozen = on;
    this.dirty = true;
  }

  render() {
    if (!this.dirty || this.frozen || !this.renderer) return;
    this.dirty = false;
    this.renderer.render(this.scene, this.camera);
  }
}
