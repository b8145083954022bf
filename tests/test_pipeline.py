"""The pipeline end to end on real frames: faces, no faces, odd inputs, small faces, tracking."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kaocap import BLENDSHAPES, Pipeline
from kaocap.capture import default_image
from kaocap.config import MODELS, FilterConfig, PipelineConfig
from kaocap.eval.agreement import compare, decode_frames
from kaocap.pipeline import CONFIRM_INTERVAL, NETWORK_ROLES
from tests.conftest import ROOT, clock, shared

#: kaocap's model against MediaPipe on golden clip 1, limits over the measured values
#: (landmarks 1.8% of the inter-ocular distance, blendshapes 0.042, rotation 1.2 deg).
LMK_IOD, BLEND_MAE, ROT_DEG = 0.03, 0.06, 2.5
KATIE = "sadtalker/examples/ref_video/WDA_KatieHill_000.mp4"
AOC = "sadtalker/examples/ref_video/WDA_AlexandriaOcasioCortez_000.mp4"


def _clip(name: str, indices) -> list[np.ndarray]:
    return [image for _, image in decode_frames(shared("videos", name), list(indices))]


def test_default_image_has_one_full_face(pipeline_image_mode):
    result = pipeline_image_mode(default_image(), next(clock))
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.score > 0.9
    assert not face.blendshapes_valid[BLENDSHAPES.index("tongueOut")]
    assert face.blendshapes.min() >= 0 and face.blendshapes.max() <= 1
    assert face.blendshape("mouthSmileLeft") > 0.5  # she smiles
    assert face.pose.translation_cm[2] < 0  # in front of the camera
    assert abs(face.pose.euler_deg[0]) < 20
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < x1 < 350 and 50 < y0 < y1 < 300


@pytest.mark.parametrize("image", [
    np.zeros((480, 640, 3), np.uint8),
    np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8),
], ids=["black", "noise"])  # fmt: skip
def test_no_face_is_an_empty_list(pipeline_image_mode, image):
    result = pipeline_image_mode(image, next(clock))
    assert result.faces == ()
    assert result.to_dict()["faces"] == []


@pytest.mark.parametrize("convert", [
    lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY),
    lambda im: np.dstack([im, np.full(im.shape[:2], 255, np.uint8)]),
    lambda im: im.astype(np.uint16) * 257,
    lambda im: cv2.resize(im, (7680, 4320)),
], ids=["grey", "rgba", "uint16", "8k"])  # fmt: skip
def test_odd_images_are_converted(pipeline_image_mode, convert):
    result = pipeline_image_mode(convert(default_image()), next(clock))
    assert len(result.faces) == 1


def test_timestamps_must_increase():
    with Pipeline() as pipe:
        pipe(default_image(), 10)
        with pytest.raises(ValueError, match="increase"):
            pipe(default_image(), 10)


def _shrink_and_pad(image: np.ndarray, face_width: float, pos: tuple[float, float], target: float = 170):
    """The frame scaled so the face is ``target`` px wide, padded (edge pixels) to 1920x1080."""
    scale = target / face_width
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    x0, y0 = int(pos[0] * (1920 - w)), int(pos[1] * (1080 - h))
    padded = cv2.copyMakeBorder(small, y0, 1080 - h - y0, x0, 1920 - w - x0, cv2.BORDER_REPLICATE)
    return padded, scale, np.array([x0, y0])


SMALL_CASES = [(KATIE, 0), (KATIE, 40), ("lia_vox/obama.mov", 0), ("liveportrait/assets/examples/driving/d3.mp4", 40)]


@pytest.fixture(scope="module")
def peer():
    """MediaPipe's FaceLandmarker (IMAGE mode), or None where mediapipe is not installed."""
    try:
        from kaocap.eval.peer import MediaPipePeer

        landmarker = MediaPipePeer("image")
    except ImportError:  # mediapipe is the test extra's; anything else is a failure to see
        yield None
        return
    with landmarker:
        yield landmarker


@pytest.mark.parametrize("clip,index", SMALL_CASES)
def test_small_faces_in_full_hd_are_found(pipeline_image_mode, peer, clip, index):
    image = _clip(clip, [index])[0]
    big = pipeline_image_mode(image, next(clock)).faces[0]
    for pos in [(0.05, 0.1), (0.5, 0.5), (0.95, 0.85)]:
        frame, scale, offset = _shrink_and_pad(image, big.box[2] - big.box[0], pos)
        faces = pipeline_image_mode(frame, next(clock)).faces
        assert len(faces) == 1, f"170-px face at {pos} not found"
        expected = big.landmarks[:, :2] * scale + offset
        iod = np.linalg.norm(expected[33] - expected[263])
        assert np.median(np.linalg.norm(faces[0].landmarks[:, :2] - expected, axis=1)) < 0.05 * iod
        if peer is not None and pos == (0.5, 0.5):
            assert not peer.raw(frame).face_landmarks, "MediaPipe found it too: the case is not hard"


