"""jobs.run: the --threads cap reaches OpenCV while the loop runs and is undone afterwards."""

from __future__ import annotations

import dataclasses

import cv2
import pytest

from kaocap import jobs
from kaocap.config import PipelineConfig


@pytest.mark.parametrize("threads", [1, 2])
def test_run_caps_opencv_threads_at_the_runtime_threads(threads):
    config = PipelineConfig()
    config = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, threads=threads))
    before = cv2.getNumThreads()
    seen: list[int] = []
    summary = jobs.run(None, config, on_result=lambda result: seen.append(cv2.getNumThreads()))
    assert summary.frames == 1 and summary.frames_with_face == 1
    assert seen == [threads]
    assert cv2.getNumThreads() == before
