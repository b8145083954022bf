"""iFacialMocap text frames: names, layout, and a round trip over UDP."""

from __future__ import annotations

import math
import re

import pytest

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError, InputError
from kaocap.stream.ifacialmocap import (
    ARKIT_FROM_IFM,
    IFacialMocapSender,
    decode_ifacialmocap,
    encode_ifacialmocap,
    ifm_name,
)
from kaocap.stream.schema import sender_frame
from tests.stream._net import udp_receiver

#: The app's own example frame (ifacialmocap.com/for-developer), all 52 names.
APP_EXAMPLE = (
    "mouthSmile_R-0|eyeLookOut_L-0|mouthUpperUp_L-11|eyeWide_R-0|mouthClose-8|mouthPucker-4|"
    "mouthRollLower-9|eyeBlink_R-7|eyeLookDown_L-17|cheekSquint_R-11|eyeBlink_L-7|tongueOut-0|"
    "jawRight-0|eyeLookIn_R-6|cheekSquint_L-11|mouthDimple_L-10|mouthPress_L-4|eyeSquint_L-11|"
    "mouthRight-0|mouthShrugLower-9|eyeLookUp_R-0|eyeLookOut_R-0|mouthPress_R-5|cheekPuff-2|"
    "jawForward-11|mouthLowerDown_L-9|mouthFrown_L-6|mouthShrugUpper-26|browOuterUp_L-4|"
    "browInnerUp-20|mouthDimple_R-10|browDown_R-0|mouthUpperUp_R-10|mouthRollUpper-8|"
    "mouthFunnel-12|mouthStretch_R-21|mouthFrown_R-13|eyeLookDown_R-17|jawOpen-12|jawLeft-0|"
    "browDown_L-0|mouthSmile_L-0|noseSneer_R-18|mouthLowerDown_R-8|noseSneer_L-21|eyeWide_L-0|"
    "mouthStretch_L-21|browOuterUp_R-4|eyeLookIn_L-4|eyeSquint_R-11|eyeLookUp_L-0|mouthLeft-1|"
    "=head#-21.488958,-6.038993,-6.6019735,-0.030653415,-0.10287084,-0.6584072|"
    "rightEye#6.0297494,2.4403017,0.25649446|leftEye#6.034903,-1.6660284,-0.17520553|"
)


def test_names_match_the_app() -> None:
    app_names = set(re.findall(r"([A-Za-z_]+)-\d+\|", APP_EXAMPLE.split("=")[0]))
    assert app_names == set(ARKIT_FROM_IFM) and len(app_names) == 52
    assert (
        ifm_name("eyeBlinkLeft") == "eyeBlink_L" and ifm_name("browOuterUpRight") == "browOuterUp_R"
    )
    assert ifm_name("jawLeft") == "jawLeft" and ifm_name("mouthRight") == "mouthRight"
    parsed = decode_ifacialmocap(APP_EXAMPLE)
    assert parsed.blendshapes["mouthShrugUpper"] == pytest.approx(0.26)
    assert parsed.head_position_m[2] == pytest.approx(-0.6584072)


def test_round_trip_over_udp(make_result) -> None:
    result = make_result(0, euler_deg=(12.5, -7.25, 3.0), translation_cm=(2.0, -3.0, -55.0))
    frame = sender_frame(result)
    with udp_receiver() as rx, IFacialMocapSender("127.0.0.1", rx.getsockname()[1]) as ifm:
        ifm.send(make_result(0, n_faces=0))  # no face: nothing sent
        ifm.send(result)
        text = rx.recv(8192).decode("ascii")
    assert re.fullmatch(
        r"([A-Za-z_]+-\d{1,3}\|){52}=head#[^|]+\|rightEye#[^|]+\|leftEye#[^|]+\|", text
    )
    parsed = decode_ifacialmocap(text)
    assert list(parsed.blendshapes) == list(BLENDSHAPES)
    for name, value in frame.blendshapes.items():  # integers 0..100
        assert parsed.blendshapes[name] == pytest.approx(round(value * 100) / 100)
    assert parsed.head_deg == pytest.approx((-7.25, 12.5, 3.0), abs=1e-5)  # pitch, yaw, roll
    assert parsed.head_position_m == pytest.approx((0.02, -0.03, -0.55))
    e = [math.degrees(a) for a in frame.eyes_livelink_rad]
    assert parsed.left_eye_deg == pytest.approx((e[1], -e[0], 0.0), abs=1e-5)
    assert parsed.right_eye_deg == pytest.approx((e[4], -e[3], 0.0), abs=1e-5)


def test_version_2_and_errors(make_result) -> None:
    text = encode_ifacialmocap(sender_frame(make_result(0)), version=2)
    assert "eyeBlink_L&" in text and decode_ifacialmocap(text).blendshapes.keys() == set(
        BLENDSHAPES
    )
    for bad in ("eyeBlink_L-3|", "eyeBlink_Q-3|=head#0,0,0,0,0,0|", "jawOpen-x|=head#0,0,0,0,0,0|",
                "jawOpen-1|=head#0,0,0|"):  # fmt: skip
        with pytest.raises(InputError):
            decode_ifacialmocap(bad)
    with pytest.raises(ConfigError):
        IFacialMocapSender(version=3)
