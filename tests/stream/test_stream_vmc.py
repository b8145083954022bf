"""VMC protocol: bundles decoded by a real python-osc server on loopback."""

from __future__ import annotations

import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError
from kaocap.stream.schema import (
    VRM_PRESET_SOURCES,
    pascal_case,
    sender_frame,
    unity_eye_rotations_xyzw,
    unity_head_rotation_xyzw,
)
from kaocap.stream.vmc import VmcSender
from tests.stream._net import osc_server


def _has_apply(messages: list) -> bool:
    return any(a == "/VMC/Ext/Blend/Apply" for a, _ in messages)


def test_vmc_frame_decoded_by_python_osc(make_result) -> None:
    result = make_result(2000, euler_deg=(25.0, -5.0, 10.0))
    frame = sender_frame(result)
    with osc_server() as (port, received), VmcSender("127.0.0.1", port) as vmc:
        vmc.send(result)
        messages = received.wait_for(_has_apply)
    addresses = [a for a, _ in messages]
    assert (
        addresses[:2] == ["/VMC/Ext/OK", "/VMC/Ext/T"] and addresses[-1] == "/VMC/Ext/Blend/Apply"
    )
    ok, t = messages[0][1], messages[1][1]
    assert ok == (1, 3, 0, 1) and t[0] == pytest.approx(2.0)
    bones = {args[0]: args[1:] for a, args in messages if a == "/VMC/Ext/Bone/Pos"}
    assert set(bones) == {"Head", "LeftEye", "RightEye"}
    np.testing.assert_allclose(bones["Head"][3:], unity_head_rotation_xyzw(frame), atol=1e-6)
    left, right = unity_eye_rotations_xyzw(frame)
    np.testing.assert_allclose(bones["LeftEye"][3:], left, atol=1e-6)
    np.testing.assert_allclose(bones["RightEye"][3:], right, atol=1e-6)
    assert bones["Head"][:3] == (0.0, 0.0, 0.0)
    blends = {args[0]: args[1] for a, args in messages if a == "/VMC/Ext/Blend/Val"}
    assert list(blends) == [pascal_case(n) for n in BLENDSHAPES]  # perfect-sync names, in order
    for name, value in frame.blendshapes.items():
        assert blends[pascal_case(name)] == pytest.approx(value, abs=1e-6)


def test_vmc_vrm_presets_root_and_no_face(make_result) -> None:
    options = {"blendshapes": "vrm", "send_root": True}
    with osc_server() as (port, received), VmcSender("127.0.0.1", port, **options) as vmc:
        vmc.send(make_result(0, translation_cm=(0.0, 0.0, -50.0)))
        vmc.send(make_result(40, translation_cm=(10.0, 5.0, -40.0)))
        vmc.send(make_result(80, n_faces=0))
        messages = received.wait_for(lambda m: sum(a == "/VMC/Ext/T" for a, _ in m) == 3)
    blends = [args[0] for a, args in messages if a == "/VMC/Ext/Blend/Val"]
    assert blends[: len(VRM_PRESET_SOURCES)] == list(VRM_PRESET_SOURCES)
    roots = [args for a, args in messages if a == "/VMC/Ext/Root/Pos"]
    assert roots[0][:4] == ("root", 0.0, 0.0, 0.0)  # relative to the first face
    assert roots[1][1:4] == pytest.approx((-0.1, 0.05, 0.1))  # S t / 100, Unity metres
    # Without a face: tracking status 0, no bones or shapes (the avatar holds its pose).
    assert [args for a, args in messages if a == "/VMC/Ext/OK"][-1] == (1, 3, 0, 0)
    assert messages[-1][0] == "/VMC/Ext/T"
    with pytest.raises(ConfigError, match="blendshapes"):
        VmcSender(blendshapes="visemes")
