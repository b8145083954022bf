"""Build the browser viewer's head: src/kaocap/viewer/head.glb (+ head.glb.md, sources and licences).

The mesh is MediaPipe's canonical face (468 vertices, 898 triangles, cm, face model frame: ``x``
to the subject's left, ``y`` up, ``z`` out of the face; Apache-2.0), read from the installed
``face_landmarker.task`` by :func:`kaocap.pose.process.load_face_geometry`. Its 52 morph targets,
named and ordered as :data:`kaocap.BLENDSHAPES`, are ICT-FaceKit's expression deltas (MIT)
carried over to the canonical vertices:

1. Alignment: a similarity Procrustes (Umeyama) maps ICT's neutral onto the canonical face using
   :data:`LANDMARK_PAIRS` (canonical vertex, ICT Multi-PIE 68 landmark): eye corners, nose, mouth,
   brows and chin. Both models are in cm with the same axes, so the fit is nearly a translation.
2. Correspondence: each canonical vertex takes the deltas of the nearest ICT face vertex after
   the alignment (mean distance 0.18 cm, largest 0.63 cm, on the chin). The data engine's
   measured table (``src/kaocap/data/_render/ict_mediapipe_correspondence.npz``, MediaPipe's
   landmarks found on ICT renders; ``--measured``) is not the default: ICT's mouth is closed, so
   the table puts the lower inner-lip landmarks on the lip seam, on the upper lip, and jawOpen
   would leave them behind (:func:`check_sides` refuses it). The canonical face's mouth is
   slightly open, which keeps the inner lips apart for the nearest-vertex search.
3. Deltas: ``scale * R @ delta_ict`` per vertex. ARKit ``...Left`` / ``...Right`` are ICT's
   ``_L`` / ``_R`` (the subject's own sides, checked below); ``browInnerUp`` and ``cheekPuff`` are
   the sums of ICT's halves; ``tongueOut`` has no ICT shape and moves nothing (the canonical
   face has no tongue).

The GLB holds one mesh with POSITION, indices and 52 sparse POSITION targets
(``mesh.extras.targetNames``; three.js fills ``morphTargetDictionary`` from it) and, in the
node's ``extras``, each eyeball's centre and radius for the viewer to draw. Run from the
repository root (needs ../shared beside the checkout)::

    python scripts/make_viewer_head.py
"""

from __future__ import annotations

import argparse
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPES
from kaocap.pose.process import load_face_geometry

log = logging.getLogger("make_viewer_head")

ROOT = Path(__file__).resolve().parents[1]
ICT_DIR = ROOT.parent / "shared" / "data" / "heads" / "ict_facekit"
CORRESPONDENCE = ROOT / "src" / "kaocap" / "data" / "_render" / "ict_mediapipe_correspondence.npz"
OUT = ROOT / "src" / "kaocap" / "viewer" / "head.glb"

