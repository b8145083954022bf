"""``kaocap video``: clips in a process pool and on a local Ray cluster give the same results
as one process; a bad clip fails alone."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kaocap.cli import main
from kaocap.offline import find_clips, output_name, process_clips
from tests.conftest import shared

CLIPS = ("sadtalker/examples/ref_video/WDA_KatieHill_000.mp4",
         "sadtalker/examples/ref_video/WDA_AlexandriaOcasioCortez_000.mp4", "lia_x/driving1.mp4")  # fmt: skip
FRAMES = 12


def _results(path: Path) -> list[dict]:
    """A JSON Lines file without the measured wall times."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("timings_ms")
    return rows


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    out = []
    for name in CLIPS:
        dst = folder / name.replace("/", "_")
        shutil.copy(shared("videos", *name.split("/")), dst)
        out.append(dst)
    return out


@pytest.fixture(scope="module")
def single(clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    results = process_clips(clips, out, workers=1, max_frames=FRAMES)
    assert all(r.error is None and r.frames == FRAMES and r.faces >= FRAMES for r in results)
    return out


def test_a_pool_gives_what_one_process_gives(clips, single, tmp_path):
    results = process_clips(clips, tmp_path, workers=2, max_frames=FRAMES)
    assert [Path(r.clip) for r in results] == clips  # in the order asked
    for r in results:
        assert _results(Path(r.output)) == _results(single / Path(r.output).name)


def test_ray_gives_what_one_process_gives(clips, single, tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    subprocess.run([*ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=180)  # fmt: skip
    try:
        results = process_clips(clips, tmp_path, ray_address=f"127.0.0.1:{port}", max_frames=FRAMES)
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True, timeout=120)
    for r in results:
        assert r.error is None and _results(Path(r.output)) == _results(single / Path(r.output).name)


def test_a_bad_clip_fails_alone(clips, tmp_path, capsys):
    bad = tmp_path / "in" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_text("not a video")
    shutil.copy(clips[0], bad.parent / clips[0].name)
    code = main(["video", str(bad.parent), "--out", str(tmp_path / "out"), "--workers", "2", "--max-frames", "5"])
    out, err = capsys.readouterr()
    assert code == 3 and "1 of 2 clips failed" in err and "broken.mp4" in err
    assert len(_results(tmp_path / "out" / output_name(bad.parent / clips[0].name, [bad, bad.parent / clips[0].name]))) == 5
    assert "faces/s" in out


def test_same_stems_get_distinct_outputs(tmp_path):
    a, b = tmp_path / "x" / "take.mp4", tmp_path / "y" / "take.mp4"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"0")
    assert find_clips([tmp_path]) == [a, b]
    assert {output_name(a, [a, b]), output_name(b, [a, b])} == {"x__take.jsonl", "y__take.jsonl"}
