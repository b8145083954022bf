"""VRChat OSC: avatar parameters decoded by a real python-osc server on loopback."""

from __future__ import annotations

import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError
from kaocap.stream.schema import sender_frame
from kaocap.stream.vrchat import DEFAULT_MAPPING, PREFIX, VRChatSender, vrchat_parameters
from tests.stream._net import osc_server


def test_default_parameters_decoded_by_python_osc(make_result) -> None:
    result = make_result(0, euler_deg=(45.0, -9.0, 0.0))
    expected = vrchat_parameters(sender_frame(result))
    with osc_server() as (port, received), VRChatSender("127.0.0.1", port) as vrc:
        vrc.send(result)
        messages = received.wait_for(lambda m: len(m) >= len(DEFAULT_MAPPING))
    got = {a.removeprefix(PREFIX): args for a, args in messages}
    assert all(a.startswith(PREFIX) for a, _ in messages) and set(got) == set(DEFAULT_MAPPING)
    for name, args in got.items():
        assert len(args) == 1 and args[0] == pytest.approx(expected[name], abs=1e-6), name
    face = result.faces[0]
    assert got["FT/v2/JawOpen"][0] == pytest.approx(face.blendshape("jawOpen"), abs=1e-6)
    blink = face.blendshape("eyeBlinkLeft")
    lid = 0.75 * (1 - blink) + 0.25 * face.blendshape("eyeWideLeft")
    assert got["FT/v2/EyeLidLeft"][0] == pytest.approx(lid, abs=1e-6)
    assert got["HeadYaw"][0] == pytest.approx(0.5, abs=1e-5)
    assert all(-1 <= args[0] <= 1 for args in got.values())


def test_custom_mapping_and_only_changes_are_resent(make_result) -> None:
    shapes = np.zeros(len(BLENDSHAPES), np.float32)
    mapping = {"MouthOpen": "jawOpen", "Smile": lambda f: f.blendshapes["mouthSmileLeft"]}
    with osc_server() as (port, received), VRChatSender("127.0.0.1", port, mapping=mapping) as vrc:
        vrc.send(make_result(0, blendshapes=shapes))
        received.wait_for(lambda m: len(m) == 2)
        shapes[BLENDSHAPES.index("jawOpen")] = 0.5
        vrc.send(make_result(40, blendshapes=shapes))  # only MouthOpen changed
        vrc.send(make_result(80, n_faces=0))  # no face: nothing sent
        messages = received.wait_for(lambda m: len(m) >= 3)
    assert messages[:2] == [(PREFIX + "MouthOpen", (0.0,)), (PREFIX + "Smile", (0.0,))]
    assert messages[2:] == [(PREFIX + "MouthOpen", (0.5,))]
    with pytest.raises(ConfigError, match="not an ARKit blendshape"):
        VRChatSender(mapping={"X": "jawOpenn"})