NUM_MESH_VERTICES = 468
#: ICT's face part: vertices [0, 9409) (ICT-FaceKit README, "Face" geometry).
ICT_FACE_VERTICES = 9409
#: (canonical vertex, ICT Multi-PIE 68 landmark index) pairs for the alignment.
LANDMARK_PAIRS: tuple[tuple[int, int], ...] = (
    (33, 36), (133, 39), (362, 42), (263, 45),  # eye corners
    (4, 30), (2, 33),                            # nose tip, below the nose
    (61, 48), (291, 54), (0, 51), (17, 57),      # mouth corners, lip centres
    (105, 19), (334, 24), (152, 8),              # brows, chin
)  # fmt: skip
#: Canonical inner-lip vertices between the mouth corners (78 and 308), lower and upper.
LOWER_INNER_LIP = (95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_INNER_LIP = (191, 80, 81, 82, 13, 312, 311, 310, 415)
#: ARKit shapes that are the sum of two ICT halves.
ICT_SUMS = {
    "browInnerUp": ("browInnerUp_L", "browInnerUp_R"),
    "cheekPuff": ("cheekPuff_L", "cheekPuff_R"),
}
#: Canonical eye-contour vertices (corners, top, bottom) that place each eyeball.
EYE_CONTOURS = {"eyeRight": (33, 133, 159, 145), "eyeLeft": (263, 362, 386, 374)}
#: How far the eyeball centre sits behind the eye contour, and its radius, cm.
EYE_DEPTH_CM, EYE_RADIUS_CM = 1.1, 1.2
#: Target deltas smaller than this (cm, every axis) are left out of the sparse accessors.
SPARSE_EPS_CM = 0.002

_FLOAT, _USHORT, _ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 5126, 5123, 34962, 34963


def umeyama(src: NDArray[np.float64], dst: NDArray[np.float64]) -> tuple[float, NDArray, NDArray]:
    """Similarity (scale, (3, 3) rotation, (3,) translation) with ``dst ~ s * R @ src + t``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt))
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / (a**2).sum(1).mean())
    return scale, rotation, mu_d - scale * rotation @ mu_s


def nearest(points: NDArray[np.float64], cloud: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """(index into ``cloud``, distance) of each point's nearest cloud point."""
    d2 = (points**2).sum(1)[:, None] - 2 * points @ cloud.T + (cloud**2).sum(1)[None, :]
    idx = d2.argmin(1)
    return idx, np.sqrt(np.maximum(d2[np.arange(len(points)), idx], 0.0))


@dataclass(frozen=True)
class Transfer:
    """How ICT deltas reach the canonical vertices: ``delta_canonical[i] = scale * rotation @
    sum_k weights[i, k] * delta_ict[ict_vertices[i, k]]``. ict_vertices, weights: (468, K)."""

    ict_vertices: NDArray[np.intp]
    weights: NDArray[np.float64]
    rotation: NDArray[np.float64]
    scale: float
    source: str


def measured_transfer(path: Path = CORRESPONDENCE) -> Transfer:
    """The data engine's measured table (barycentric points on ICT, canonical -> ICT similarity)."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing")
    with np.load(path) as data:
        n = NUM_MESH_VERTICES
        return Transfer(data["ict_vertices"][:n].astype(np.intp), data["weights"][:n].astype(np.float64),
                        data["canonical_rotation"].T, 1.0 / float(data["canonical_scale"]),
                        f"measured table {path.relative_to(ROOT)}")  # fmt: skip


def nearest_transfer(canonical: NDArray, ict_neutral: NDArray, landmarks: list[int]) -> Transfer:
    """Similarity Procrustes on :data:`LANDMARK_PAIRS`, then the nearest ICT face vertex."""
    src = ict_neutral[[landmarks[j] for _, j in LANDMARK_PAIRS]].astype(np.float64)
    scale, rotation, shift = umeyama(src, canonical[[i for i, _ in LANDMARK_PAIRS]])
    face = ict_neutral[:ICT_FACE_VERTICES].astype(np.float64) @ rotation.T * scale + shift
    idx, dist = nearest(canonical, face)
    log.info("ICT -> canonical: scale %.4f, shift %s cm; nearest vertex: mean %.2f cm, max %.2f cm",
             scale, np.round(shift, 2), dist.mean(), dist.max())  # fmt: skip
    return Transfer(
        idx[:, None],
        np.ones((len(idx), 1)),
        rotation,
        scale,
        "landmark Procrustes + nearest vertex",
    )


def ict_delta(name: str, names: list[str], deltas: NDArray) -> NDArray[np.float32] | None:
    """ICT's (V, 3) delta for one ARKit name, or None when ICT has no such shape."""
    if name in ICT_SUMS:
        return sum(deltas[names.index(part)] for part in ICT_SUMS[name])
    if name in names:  # jawLeft, mouthRight, ...: one shape in both models
        return deltas[names.index(name)]
    for arkit, ict in (("Left", "_L"), ("Right", "_R")):
        if name.endswith(arkit):
            name = name[: -len(arkit)] + ict
    return deltas[names.index(name)] if name in names else None


def build_targets(transfer: Transfer, ict: dict[str, NDArray]) -> NDArray[np.float32]:
    """(52, 468, 3) float32 morph target deltas in cm, canonical frame (module docstring)."""
    names = [str(n) for n in ict["expr_names"]]
    targets = np.zeros((len(BLENDSHAPES), len(transfer.ict_vertices), 3), np.float32)
    for k, name in enumerate(BLENDSHAPES):
        delta = ict_delta(name, names, ict["expr_deltas"])
        if delta is None:
            log.info("%s: no ICT shape; the target moves nothing", name)
            continue
        at = np.einsum(
            "nk,nkd->nd", transfer.weights, delta[transfer.ict_vertices].astype(np.float64)
        )
        targets[k] = (at @ transfer.rotation.T * transfer.scale).astype(np.float32)
    return targets


def check_sides(canonical: NDArray, targets: NDArray) -> None:
    """eyeBlinkLeft must move the subject's left eye (x > 0); jawOpen must drop the whole lower
    inner lip and leave the upper one (else the mouth tears when it opens)."""
    blink = np.linalg.norm(targets[BLENDSHAPES.index("eyeBlinkLeft")], axis=1)
    if blink[canonical[:, 0] > 0].sum() < 10 * blink[canonical[:, 0] < 0].sum():
        raise SystemExit("eyeBlinkLeft moves the wrong side: ICT _L is not the subject's left")
    drop_cm = -targets[BLENDSHAPES.index("jawOpen"), :, 1]
    lower, upper = drop_cm[list(LOWER_INNER_LIP)], drop_cm[list(UPPER_INNER_LIP)]
    if lower.min() < 1.5 or upper.max() > 1.0:
        raise SystemExit(f"jawOpen: lower inner lip drops {lower.round(2)} cm, upper {upper.round(2)} cm; "
                         "the correspondence puts lower-lip vertices on the upper lip")  # fmt: skip


def eyes(canonical: NDArray) -> dict[str, dict[str, list[float] | float]]:
    """Each eyeball's centre (cm, canonical frame) and radius, for the viewer's node extras."""
    out = {}
    for name, contour in EYE_CONTOURS.items():
        centre = canonical[list(contour)].mean(0) - [0.0, 0.0, EYE_DEPTH_CM]
        out[name] = {"center": [round(float(v), 4) for v in centre], "radius": EYE_RADIUS_CM}
    return out


class _Glb:
    """Collects buffer views and accessors of one binary buffer."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        view = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.blob += data
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, spec: dict) -> int:
        self.accessors.append(spec)
        return len(self.accessors) - 1

    def vec3(self, values: NDArray[np.float32], *, sparse: bool = False) -> int:
        """A VEC3 float accessor (min/max included); ``sparse`` stores only moved vertices."""
        spec = {"componentType": _FLOAT, "count": len(values), "type": "VEC3",
                "min": values.min(0).tolist(), "max": values.max(0).tolist()}  # fmt: skip
        if not sparse:
            spec["bufferView"] = self.view(values.astype("<f4").tobytes(), _ARRAY_BUFFER)
            return self.accessor(spec)
        moved = np.flatnonzero(np.abs(values).max(1) >= SPARSE_EPS_CM)
        if moved.size:  # no bufferView and no sparse: all zeros (glTF 2.0, 3.6.2.3)
            spec["sparse"] = {
                "count": int(moved.size),
                "indices": {"bufferView": self.view(moved.astype("<u2").tobytes()), "componentType": _USHORT},
                "values": {"bufferView": self.view(values[moved].astype("<f4").tobytes())},
            }  # fmt: skip
        return self.accessor(spec)


def write_glb(
    path: Path, vertices: NDArray, triangles: NDArray, targets: NDArray, extras: dict
) -> int:
    """Write the head as GLB; returns its size in bytes."""
    glb = _Glb()
    position = glb.vec3(vertices.astype(np.float32))
    faces = triangles.astype("<u2").ravel()
    indices = glb.accessor({"bufferView": glb.view(faces.tobytes(), _ELEMENT_ARRAY_BUFFER),
                            "componentType": _USHORT, "count": int(faces.size), "type": "SCALAR"})  # fmt: skip
    morphs = [{"POSITION": glb.vec3(t, sparse=True)} for t in targets]
    gltf = {
        "asset": {"version": "2.0", "generator": "kaocap scripts/make_viewer_head.py",
                  "copyright": "mesh: MediaPipe canonical face (Apache-2.0); morph targets derived "
                               "from ICT-FaceKit expression shapes (MIT); see head.glb.md"},
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "head", "mesh": 0, "extras": extras}],
        "meshes": [{"name": "canonical_face", "weights": [0.0] * len(targets),
                    "extras": {"targetNames": list(BLENDSHAPES)},
                    "primitives": [{"attributes": {"POSITION": position}, "indices": indices,
                                    "targets": morphs, "mode": 4}]}],
        "buffers": [{"byteLength": len(glb.blob)}], "bufferViews": glb.views, "accessors": glb.accessors,
    }  # fmt: skip
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    blob = bytes(glb.blob) + b"\0" * (-len(glb.blob) % 4)
    total = 12 + 8 + len(text) + 8 + len(blob)
    data = struct.pack("<4sII", b"glTF", 2, total)
    data += (
        struct.pack("<I4s", len(text), b"JSON")
        + text
        + struct.pack("<I4s", len(blob), b"BIN\0")
        + blob
    )
    path.write_bytes(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ict",
        type=Path,
        default=ICT_DIR,
        help="ICT-FaceKit folder (compact npz + vertex_indices.json)",
    )
    parser.add_argument(
        "--measured",
        action="store_true",
        help=f"use the measured table {CORRESPONDENCE.name} instead of nearest vertices",
    )
    parser.add_argument("-o", "--out", type=Path, default=OUT, help="GLB to write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    geometry = load_face_geometry()
    with np.load(args.ict / "ict_facekit_compact.npz") as data:
        ict = {k: data[k] for k in ("neutral", "expr_names", "expr_deltas")}
    landmarks = json.loads((args.ict / "vertex_indices.json").read_text())["idx_to_landmark_verts"]
    if args.measured:
        transfer = measured_transfer()
    else:
        transfer = nearest_transfer(geometry.canonical, ict["neutral"], landmarks)
    log.info("correspondence: %s", transfer.source)
    targets = build_targets(transfer, ict)
    check_sides(geometry.canonical, targets)
    size = write_glb(
        args.out, geometry.canonical, geometry.triangles, targets, eyes(geometry.canonical)
    )
    log.info("wrote %s (%d bytes, %d targets)", args.out, size, len(targets))


if __name__ == "__main__":
    main()
