"""Shared test fixtures. Real data comes from ../shared beside the checkout (CI has it)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


#: One clock for every test that feeds the session-wide pipeline (timestamps must increase).
clock = itertools.count(1)


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need ../shared beside the checkout")
    return path


@pytest.fixture(scope="session")
def pipeline_image_mode():
    """A detect-every-frame pipeline without filtering (MediaPipe IMAGE mode's equivalent)."""
    from kaocap import Pipeline
    from kaocap.config import PipelineConfig

    cfg = PipelineConfig.image_mode()
    with Pipeline(cfg) as pipe:
        yield pipe
