"""Annotated preview video: landmarks, pose axes, face boxes and blendshape bars over the frames.

Drawing (:func:`draw_overlay`), per face: the 478 landmarks as dots, the face box with
``#id score``, and the head pose as three axes (x red = the face's left, y green = up, z blue =
out of the face) from the nose tip. For the first face, the 12 most active blendshapes are drawn as
bars in a panel at the top-left. A line at the bottom gives the timestamp and the face count.

Pose axes use a simple pinhole projection: the axes are ``AXIS_CM`` long in the camera frame,
placed at ``HeadPose.translation_cm``, and projected with a focal length chosen so that a face
``FACE_WIDTH_CM`` wide at the pose's depth spans the face box (``f = box_width_px * depth_cm /
FACE_WIDTH_CM``); the projection of the origin is moved onto the nose tip. When the pose carries
no usable depth (``translation_cm[2] > -1``), a weak-perspective projection at the same scale
(``box_width_px / FACE_WIDTH_CM`` px per cm) is used instead.

:class:`PreviewWriter` encodes the annotated frames as MP4 with PyAV: H.264 (libx264) when FFmpeg
has it, MPEG-4 Part 2 otherwise, one frame per written result at a constant ``fps``. The MP4 is
fragmented (a fragment per keyframe, one keyframe a second), so a file whose writer is closed
early, or never closed, stays playable up to its last complete fragment.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap._closing import Closing
from kaocap.capture import to_rgb8
from kaocap.constants import BLENDSHAPES, LANDMARK_NOSE_TIP
from kaocap.errors import OutputError
from kaocap.stream._files import open_output
from kaocap.types import Face, FrameResult

#: Typical width of a face at the cheekbones, cm: sets the pinhole focal length (module docstring).
FACE_WIDTH_CM = 15.0
#: Length of the drawn pose axes, cm.
AXIS_CM = 8.0
#: How many blendshapes the bar panel shows.
TOP_BLENDSHAPES = 12

# RGB colours.
_AXIS_COLOURS = ((230, 40, 40), (40, 200, 40), (60, 110, 255))
_LANDMARK_COLOUR = (0, 255, 200)
_TEXT_COLOUR = (255, 255, 255)
_BAR_COLOUR = (255, 180, 0)
_BOX_PALETTE = ((255, 200, 0), (0, 200, 255), (255, 80, 200), (120, 255, 80), (255, 120, 60))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LONGEST_LABEL_PX = max(cv2.getTextSize(name, _FONT, 1.0, 1)[0][0] for name in BLENDSHAPES)


def draw_overlay(image: NDArray, result: FrameResult) -> NDArray[np.uint8]:
    """A copy of ``image`` with ``result`` drawn over it (see the module docstring).

    image: (H, W, 3) uint8 RGB (anything :func:`kaocap.capture.to_rgb8` accepts), the frame the
    result was computed on, so that pixel coordinates match. Returns (H, W, 3) uint8 RGB.

    >>> annotated = draw_overlay(frame.image, result)      # doctest: +SKIP
    """
    canvas = to_rgb8(image).copy()
    scale = max(canvas.shape[:2]) / 640.0  # line widths and text grow with the image
    for face in result.faces:
        _draw_landmarks(canvas, face, scale)
        _draw_box(canvas, face, scale)
        _draw_axes(canvas, face, scale)
    if result.faces and result.faces[0].visible:  # a face turned away has no shapes to show
        _draw_bars(canvas, result.faces[0])
    info = f"{result.timestamp_ms} ms  {len(result.faces)} face(s)"
    _text(canvas, info, (4, canvas.shape[0] - 6), 0.45 * max(scale, 0.5))
    return canvas


def _thickness(scale: float) -> int:
    return max(1, round(2 * scale))


def _text(canvas: NDArray[np.uint8], text: str, org: tuple[int, int], font_scale: float) -> None:
    thickness = max(1, round(font_scale * 2))
    cv2.putText(canvas, text, org, _FONT, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, org, _FONT, font_scale, _TEXT_COLOUR, thickness, cv2.LINE_AA)


def _draw_landmarks(canvas: NDArray[np.uint8], face: Face, scale: float) -> None:
    h, w = canvas.shape[:2]
    radius = max(1, round(1.5 * scale))
    for x, y in np.round(face.landmarks[:, :2]).astype(np.int64):
        if 0 <= x < w and 0 <= y < h:
            cv2.circle(canvas, (int(x), int(y)), radius, _LANDMARK_COLOUR, -1, cv2.LINE_AA)


def _draw_box(canvas: NDArray[np.uint8], face: Face, scale: float) -> None:
    x0, y0, x1, y1 = (round(float(v)) for v in face.box)
    colour = _BOX_PALETTE[face.face_id % len(_BOX_PALETTE)]
    cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, _thickness(scale), cv2.LINE_AA)
    _text(canvas, f"#{face.face_id} {face.score:.2f}", (x0, max(12, y0 - 5)), 0.5 * max(scale, 0.6))


def project_axes(face: Face) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pose axes in image px: (origin (2,), ends (3, 2)) for the x, y, z axes of the face model.

    Pinhole projection with a focal length from the face box (module docstring); the origin is
    the nose tip landmark.
    """
    origin = face.landmarks[LANDMARK_NOSE_TIP, :2].astype(np.float64)
    rotation = face.pose.rotation.astype(np.float64)
    t = face.pose.translation_cm.astype(np.float64)
    px_per_cm = max(float(face.box[2] - face.box[0]), 1.0) / FACE_WIDTH_CM
    depth_cm = -t[2]
    ends = np.zeros((3, 2))
    for k in range(3):
        tip = t + AXIS_CM * rotation[:, k]
        if depth_cm > 1.0 and -tip[2] > 1.0:
            focal = px_per_cm * depth_cm  # px: f * FACE_WIDTH_CM / depth = box width
            offset = focal * (tip[:2] / -tip[2] - t[:2] / depth_cm)
        else:
            offset = px_per_cm * AXIS_CM * rotation[:2, k]
        ends[k] = origin + (offset[0], -offset[1])  # camera y is up, image y is down
    return origin, ends


