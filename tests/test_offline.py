"""``kaocap video``: clips in a process pool and on a local Ray cluster give the same results
as one process, whatever the batch kaocap's networks ran them in; a bad clip fails alone."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from kaocap._batch import Batcher
from kaocap.cli import main
from kaocap.config import PipelineConfig
from kaocap.offline import (
    BATCH,
    Job,
    find_clips,
    groups,
    offline_config,
    output_name,
    process_clip,
    process_clips,
)
from tests.conftest import shared

CLIPS = ("sadtalker/examples/ref_video/WDA_KatieHill_000.mp4",
         "sadtalker/examples/ref_video/WDA_AlexandriaOcasioCortez_000.mp4", "lia_x/driving1.mp4")  # fmt: skip
FRAMES = 12
MODELS = ("mediapipe", "kaocap")


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
def single(clips, tmp_path_factory) -> dict[str, Path]:
    """Every clip in one process, side by side (kaocap's face network at batch 3)."""
    outs = {}
    for model in MODELS:
        outs[model] = tmp_path_factory.mktemp(f"single_{model}")
        results = process_clips(clips, outs[model], PipelineConfig(model=model), workers=1, max_frames=FRAMES)
        assert all(r.error is None and r.frames == FRAMES and r.faces >= FRAMES for r in results)
    return outs


@pytest.mark.parametrize("model", MODELS)
def test_a_pool_gives_what_one_process_gives(clips, single, tmp_path, model):
    results = process_clips(clips, tmp_path, PipelineConfig(model=model), workers=2, max_frames=FRAMES)
    assert [Path(r.clip) for r in results] == clips  # in the order asked
    for r in results:
        assert r.error is None and _results(Path(r.output)) == _results(single[model] / Path(r.output).name)


def test_a_clip_alone_gives_what_it_gives_in_a_batch(clips, single, tmp_path):
    cfg = offline_config(PipelineConfig(model="kaocap"))
    r = process_clip(str(clips[2]), str(tmp_path / "alone.jsonl"), cfg, max_frames=FRAMES)
    assert r.error is None and _results(tmp_path / "alone.jsonl") == _results(single["kaocap"] / output_name(clips[2], clips))


def test_the_output_is_what_kaocap_run_writes(clips, single, tmp_path):
    from kaocap.jobs import run

    cfg = offline_config(PipelineConfig(model="kaocap"))
    run(str(clips[0]), cfg, jsonl=tmp_path / "run.jsonl", max_frames=FRAMES)
    assert _results(tmp_path / "run.jsonl") == _results(single["kaocap"] / output_name(clips[0], clips))


def test_ray_gives_what_one_process_gives(clips, single, tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    subprocess.run([*ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=180)  # fmt: skip
    try:
        runs = {m: process_clips(clips, tmp_path / m, PipelineConfig(model=m), ray_address=f"127.0.0.1:{port}",
                                 max_frames=FRAMES) for m in MODELS}  # fmt: skip
    finally:
        subprocess.run([*ray, "stop", "--force"], check=False, capture_output=True, timeout=120)
    for model, results in runs.items():
        assert [Path(r.clip) for r in results] == clips
        for r in results:
            assert r.error is None and _results(Path(r.output)) == _results(single[model] / Path(r.output).name)


def test_a_bad_clip_fails_alone(clips, tmp_path, capsys):
    bad = tmp_path / "in" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_text("not a video")
    shutil.copy(clips[0], bad.parent / clips[0].name)
    code = main(["video", str(bad.parent), "--out", str(tmp_path / "out"), "--workers", "2", "--max-frames", "5",
                 "--model", "kaocap"])  # fmt: skip
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


def test_groups_cover_every_clip_once_balanced_and_at_most_a_batch():
    jobs = [Job(f"{i}.mp4", "", tuple(range(n))) for i, n in enumerate([100, 10, 90, 20, 50, 50])]
    parts = groups(jobs, 2)
    assert sorted(i for p in parts for i in p) == list(range(6))
    assert [sum(len(jobs[i].frames) for i in p) for p in parts] == [160, 160]
    capped = groups(jobs, 2, max_frames=50)  # the frames run, not the frames there are
    assert sorted(sum(min(len(jobs[i].frames), 50) for i in p) for p in capped) == [110, 120]
    many = groups([Job(f"{i}.mp4", "", (0,)) for i in range(2 * BATCH + 1)], 2)
    assert len(many) == 3 and max(map(len, many)) <= BATCH


class _Doubler:
    """A Session that doubles its input, counting calls, and fails on a negative input."""

    inputs = outputs = ()

    def __init__(self) -> None:
        self.batches: list[int] = []

    def run(self, feeds):
        x = feeds["x"]
        self.batches.append(len(x))
        if (x < 0).any():
            raise ValueError("negative input")
        return {"y": 2 * x}


def _call_from_threads(batcher: Batcher, sessions: list, inputs: list[np.ndarray]) -> list:
    out: list = [None] * len(inputs)

    def call(i: int) -> None:
        try:
            out[i] = sessions[i].run({"x": inputs[i]})["y"]
        except ValueError as err:
            out[i] = err
        finally:
            batcher.leave()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return out


def test_a_batcher_runs_each_network_once_for_every_member_and_splits_the_rows():
    face, head = _Doubler(), _Doubler()
    batcher = Batcher(4)
    sessions = [batcher.share("face", face), batcher.share("face", _Doubler()), batcher.share("face", face),
                batcher.share("head", head)]  # fmt: skip
    inputs = [np.full((n, 2), n, np.float32) for n in (1, 2, 3, 4)]
    out = _call_from_threads(batcher, sessions, inputs)
    assert face.batches == [6] and head.batches == [4]  # the first session given runs the batch
    for x, y in zip(inputs, out):
        np.testing.assert_array_equal(y, 2 * x)


def test_a_failing_batch_fails_every_member_and_hangs_none():
    batcher = Batcher(2)
    sessions = [batcher.share("face", _Doubler()) for _ in range(2)]
    out = _call_from_threads(batcher, sessions, [np.ones((1, 2), np.float32), -np.ones((1, 2), np.float32)])
    assert all(isinstance(o, ValueError) for o in out)


@pytest.mark.parametrize("model_id", ["KAOCAP_FACE_MODEL", "KAOCAP_HEAD_MODEL"])
def test_kaocaps_networks_give_a_row_the_same_bits_in_any_batch(model_id):
    from kaocap import models
    from kaocap.blendshapes.learned import LearnedModel
    from kaocap.pipeline import DEFAULT_RUNTIMES

    if not hasattr(models, model_id):
        pytest.skip(f"no {model_id} in this version")
    model = LearnedModel(models.model_path(getattr(models, model_id)), DEFAULT_RUNTIMES["face"])
    x = np.random.default_rng(0).random((5, 3, model.image_size, model.image_size), dtype=np.float32)
    alone = [model.session.run({"image": x[i : i + 1]}) for i in range(5)]
    batch = model.session.run({"image": x})
    for i in range(5):
        for name, value in batch.items():
            assert np.array_equal(value[i], alone[i][name][0]), name


def test_no_landmarks_leaves_out_the_landmarks_and_nothing_else(clips, single, tmp_path):
    assert main(["video", str(clips[2]), "--out", str(tmp_path), "--model", "kaocap", "--max-frames", str(FRAMES),
                 "--workers", "1", "--no-landmarks", "-q"]) == 0  # fmt: skip
    full = _results(single["kaocap"] / output_name(clips[2], clips))
    for row in full:
        for face in row["faces"]:
            face.pop("landmarks")
    assert _results(tmp_path / output_name(clips[2], [clips[2]])) == full


def test_bench_offline_counts_faces_on_the_decoded_frames(clips):
    from kaocap.bench import OfflineRow, bench_offline, format_offline

    rows = bench_offline(clips[:1], frames=3, workers=1, rounds=1, with_peer=False)
    assert [(r.engine, r.processes, r.frames, r.faces) for r in rows] == [("kaocap", 1, 3, 3)]
    rows = bench_offline(clips[:1], frames=3, workers=1, rounds=1, with_peer=False, landmarks=False)
    assert [(r.engine, r.faces) for r in rows] == [("kaocap, no landmarks", 3)]
    table = format_offline([OfflineRow("kaocap", 2, 10, 10, 1.0, 2.0), OfflineRow("MediaPipe IMAGE", 2, 10, 10, 4.0, 6.0)])
    assert table.splitlines()[-1].split()[-2:] == ["4.00x", "3.00x"]


def test_a_stopped_clip_ends_at_a_whole_frame(clips, tmp_path):
    """What process_group does on Ctrl-C: every clip stops before its next frame."""
    from kaocap.bench import load_frames
    from kaocap.capture import Frame
    from kaocap.offline import _run_clip, _shared_pipeline

    stop = threading.Event()
    shared = _shared_pipeline(offline_config(PipelineConfig(model="kaocap")), Batcher(1))
    decoded = tuple(Frame(f, 40 * i, i) for i, f in enumerate(load_frames(str(clips[0]), 5)))
    r = _run_clip(Job(str(clips[0]), str(tmp_path / "a.jsonl"), decoded), shared, None, stop)
    assert r.error is None and r.frames == 5  # not stopped
    stop.set()
    r = _run_clip(Job(str(clips[0]), str(tmp_path / "b.jsonl"), decoded), shared, None, stop)
    assert r.error == "interrupted" and r.frames == 0 and (tmp_path / "b.jsonl").read_text() == ""
