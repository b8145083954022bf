"""to_rgb8, read_image, single images and image folders."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaocap.capture import (
    FolderSource,
    Frame,
    ImageSource,
    Source,
    bgr_to_rgb8,
    default_image,
    open_source,
    read_image,
    to_rgb8,
)
from kaocap.errors import InputError


def _check_rgb8(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == (*shape, 3)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous


# --- to_rgb8 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_to_rgb8_grey_is_replicated(shape: tuple[int, ...]) -> None:
    grey = np.arange(20, dtype=np.uint8).reshape(shape)
    rgb = to_rgb8(grey)
    _check_rgb8(rgb, (4, 5))
    assert np.array_equal(rgb[..., 0], grey.reshape(4, 5))
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_to_rgb8_rgba_drops_alpha_and_keeps_order() -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    rgb = to_rgb8(rgba)
    _check_rgb8(rgb, (2, 3))
    assert (rgb[..., 0] == 200).all() and (rgb[..., 1:] == 0).all()


def test_to_rgb8_uint16_and_float_scaling() -> None:
    assert to_rgb8(np.array([[0, 257, 65535]], np.uint16))[0, :, 0].tolist() == [0, 1, 255]
    floats = np.array([[-0.5, 0.0, 0.5, 1.0, 2.0, np.nan]], np.float32)
    assert to_rgb8(floats)[0, :, 0].tolist() == [0, 0, 128, 255, 255, 0]
    assert to_rgb8(np.array([[True, False]]))[0, :, 1].tolist() == [255, 0]


def test_to_rgb8_makes_views_contiguous() -> None:
    view = np.zeros((10, 10, 3), np.uint8)[:, ::2]
    _check_rgb8(to_rgb8(view), (10, 5))


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 2, 2), np.uint8), np.zeros(5, np.uint8), np.zeros((2, 2), np.int32)]
)
def test_to_rgb8_rejects_unknown_layouts(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        to_rgb8(bad)


def test_bgr_to_rgb8_swaps_channels() -> None:
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = (1, 2, 3)
    assert bgr_to_rgb8(bgr)[0, 0].tolist() == [3, 2, 1]


def test_frame_checks_its_image() -> None:
    Frame(np.zeros((2, 2, 3), np.uint8), 0, 0)
    with pytest.raises(ValueError):
        Frame(np.zeros((2, 2), np.uint8), 0, 0)
    with pytest.raises(ValueError):
        Frame(np.zeros((2, 4, 3), np.uint8)[:, ::2], 0, 0)


def test_default_image_is_the_astronaut() -> None:
    image = default_image()
    _check_rgb8(image, (512, 512))
    assert image.std() > 30  # a real photograph, not a blank


# --- read_image: files written with cv2 -------------------------------------------------------


def test_read_grey_png(tmp_path: Path) -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    rgb = read_image(tmp_path / "g.png")
    _check_rgb8(rgb, (32, 64))
    assert np.array_equal(rgb[..., 1], grey)


def test_read_rgba_png_is_rgb_not_bgr(tmp_path: Path) -> None:
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 255, 128  # pure red in OpenCV's BGRA, half transparent
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    rgb = read_image(tmp_path / "a.png")
    _check_rgb8(rgb, (8, 8))
    assert rgb[0, 0].tolist() == [255, 0, 0]


def test_read_16bit_png(tmp_path: Path) -> None:
    deep = np.full((6, 7, 3), 65535, np.uint16)
    deep[..., 0] = 257 * 10  # blue in BGR
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    rgb = read_image(tmp_path / "d.png")
    _check_rgb8(rgb, (6, 7))
    assert rgb[0, 0].tolist() == [255, 255, 10]


def test_read_8k_image(tmp_path: Path) -> None:
    big = np.zeros((4320, 7680, 3), np.uint8)
    big[::64] = 255
    cv2.imwrite(str(tmp_path / "8k.png"), big)
    _check_rgb8(read_image(tmp_path / "8k.png"), (4320, 7680))


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.png", None, "no such file"),
        ("empty.png", b"", "empty"),
        ("text.png", b"hello\n", "decode"),
    ],
)
def test_read_bad_images(tmp_path: Path, name: str, content: bytes | None, problem: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as info:
        read_image(path)
    assert name in str(info.value) and "\n" not in str(info.value)


# --- ImageSource / FolderSource ---------------------------------------------------------------


def test_open_source_single_image(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "one.jpg"), np.full((20, 30, 3), 90, np.uint8))
    with open_source(tmp_path / "one.jpg") as src:
        assert isinstance(src, ImageSource) and isinstance(src, Source)
        assert (src.live, src.fps, src.frame_count) == (False, None, 1)
        frames = list(src)
    assert len(frames) == 1 and frames[0].timestamp_ms == 0 and frames[0].image.shape == (20, 30, 3)


def test_open_source_corrupt_image_fails_early(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="bad.jpg"):
        open_source(tmp_path / "bad.jpg")


def _write_folder(folder: Path, names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((10, 12, 3), i * 10, np.uint8))


def test_folder_natural_order_and_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_folder(tmp_path, ["img10.png", "img2.png", "img1.png"])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "img3.png").write_bytes(b"corrupt")
    (tmp_path / "sub").mkdir()
    with caplog.at_level(logging.WARNING, logger="kaocap.capture"):
        src = open_source(tmp_path)
        assert isinstance(src, FolderSource)
        assert [p.name for p in src.paths] == ["img1.png", "img2.png", "img3.png", "img10.png"]
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 3]  # img3.png skipped: a gap in the indices
    assert [f.timestamp_ms for f in frames] == [0, 33, 100]  # index * 1000 / 30 fps
    messages = [r.getMessage() for r in caplog.records]
    assert sum("non-image" in m for m in messages) == 1  # one warning for all non-image files
    assert sum("img3.png" in m for m in messages) == 1


def test_folder_with_no_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no image files"):
        open_source(tmp_path)


def test_folder_whose_images_are_all_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    with FolderSource(tmp_path) as src, pytest.raises(InputError, match="none of its 1 images"):
        list(src)


def test_folder_fps_sets_timestamps(tmp_path: Path) -> None:
    _write_folder(tmp_path, ["0.png", "1.png"])
    with FolderSource(tmp_path, fps=10) as src:
        assert [f.timestamp_ms for f in src] == [0, 100]
