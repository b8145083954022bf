"""``kaocap eval --task headpose`` pieces on the committed face model: a rendered 360 degree turn
(continuity at +-180, errors on the back of the head), and the contact sheet."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared

pytest.importorskip("moderngl")


@pytest.fixture(scope="module")
def turn():
    from kaocap.eval.headpose import render_turn

    shared("heads")
    return render_turn(identity=3, step_deg=4.0)


@pytest.fixture(scope="module")
def model():
    from kaocap.blendshapes.learned import LearnedModel
    from kaocap.models import KAOCAP_FACE_MODEL, model_path

    return LearnedModel(model_path(KAOCAP_FACE_MODEL))


def test_the_model_follows_a_full_turn_without_jumps(model, turn):
    from kaocap.eval.headpose import MAX_JUMP_DEG, turn_result

    result = turn_result(model, turn)
    assert len(result.yaw_true) == 90 and result.passed and result.max_step_deg <= MAX_JUMP_DEG
    back = np.abs(result.yaw_true) > 120
    assert np.median(result.error_deg[back]) < 20.0, "the back of the head is a pose too"
    assert np.median(result.error_deg) < 10.0
    assert result.landmark_found < 0.7  # the landmark path loses the turned-away head


def test_contact_sheet(model, turn, tmp_path):
    from kaocap.eval.headpose import contact_sheet

    path = tmp_path / "sheet.png"
    contact_sheet(model, turn, shared("headpose"), path)
    assert path.stat().st_size > 50_000
