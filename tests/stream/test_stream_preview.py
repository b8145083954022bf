"""Annotated preview video."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from kaocap.capture import default_image
from kaocap.errors import OutputError
from kaocap.stream import PreviewWriter, draw_overlay
from kaocap.stream.preview import project_axes
from kaocap.types import FrameResult


def test_draw_overlay_draws_without_touching_the_input(make_result) -> None:
    image = np.zeros((256, 256, 3), np.uint8)
    result = make_result(0, n_faces=2)
    out = draw_overlay(image, result)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not image.any()  # the input is left alone
    assert (out > 0).mean() > 0.05  # dots, boxes, axes, bars and text were drawn


def test_draw_overlay_without_faces(make_result) -> None:
    out = draw_overlay(default_image(), make_result(0, n_faces=0))
    assert out.shape == (512, 512, 3)


def test_pose_axes_follow_the_convention(make_face) -> None:
    # Frontal: x to the image right, y up (image y decreases), z towards the viewer (a short stub).
    origin, ends = project_axes(make_face())
    x_axis, y_axis, z_axis = ends - origin
    assert x_axis[0] > 20 and abs(x_axis[1]) < 1
    assert y_axis[1] < -20 and abs(y_axis[0]) < 1
    assert np.hypot(*z_axis) < 1
    # yaw > 0 turns the face towards the image right: its z axis then points right too.
    _, ends = project_axes(make_face(euler_deg=(30.0, 0.0, 0.0)))
    assert ends[2, 0] - origin[0] > 10
    # pitch > 0 tilts the face down: z points down in the image (y grows).
    _, ends = project_axes(make_face(euler_deg=(0.0, 30.0, 0.0)))
    assert ends[2, 1] - origin[1] > 10
    # Without depth, a weak-perspective projection at the same scale: frontal axes agree.
    origin, pinhole = project_axes(make_face())
    origin_weak, weak = project_axes(make_face(translation_cm=(0.0, 0.0, 0.0)))
    assert np.allclose(weak[:2] - origin_weak, pinhole[:2] - origin, atol=1e-3)


def test_write_ten_frames_close_and_decode(tmp_path: Path, make_result) -> None:
    path = tmp_path / "preview.mp4"
    image = np.full((256, 256, 3), 60, np.uint8)
    with PreviewWriter(path, fps=25, size=(256, 256)) as out:
        for i in range(10):
            out.write(make_result(i * 40), image)
        assert out.frames_written == 10
    out.close()  # idempotent
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10
    assert frames[0].shape == (256, 256, 3)


def test_resizes_and_draws_on_black_without_an_image(tmp_path: Path, make_result) -> None:
    path = tmp_path / "preview.mp4"
    with PreviewWriter(path, fps=30, size=(161, 121)) as out:  # odd sizes round down to even
        assert out.size == (160, 120)
        out.write(make_result(0))
        out.write(make_result(33), default_image())
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 2 and (frames[0].width, frames[0].height) == (160, 120)


def test_closing_without_frames_and_writing_after_close(tmp_path: Path, make_result) -> None:
    out = PreviewWriter(tmp_path / "empty.mp4", fps=30, size=(64, 64))
    out.close()
    with pytest.raises(OutputError, match="closed"):
        out.write(make_result(0))


def test_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="missing/preview.mp4") as info:
        PreviewWriter(tmp_path / "missing" / "preview.mp4", fps=30, size=(64, 64))
    assert "\n" not in str(info.value)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PreviewWriter(tmp_path / "a.mp4", fps=0, size=(64, 64))
    with pytest.raises(ValueError):
        PreviewWriter(tmp_path / "a.mp4", fps=30, size=(1, 64))


def test_frame_result_without_faces_is_fine(tmp_path: Path) -> None:
    with PreviewWriter(tmp_path / "a.mp4", fps=30, size=(64, 48)) as out:
        out.write(FrameResult(0, 0, (64, 48)))
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 1
