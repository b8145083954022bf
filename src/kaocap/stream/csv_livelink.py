"""Live Link Face CSV: the layout Epic's iPhone app records, read by Unreal, Blender and Maya tools.

Layout (checked against a real recording, ``MySlate_3_Jason_Millers_iPhone.csv``)::

    Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    00:32:09:07.867,61,0.0491091609,...

* ``Timecode`` is ``HH:MM:SS:FF.sss``: hours, minutes, seconds, the frame number within the
  second at the writer's ``fps``, and the sub-frame as thousandths of a frame (the recording's
  sub-frame drifts .867, .868, ... because the camera runs slightly off 60 fps). It is derived
  from ``FrameResult.timestamp_ms`` (plus ``start_ms``); hours wrap at 24.
* ``BlendShapeCount`` is always 61; then the 52 ARKit shapes in Apple's order, PascalCase
  (``kaocap.BLENDSHAPES`` with the first letter upper-cased), then 9 angles in radians.
* Values are written with 10 decimals, rows end in ``\\n``.

Head angles (radians), relative to kaocap's convention (:mod:`kaocap.types`)::

    HeadYaw = -yaw, HeadPitch = +pitch, HeadRoll = -roll

i.e. Live Link Face's yaw > 0 turns the face to the subject's own right, pitch > 0 tilts it
down, roll > 0 tilts the top of the head to the subject's own left. The head columns of the
reference recording are all zero (head rotation was not recorded), so this comes from its eye
columns, which Epic's ARKit code converts the same way as the head: their yaw grows when the gaze
turns to the subject's right (LeftEyeYaw with eyeLookInLeft, RightEyeYaw with eyeLookOutRight) and
their pitch with eyeLookDown. Mirroring left/right flips yaw and roll together and keeps pitch,
which fixes the roll sign once yaw and pitch are known (it matches Unreal's ``FRotator`` of an
ARKit face transform whose forward axis is the back of the head).

Eye angles (radians) are estimated from the eyeLook* blendshapes with gains fitted to the
reference recording (correlation > 0.97 for yaw, 0.9999 for pitch; the recording's resting
vergence offset of about 0.07 rad is left out), and roll is 0::

    LeftEyeYaw  = 0.60 * (eyeLookInLeft - eyeLookOutLeft)
    RightEyeYaw = 0.60 * (eyeLookOutRight - eyeLookInRight)
    EyePitch    = 0.61 * eyeLookDown - 0.44 * eyeLookUp            (per eye)

Only the first face of each frame is written; frames without a face are skipped (no row), so the
timecodes show the gap. Live Link Face itself writes a row only while it tracks a face.
"""

from __future__ import annotations

import csv
import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap._closing import Closing
from kaocap.constants import BLENDSHAPE_INDEX, BLENDSHAPES
from kaocap.errors import InputError, OutputError
from kaocap.stream._files import open_output
from kaocap.types import Face, FrameResult, HeadPose, euler_to_matrix

logger = logging.getLogger(__name__)

#: The 52 blendshape columns, PascalCase, Apple's order.
LIVELINK_BLENDSHAPES: tuple[str, ...] = tuple(n[0].upper() + n[1:] for n in BLENDSHAPES)
#: The 9 angle columns (radians).
LIVELINK_ANGLES: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
#: All 61 value columns in file order.
LIVELINK_NAMES: tuple[str, ...] = LIVELINK_BLENDSHAPES + LIVELINK_ANGLES
LIVELINK_HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount", *LIVELINK_NAMES)

#: Eye gains (rad per unit blendshape), fitted to the reference recording (module docstring).
EYE_YAW_GAIN = 0.60
EYE_PITCH_DOWN_GAIN = 0.61
EYE_PITCH_UP_GAIN = 0.44
DEFAULT_FPS = 60.0
_MS_PER_DAY = 24 * 3600 * 1000


def head_angles_rad(pose: HeadPose) -> tuple[float, float, float]:
    """(HeadYaw, HeadPitch, HeadRoll) in radians, Live Link Face's signs (module docstring)."""
    yaw, pitch, roll = pose.euler_deg
    return -math.radians(yaw), math.radians(pitch), -math.radians(roll)


def head_pose_from_livelink(
    yaw_rad: float, pitch_rad: float, roll_rad: float, translation_cm: NDArray | None = None
) -> HeadPose:
    """Inverse of :func:`head_angles_rad`: a kaocap :class:`HeadPose` from Live Link angles."""
    rotation = euler_to_matrix(
        -math.degrees(yaw_rad), math.degrees(pitch_rad), -math.degrees(roll_rad)
    )
    t = (
        np.zeros(3, np.float32)
        if translation_cm is None
        else np.asarray(translation_cm, np.float32)
    )
    return HeadPose(rotation.astype(np.float32), t)


def eye_angles_rad(blendshapes: NDArray[np.floating]) -> NDArray[np.float32]:
    """(6,) float32 radians: left eye yaw, pitch, roll, right eye yaw, pitch, roll, estimated
    from the (52,) eyeLook* blendshapes (gains in the module docstring; roll is 0)."""
    b = {n: float(blendshapes[BLENDSHAPE_INDEX[n]]) for n in BLENDSHAPES if n.startswith("eyeLook")}
    left_yaw = EYE_YAW_GAIN * (b["eyeLookInLeft"] - b["eyeLookOutLeft"])
    right_yaw = EYE_YAW_GAIN * (b["eyeLookOutRight"] - b["eyeLookInRight"])
    left_pitch = EYE_PITCH_DOWN_GAIN * b["eyeLookDownLeft"] - EYE_PITCH_UP_GAIN * b["eyeLookUpLeft"]
    right_pitch = (
        EYE_PITCH_DOWN_GAIN * b["eyeLookDownRight"] - EYE_PITCH_UP_GAIN * b["eyeLookUpRight"]
    )
    return np.array([left_yaw, left_pitch, 0.0, right_yaw, right_pitch, 0.0], np.float32)