def _golden_clip_report(model: str):
    """kaocap (tracking, no filter) on golden clip 1 against MediaPipe's recorded outputs."""
    golden = dict(np.load(ROOT / "tests" / "golden" / "mediapipe_golden.npz"))
    clip_id = 1  # liveportrait d3: expressions and head turns
    rows = np.flatnonzero(golden["clip"] == clip_id)
    wanted = {int(golden["frame"][r]): r for r in rows}
    ours = {"found": np.zeros(len(rows), bool), "landmarks_px": np.zeros((len(rows), 478, 3)),
            "blendshapes": np.zeros((len(rows), 52)), "rotation": np.zeros((len(rows), 3, 3))}  # fmt: skip
    cfg = PipelineConfig(model=model, filter=FilterConfig(enabled=False))
    with Pipeline(cfg) as pipe:
        for index, image in decode_frames(shared("videos", str(golden["clips"][clip_id])), list(range(max(wanted) + 1))):
            result = pipe(image, index + 1)
            if index in wanted and result.faces:
                k = list(wanted).index(index)
                face = result.faces[0]
                ours["found"][k] = True
                ours["landmarks_px"][k] = face.landmarks
                ours["blendshapes"][k] = np.where(face.blendshapes_valid, face.blendshapes, np.nan)
                ours["rotation"][k] = face.pose.rotation
    peer = {"found": golden["found"][rows], "landmarks_px": golden["landmarks_px"][rows],
            "blendshapes": golden["blendshapes"][rows], "rotation": golden["matrix"][rows, :3, :3]}  # fmt: skip
    return compare(ours, peer)


def test_tracking_mode_agrees_with_the_peer():
    report = _golden_clip_report("mediapipe")
    assert report.detection_agreement == 1.0
    assert report.landmark_median_iod <= 0.02
    assert report.blendshape_mae <= 0.03
    assert report.rotation_median_deg <= 2.0


def test_kaocap_model_follows_the_peer_through_expressions_and_turns():
    """kaocap's own CNN is not MediaPipe, but on a clip of expressions and head turns it must
    track every frame and stay close to MediaPipe's outputs (its training teacher on real faces)."""
    report = _golden_clip_report("kaocap")
    assert report.detection_agreement == 1.0
    assert report.landmark_median_iod <= LMK_IOD
    assert report.blendshape_mae <= BLEND_MAE
    assert report.rotation_median_deg <= ROT_DEG


@pytest.mark.parametrize("model", MODELS)
def test_two_faces_keep_their_ids(model):
    left, right = _clip(KATIE, range(40)), _clip(AOC, range(40))
    cfg = PipelineConfig(model=model, max_faces=2, filter=FilterConfig(enabled=False))
    sides: dict[int, set[str]] = {}
    with Pipeline(cfg) as pipe:
        for i, (a, b) in enumerate(zip(left, right)):
            result = pipe(np.hstack([a, b]), i * 40 + 1)
            assert len(result.faces) == 2, f"frame {i}"
            for face in result.faces:
                side = "left" if (face.box[0] + face.box[2]) / 2 < 512 else "right"
                sides.setdefault(face.face_id, set()).add(side)
    assert len(sides) == 2 and all(len(s) == 1 for s in sides.values()), sides


@pytest.mark.parametrize("model", MODELS)
def test_a_lost_face_comes_back_with_a_new_id(model):
    """With MediaPipe's networks the face is gone at once (presence output); kaocap's model
    learns it within CONFIRM_INTERVAL frames (the detector checks the tracked crop)."""
    frames = _clip(KATIE, range(5))
    blank = np.zeros_like(frames[0])
    with Pipeline(PipelineConfig(model=model, filter=FilterConfig(enabled=False))) as pipe:
        first = {f.face_id for i, img in enumerate(frames) for f in pipe(img, i + 1).faces}
        gone = [len(pipe(blank, 100 + i).faces) for i in range(CONFIRM_INTERVAL)]
        again = pipe(frames[0], 200).faces
    assert first == {0} and gone[-1] == 0 and (model == "kaocap" or gone == [0] * CONFIRM_INTERVAL)
    assert [f.face_id for f in again] == [1]


