"""The committed head.glb: valid GLB, MediaPipe's canonical mesh, 52 ARKit morph targets in
kaocap's order that move the right parts, and the sources/licence note that travels with it."""

from __future__ import annotations

import hashlib

import numpy as np

from kaocap.constants import BLENDSHAPES, LANDMARK_LOWER_LIP, LANDMARK_UPPER_LIP
from kaocap.pose.process import load_face_geometry
from kaocap.viewer.server import HEAD_PATH
from tests.viewer._glb import accessor, read_glb


def test_head_is_the_canonical_face_with_52_arkit_targets() -> None:
    gltf, blob = read_glb(HEAD_PATH)
    mesh = gltf["meshes"][0]
    primitive = mesh["primitives"][0]
    assert mesh["extras"]["targetNames"] == list(BLENDSHAPES)
    assert len(primitive["targets"]) == len(mesh["weights"]) == 52
    geometry = load_face_geometry()
    positions = accessor(gltf, blob, primitive["attributes"]["POSITION"])
    np.testing.assert_allclose(positions, geometry.canonical, atol=1e-5)
    triangles = accessor(gltf, blob, primitive["indices"]).reshape(-1, 3)
    np.testing.assert_array_equal(triangles, geometry.triangles)
    eyes = gltf["nodes"][0]["extras"]
    assert eyes["eyeLeft"]["center"][0] > 0 > eyes["eyeRight"]["center"][0]  # x: subject's left


def test_targets_move_the_right_parts() -> None:
    gltf, blob = read_glb(HEAD_PATH)
    targets = {name: accessor(gltf, blob, t["POSITION"]) for name, t in
               zip(BLENDSHAPES, gltf["meshes"][0]["primitives"][0]["targets"])}  # fmt: skip
    jaw = targets["jawOpen"]
    assert jaw[LANDMARK_LOWER_LIP, 1] < -2.0 and abs(jaw[LANDMARK_UPPER_LIP, 1]) < 0.5  # cm
    lower_inner, upper_inner = (
        [95, 88, 178, 87, 14, 317, 402, 318, 324],
        [191, 80, 81, 82, 13, 312, 311, 310, 415],
    )
    assert (
        jaw[lower_inner, 1].max() < -1.5 and jaw[upper_inner, 1].min() > -1.0
    )  # the mouth opens, whole
    x = load_face_geometry().canonical[:, 0]
    for side, sign in (("Left", 1), ("Right", -1)):
        moved = np.linalg.norm(targets[f"eyeBlink{side}"], axis=1)
        assert moved[sign * x > 0].sum() > 10 * moved[sign * x < 0].sum()
    assert not targets["tongueOut"].any()  # no ICT shape, no tongue
    assert all(targets[name].any() for name in BLENDSHAPES if name != "tongueOut")


def test_note_names_sources_licences_and_this_file() -> None:
    gltf, _ = read_glb(HEAD_PATH)
    assert "ICT-FaceKit" in gltf["asset"]["copyright"] and "MediaPipe" in gltf["asset"]["copyright"]
    note = HEAD_PATH.with_name("head.glb.md").read_text()
    assert hashlib.sha256(HEAD_PATH.read_bytes()).hexdigest() in note
    assert "MIT License" in note and "Apache" in note and "make_viewer_head.py" in note
