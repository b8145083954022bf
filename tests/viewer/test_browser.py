"""The page in real headless Chromium (Debian's chromium driven by playwright-core from
web/node_modules): it connects, the head's own jawOpen morph weight rises while the clip's mouth
opens and equals what the server's pipeline measured for the same frame, and the head turns with
the pose. A screenshot (display frozen on an open mouth) is saved as an artefact: ``viewer.png``
in this test's pytest tmp dir (pytest keeps the last three runs); the path is printed.

Needs ``chromium`` (``apt-get install chromium``; or ``KAOCAP_CHROMIUM=/path``), ``node`` and the
npm packages of web/ (``pip install .`` runs ``npm ci`` there), else it skips saying which.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from kaocap.types import FrameResult
from kaocap.viewer import serve
from kaocap.viewer.server import STATIC_DIR
from tests.conftest import ROOT, shared

CLIP = ("videos", "liveportrait", "assets", "examples", "driving", "d6.mp4")
#: d6.mp4 (30 fps): the mouth is closed up to frame 47 (jawOpen < 0.02), then opens and closes
#: (jawOpen 0.7-0.76 at 56-59, 0.6 at 62 and 72, 0.7 at 78-80); a wide window survives frames
#: that serve skips when the machine is busy.
CLOSED, OPEN, UNTIL_FRAME = range(45), range(50, 85), 85
WEB = ROOT / "web"
SCRIPT = Path(__file__).with_name("drive_page.mjs")
NODE_TIMEOUT_S = 90


def _chromium() -> str:
    path = (
        os.environ.get("KAOCAP_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path:
        pytest.skip("no chromium: apt-get install -y chromium (or set KAOCAP_CHROMIUM)")
    return path


def _requirements() -> tuple[str, str]:
    chromium = _chromium()
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on PATH: Node.js drives the browser (playwright-core)")
    if not (WEB / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.skip(
            "web/node_modules/playwright-core is missing: npm ci in web/ (pip install . does it)"
        )
    if not (STATIC_DIR / "index.html").is_file():
        pytest.skip("the viewer page is not built: npm ci && npm run build in web/")
    return chromium, node


def _drive(url: str, chromium: str, node: str, tmp_path: Path) -> dict:
    options = {
        "url": url, "webDir": str(WEB), "chromium": chromium, "userDataDir": str(tmp_path / "profile"),
        "screenshot": str(tmp_path / "viewer.png"), "untilFrame": UNTIL_FRAME, "shotAbove": 0.5,
        "timeoutMs": 60_000,
    }  # fmt: skip
    done = subprocess.run([node, str(SCRIPT), json.dumps(options)], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    return report


def test_head_follows_the_clip_in_headless_chromium(tmp_path: Path) -> None:
    chromium, node = _requirements()
    clip = shared(*CLIP)
    stop, urls, sent = threading.Event(), queue.Queue(), {}

    def keep(result: FrameResult) -> None:  # what the server sent, frame by frame
        sent[result.frame_index] = result.to_dict(landmarks=False)["faces"][0]

    kwargs = {"port": 0, "stop": stop, "on_ready": urls.put, "on_result": keep}
    thread = threading.Thread(target=serve, args=(clip,), kwargs=kwargs)
    thread.start()
    try:
        report = _drive(urls.get(timeout=60), chromium, node, tmp_path)
    finally:
        stop.set()
        thread.join(15)
    print(f"viewer screenshot: {tmp_path / 'viewer.png'}")
    assert not thread.is_alive()
    assert report["webgl"], "no WebGL in this Chromium: the head was not drawn"
    assert report["images"] > 0 and (tmp_path / "viewer.png").stat().st_size > 10_000
    # The page's own head mesh after each result it applied (null before head.glb has loaded).
    samples = [s for s in report["samples"] if s["jawOpen"] is not None and s["frame"] in sent]
    page_jaw = {s["frame"]: s["jawOpen"] for s in samples}
    closed = [page_jaw[f] for f in CLOSED if f in page_jaw]
    opened = [page_jaw[f] for f in OPEN if f in page_jaw]
    # kaocap's face CNN (the default) reads 0.07-0.13 on this closed mouth (MediaPipe's < 0.1)
    assert closed and opened and max(closed) < 0.15 and max(opened) > 0.5, (closed, opened)
    for sample in samples:
        face = sent[sample["frame"]]
        assert sample["jawOpen"] == pytest.approx(face["blendshapes"]["jawOpen"], abs=1e-6)
        q = np.array(sample["quaternionWxyz"]) @ np.array(face["pose"]["quaternion_wxyz"])
        assert abs(q) == pytest.approx(1.0, abs=1e-5)  # the same rotation
