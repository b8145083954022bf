"""Heads without faces: a head the face detector cannot see (seen from behind) is found by the
body networks (kaocap.detect.body) and tracked by kaocap's head model, with either face model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kaocap import models
from kaocap.config import FilterConfig, PipelineConfig, TrackingConfig
from kaocap.errors import ConfigError, ModelError
from kaocap.pipeline import Pipeline
from tests.conftest import shared

#: COCO 161925's right part: a person in a black beanie seen from behind, head centre at about
#: (140, 158) px (the body finder's ROI, checked by eye: tests/detect/test_body.py); the face
#: detector finds no face in it.
BACK_VIEW = ("headpose", "directmhp_fullrange_test_images_no_labels", "test_imgs", "COCO", "000000161925.jpg")
BACK_HEAD_XY = np.array([140.0, 158.0])


@pytest.fixture(scope="module")
def back_view() -> np.ndarray:
    try:
        models.mediapipe_wheel()
    except ModelError as err:
        pytest.skip(f"the body networks cannot be had: {err}")
    image = cv2.cvtColor(cv2.imread(str(shared(*BACK_VIEW))), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[:, 160:480])


def _track(image: np.ndarray, frames: int, model: str = "kaocap", **tracking) -> list:
    config = PipelineConfig(model=model, filter=FilterConfig(enabled=False), tracking=TrackingConfig(**tracking))
    with Pipeline(config) as pipe:
        return [pipe(image, 40 * i + 1) for i in range(frames)]


@pytest.mark.parametrize("model", ["kaocap", "mediapipe"])
def test_a_head_seen_from_behind_starts_a_track_that_keeps_its_id(back_view, model):
    """Found by the body networks on the first frame, then followed by the head model and vouched
    for by the body networks at each search (every 10 frames), with one id and the ROI on the
    head; frames read as turned away carry no shapes. (How well the models read real heads
    from behind is an evaluation figure: kaocap eval --task headpose, scene sheet.)"""
    results = _track(back_view, 24, model)
    assert "heads" in results[0].timings_ms and "heads" in results[20].timings_ms
    faces = [r.faces[0] for r in results if r.faces]
    assert len(faces) == len(results) and len({f.face_id for f in faces}) == 1, "one track, kept"
    for face in faces:
        side = float(face.roi.size_wh[0])
        assert np.linalg.norm(face.roi.center_xy - BACK_HEAD_XY) < 0.4 * side and 70 < side < 140
        assert face.visible or (np.isnan(face.blendshapes).all() and not face.blendshapes_valid.any())


def test_no_head_search_when_switched_off(back_view):
    assert not any(r.faces for r in _track(back_view, 2, find_heads=False))
    assert not any(r.faces for r in _track(back_view, 2, "mediapipe", find_heads=False))


def test_the_search_runs_every_head_find_interval_frames():
    blank = np.full((240, 320, 3), 90, np.uint8)  # no face, no body: the search finds nothing
    try:
        models.mediapipe_wheel()
    except ModelError as err:
        pytest.skip(f"the body networks cannot be had: {err}")
    results = _track(blank, 7, head_find_interval=3)
    assert [i for i, r in enumerate(results) if "heads" in r.timings_ms] == [0, 3, 6]
    assert not any(r.faces for r in results)


def test_a_bad_head_find_interval_fails_at_start():
    with pytest.raises(ConfigError, match="head_find_interval"):
        PipelineConfig(tracking=TrackingConfig(head_find_interval=0))


def test_the_scene_sheet_reads_every_head_the_body_networks_find(back_view, tmp_path):
    pytest.importorskip("matplotlib")
    from kaocap.blendshapes.learned import LearnedModel
    from kaocap.eval.headpose import DIRECTMHP_DIR, scene_sheet

    face, head = (LearnedModel(models.model_path(m)) for m in (models.KAOCAP_FACE_MODEL, models.KAOCAP_HEAD_MODEL))
    scenes = scene_sheet(face, head, shared("headpose"), tmp_path / "scenes.png")
    assert len(scenes) == len(list(shared("headpose", *DIRECTMHP_DIR.parts).rglob("*.jpg"))) == 11
    heads = [h for _, found in scenes for h in found]
    assert len(heads) >= 8 and all(-180 <= y <= 180 and -1 <= c <= 1 for y, c in heads)
    behind = [y for y, facing in heads if facing < -0.5]  # the body networks see the back of the head
    assert len(behind) >= 3 and sum(abs(y) > 90 for y in behind) >= 0.6 * len(behind), heads  # 2 of 3 now
    assert (tmp_path / "scenes.png").stat().st_size > 100_000


def test_a_missing_wheel_is_fetched_in_the_background_while_frames_go_on(back_view, monkeypatch, tmp_path):
    import threading

    wheel, release = models.mediapipe_wheel(), threading.Event()

    def slow_download():  # stands in for pip download: done only when released
        release.wait(30)
        return wheel

    monkeypatch.setenv("KAOCAP_CACHE", str(tmp_path))  # nothing extracted, no wheel at hand
    monkeypatch.delenv("KAOCAP_MEDIAPIPE_WHEEL", raising=False)
    monkeypatch.setattr(models, "_FETCH", None)
    monkeypatch.setattr(models, "_FETCH_ERROR", [])
    monkeypatch.setattr(models, "mediapipe_wheel", slow_download)
    config = PipelineConfig(model="kaocap", filter=FilterConfig(enabled=False), tracking=TrackingConfig(head_find_interval=1))
    with Pipeline(config) as pipe:
        waiting = [pipe(back_view, 40 * i + 1) for i in range(3)]
        assert not any(r.faces or "heads" in r.timings_ms for r in waiting), "frames go on, no search yet"
        release.set()
        models._FETCH.join(10)
        found = [pipe(back_view, 40 * i + 1) for i in range(3, 5)]
    assert "heads" in found[0].timings_ms and len(found[0].faces) == 1, "found once the wheel is there"