def face_to_livelink(face: Face) -> NDArray[np.float32]:
    """(61,) float32 in :data:`LIVELINK_NAMES` order: 52 shapes, head and eye angles (rad)."""
    head = np.array(head_angles_rad(face.pose), np.float32)
    return np.concatenate(
        [face.blendshapes.astype(np.float32), head, eye_angles_rad(face.blendshapes)]
    )


def timecode_from_ms(timestamp_ms: int, fps: float = DEFAULT_FPS) -> str:
    """``HH:MM:SS:FF.sss`` for a time in ms (frame ``FF`` at ``fps``, ``sss`` thousandths of a
    frame, both rounded down; hours wrap at 24).

    >>> timecode_from_ms(1_929_130, 60)
    '00:32:09:07.800'
    """
    total = int(timestamp_ms) % _MS_PER_DAY
    seconds, ms = divmod(total, 1000)
    frames = Fraction(ms) * Fraction(fps).limit_denominator(1001) / 1000  # exact: no 7.799 for 7.8
    frame = math.floor(frames)
    sub = math.floor((frames - frame) * 1000)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{frame:02d}.{sub:03d}"


def ms_from_timecode(timecode: str, fps: float = DEFAULT_FPS) -> float:
    """Time in ms of a ``HH:MM:SS:FF[.sss]`` timecode at ``fps`` (inverse of
    :func:`timecode_from_ms` up to its rounding)."""
    try:
        h, m, s, f = timecode.split(":")
        seconds = (int(h) * 60 + int(m)) * 60 + int(s)
        return seconds * 1000.0 + float(f) * 1000.0 / fps
    except ValueError:
        raise ValueError(f"not a HH:MM:SS:FF.sss timecode: {timecode!r}") from None


class LiveLinkCsvWriter(Closing):
    """Write results as a Live Link Face CSV (layout, units and signs in the module docstring).

    ``fps`` sets the timecode's frame field; ``start_ms`` is added to every ``timestamp_ms``
    (e.g. the time of day the capture started, for timecodes that line up with other devices).

    >>> with LiveLinkCsvWriter("take.csv", fps=60) as out:   # doctest: +SKIP
    ...     out.write(result)
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, *, start_ms: int = 0) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.start_ms = int(start_ms)
        self.rows_written = 0
        self.frames_skipped = 0
        self._file = open_output(self.path)
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._write_row(LIVELINK_HEADER)

    def write(self, result: FrameResult) -> None:
        """Append one row for the first face of ``result``; a frame without a face (or with
        the head turned away, ``Face.visible`` False) is skipped."""
        if self._file is None:
            raise OutputError(f"{self.path}: writer is closed")
        if not result.faces or not result.faces[0].visible:
            self.frames_skipped += 1
            return
        values = face_to_livelink(result.faces[0])
        timecode = timecode_from_ms(result.timestamp_ms + self.start_ms, self.fps)
        self._write_row([timecode, str(len(LIVELINK_NAMES)), *(f"{v:.10f}" for v in values)])
        self.rows_written += 1

    def _write_row(self, row: list[str] | tuple[str, ...]) -> None:
        try:
            self._csv.writerow(row)
            self._file.flush()
        except OSError as err:
            raise OutputError(f"{self.path}: write failed ({err.strerror or err})") from None

    def close(self) -> None:
        """Close the file; idempotent."""
        file, self._file = self._file, None
        if file is None:
            return
        file.close()
        if self.frames_skipped:
            logger.info(
                "%s: %d frame(s) without a face were skipped", self.path, self.frames_skipped
            )



def read_livelink_csv(path: str | Path) -> tuple[list[str], NDArray[np.float32], tuple[str, ...]]:
    """Read a Live Link Face CSV: (timecodes, values (T, N) float32, the N value column names).

    N is 61 for files from the app or :class:`LiveLinkCsvWriter`; the names are returned as found
    (PascalCase). Raises :class:`~kaocap.errors.InputError` on a missing or malformed file.

    >>> timecodes, values, names = read_livelink_csv("take.csv")   # doctest: +SKIP
    >>> values[:, names.index("JawOpen")]                           # doctest: +SKIP
    """
    p = Path(path)
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except OSError as err:
        raise InputError(f"{p}: cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a text CSV file") from None
    if not rows or rows[0][:2] != ["Timecode", "BlendShapeCount"]:
        raise InputError(
            f"{p}: not a Live Link Face CSV (header must start Timecode,BlendShapeCount)"
        )
    names = tuple(rows[0][2:])
    values = np.zeros((len(rows) - 1, len(names)), np.float32)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(names) + 2:
            raise InputError(
                f"{p}: line {i + 2}: expected {len(names) + 2} columns, got {len(row)}"
            )
        try:
            values[i] = [float(v) for v in row[2:]]
        except ValueError:
            raise InputError(f"{p}: line {i + 2}: a value is not a number") from None
    return [row[0] for row in rows[1:]], values, names