def _draw_axes(canvas: NDArray[np.uint8], face: Face, scale: float) -> None:
    origin, ends = project_axes(face)
    start = (round(origin[0]), round(origin[1]))
    for k in (2, 1, 0):  # z first, so x and y stay visible on top of it
        end = (round(ends[k, 0]), round(ends[k, 1]))
        cv2.arrowedLine(
            canvas, start, end, _AXIS_COLOURS[k], _thickness(scale) + 1, cv2.LINE_AA, 0, 0.15
        )


def _draw_bars(canvas: NDArray[np.uint8], face: Face) -> None:
    h, w = canvas.shape[:2]
    order = np.argsort(-face.blendshapes, kind="stable")[:TOP_BLENDSHAPES]
    row = max(9, h // 40)
    panel_w = max(90, w // 3)
    label_w = panel_w * 3 // 5
    font_scale = min(row / 30.0, (label_w - 4) / _LONGEST_LABEL_PX)
    panel = canvas[: row * len(order) + 4, :panel_w]
    panel[:] = (panel * 0.45).astype(np.uint8)  # darken the panel so the bars read on any image
    for i, k in enumerate(order):
        y = 2 + i * row
        value = float(np.clip(face.blendshapes[k], 0.0, 1.0))
        bar_end = label_w + round(value * (panel_w - label_w - 4))
        cv2.rectangle(canvas, (label_w, y + 1), (bar_end, y + row - 2), _BAR_COLOUR, -1)
        cv2.putText(
            canvas,
            BLENDSHAPES[k],
            (2, y + row - 2),
            _FONT,
            font_scale,
            _TEXT_COLOUR,
            1,
            cv2.LINE_AA,
        )


def _even_size(size: tuple[float, float]) -> tuple[int, int]:
    """(width, height) rounded down to even px (yuv420p needs them), at least 2 x 2."""
    width, height = int(size[0]) // 2 * 2, int(size[1]) // 2 * 2
    if width < 2 or height < 2:
        raise ValueError(f"size must be at least 2 x 2 px, got {size}")
    return width, height


def _pick_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


#: Longest side of a preview whose size is taken from its first frame.
_MAX_AUTO_SIDE = 1280


class PreviewWriter(Closing):
    """Encode annotated frames to an MP4 (codec, timing and crash safety in the module docstring).

    ``size`` is the output (width, height) in px, rounded down to even numbers (yuv420p needs
    them); None takes the first frame's size, its long side capped at 1280 px. Frames of another
    size are resized after drawing. ``write(result, image)`` draws ``result`` over ``image`` (the
    frame it was computed on); without an image it draws on black.

    >>> with PreviewWriter("preview.mp4", fps=30, size=(640, 480)) as out:   # doctest: +SKIP
    ...     out.write(result, frame.image)
    """

    def __init__(
        self, path: str | Path, fps: float = 30.0, size: tuple[int, int] | None = None
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.size = _even_size(size) if size is not None else None
        self.codec = _pick_codec()
        self.frames_written = 0
        open_output(self.path, binary=True).close()  # fail early, with a one-line message
        try:
            self._container = av.open(
                str(self.path), "w", format="mp4",
                container_options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
            )  # fmt: skip
            self._stream = self._add_stream() if self.size is not None else None
        except (av.FFmpegError, OSError) as err:
            raise OutputError(f"{self.path}: cannot start the video ({err})") from None
        self._closed = False

    def _add_stream(self) -> av.VideoStream:
        stream = self._container.add_stream(
            self.codec, rate=Fraction(self.fps).limit_denominator(1001)
        )
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = max(1, math.ceil(self.fps))
        if self.codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23"}
        else:
            stream.codec_context.bit_rate = 4_000_000
        return stream

    #: Tells jobs to pass each result's input frame.
    needs_image = True

    def write(self, result: FrameResult, image: NDArray | None = None) -> None:
        """Draw ``result`` over ``image`` ((H, W, 3) uint8 RGB, or None for black) and encode it."""
        if self._closed:
            raise OutputError(f"{self.path}: writer is closed")
        if image is None:
            width, height = result.image_size if all(result.image_size) else self.size
            image = np.zeros((height, width, 3), np.uint8)
        canvas = draw_overlay(image, result)
        if self._stream is None:
            scale = min(1.0, _MAX_AUTO_SIDE / max(canvas.shape[:2]))
            self.size = _even_size((canvas.shape[1] * scale, canvas.shape[0] * scale))
            self._stream = self._add_stream()
        if (canvas.shape[1], canvas.shape[0]) != self.size:
            canvas = cv2.resize(canvas, self.size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = Fraction(1) / self._stream.codec_context.framerate
        self._mux(self._stream.encode(frame))
        self.frames_written += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except (av.FFmpegError, OSError) as err:
            raise OutputError(f"{self.path}: write failed ({err})") from None

    def close(self) -> None:
        """Flush the encoder and finish the file; idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            if self._stream is None:  # no frame came: still leave a valid (empty) video
                self.size = self.size or (640, 480)
                self._stream = self._add_stream()
            self._mux(self._stream.encode(None))
        finally:
            self._container.close()