@pytest.mark.parametrize(("model", "factor"), [("mediapipe", 0.6), ("kaocap", 0.9)])
def test_filter_reduces_jitter_on_a_still_face(model, factor):
    """Pixel noise on a still face: smoothing cuts the landmark jitter. With kaocap's model part
    of it is a slow drift of the tracked crop (the ROI follows its own landmarks), which a
    low-pass filter leaves, hence the smaller cut."""
    rng = np.random.default_rng(1)
    base = default_image()
    frames = [np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8) for _ in range(25)]
    spread = {}
    for enabled in (False, True):
        with Pipeline(PipelineConfig(model=model, filter=FilterConfig(enabled=enabled))) as pipe:
            points = np.stack([pipe(f, 33 * i + 1).faces[0].landmarks for i, f in enumerate(frames)])[5:]
        spread[enabled] = float(points[..., :2].std(axis=0).mean())
    assert spread[True] < factor * spread[False], spread


@pytest.mark.parametrize("model", MODELS)
def test_tracking_without_detection_is_cheaper_than_detecting(model):
    frames = _clip(KATIE, range(10))
    with Pipeline(PipelineConfig(model=model, filter=FilterConfig(enabled=False))) as pipe:
        results = [pipe(f, i + 1) for i, f in enumerate(frames)]
    assert "detect" in results[0].timings_ms
    assert all("detect" not in r.timings_ms for r in results[1:])
    checks = [i for i, r in enumerate(results) if "presence" in r.timings_ms]
    assert checks == ([] if model == "mediapipe" else list(range(CONFIRM_INTERVAL - 1, 10, CONFIRM_INTERVAL)))


def test_kaocap_model_on_the_portrait():
    """The default model on the embedded portrait: every shape predicted (tongueOut too), the
    smile seen, the pose in front of the camera, the box on the face."""
    with Pipeline(PipelineConfig(model="kaocap")) as pipe:
        face = pipe(default_image(), 1).faces[0]
    assert face.blendshapes_valid.all() and 0 <= face.blendshapes.min() <= face.blendshapes.max() <= 1
    assert face.blendshape("mouthSmileLeft") > 0.4 and face.blendshape("jawOpen") < 0.3
    assert face.pose.translation_cm[2] < 0 and abs(face.pose.euler_deg[0]) < 20
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < x1 < 350 and 50 < y0 < y1 < 300


def test_a_wrong_face_model_file_is_refused(tmp_path, monkeypatch):
    from kaocap import models
    from kaocap.errors import ModelError

    src = models.model_path(models.KAOCAP_FACE_MODEL)
    fake = tmp_path / src.name
    fake.write_bytes(src.read_bytes()[:-1] + b"x")
    (tmp_path / src.name.replace(".onnx", ".card.json")).write_bytes(src.with_name(src.name.replace(".onnx", ".card.json")).read_bytes())
    monkeypatch.setattr(models, "_OWN_DIR", tmp_path)
    with pytest.raises(ModelError, match="does not match its card"):
        Pipeline(PipelineConfig(model="kaocap"))


@pytest.mark.parametrize(("model", "roles"), [("mediapipe", {"detector", "landmarks", "blendshapes", "head"}),
                                              ("kaocap", {"detector", "face", "head"})])  # fmt: skip
def test_with_sessions_wraps_every_network_and_leaves_the_original(model, roles):
    """The hook kaocap.offline shares networks through: every opened network passes through the
    wrapper once, the copy gives the same results through it, the original keeps its own."""
    calls: list[str] = []

    class Spy:
        def __init__(self, role, session):
            self.role, self.session = role, session
            self.runtime, self.inputs, self.outputs = session.runtime, session.inputs, session.outputs

        def run(self, feeds):
            calls.append(self.role)
            return self.session.run(feeds)

    wrapped: list[str] = []

    def wrap(role, session):
        wrapped.append(role)
        return Spy(role, session)

    config = PipelineConfig(model=model, filter=FilterConfig(enabled=False))
    with Pipeline(config) as pipe:
        copy = pipe.with_sessions(wrap)
        copy.reset()
        image = default_image()
        ours, theirs = copy(image, 1), pipe(image, 1)
        assert sorted(wrapped) == sorted(roles)
        assert set(calls) == roles - {"head"}  # the portrait faces the camera: no head pass
        assert pipe.runtimes == copy.runtimes
        held = [getattr(pipe, attr) for attr in NETWORK_ROLES.values()]
        assert not any(isinstance(h, Spy) or isinstance(getattr(h, "session", None), Spy) for h in held)
        np.testing.assert_array_equal(ours.faces[0].blendshapes, theirs.faces[0].blendshapes)
        np.testing.assert_array_equal(ours.faces[0].landmarks, theirs.faces[0].landmarks)
