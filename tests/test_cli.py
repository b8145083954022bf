"""The CLI through ``main([...])``: jobs, outputs, and every bad input with its exit code."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from kaocap.capture import default_image
from kaocap.cli import main
from kaocap.stream.csv_livelink import read_livelink_csv
from tests.conftest import shared

CLIP = ("sadtalker", "examples", "ref_video", "WDA_KatieHill_000.mp4")


def _one_line_error(capsys, needle: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("kaocap: error:") and needle in err[-1], err


def test_run_on_the_embedded_default(capsys):
    assert main(["run", "-q"]) == 0
    out = capsys.readouterr().out
    assert "a face in 1" in out and "face model kaocap" in out and "face 0:" in out and "mouthSmile" in out


def test_run_writes_every_output(tmp_path):
    jsonl, csv, preview = tmp_path / "out.jsonl", tmp_path / "out.csv", tmp_path / "out.mp4"
    code = main(["run", str(shared("videos", *CLIP)), "--jsonl", str(jsonl), "--csv", str(csv),
                 "--preview", str(preview), "--max-frames", "12", "-q"])  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 12 and all(len(line["faces"]) == 1 for line in lines)
    assert [line["frame"] for line in lines] == list(range(12))
    timecodes, values, names = read_livelink_csv(csv)
    assert len(timecodes) == 12 and values.shape == (12, 61) and names[0] == "EyeBlinkLeft"
    with av.open(str(preview)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (512, 512, 3)
    assert frames[0].mean() > 40  # the video frame under the overlay, not black


def test_jsonl_to_stdout_is_pure_json(capsys):
    assert main(["run", "--jsonl", "-", "--no-landmarks"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "landmarks" not in json.loads(lines[0])["faces"][0]


def test_image_folder_and_no_face_image(tmp_path):
    cv2.imwrite(str(tmp_path / "a_face.png"), cv2.cvtColor(default_image(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "b_wall.png"), np.full((240, 320, 3), 128, np.uint8))
    out = tmp_path / "out.jsonl"
    assert main(["run", str(tmp_path), "--jsonl", str(out), "-q"]) == 0
    faces = [len(json.loads(line)["faces"]) for line in out.read_text().splitlines()]
    assert faces == [1, 0]


@pytest.mark.parametrize("name,content,needle", [
    ("missing.mp4", None, "no such file"),
    ("empty.mp4", b"", "empty"),
    ("notes.mp4", b"not a video", "not a video"),
    ("bad.png", b"\x89PNG garbage", "not an image"),
])  # fmt: skip
def test_unreadable_inputs_exit_3_with_one_line(tmp_path, capsys, name, content, needle):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    assert main(["run", str(tmp_path / name), "-q"]) == 3
    _one_line_error(capsys, needle)


def test_camera_that_does_not_exist(capsys):
    assert main(["run", "--camera", "99", "-q"]) == 3
    _one_line_error(capsys, "camera 99")


def _faststart_truncated(tmp_path):
    """A real clip remuxed with its index first, then cut to a third: it ends mid-stream."""
    whole = tmp_path / "whole.mp4"
    with av.open(str(shared("videos", *CLIP))) as src, av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    return cut


def test_video_that_ends_mid_stream_keeps_whole_outputs(tmp_path, capsys):
    jsonl, csv = tmp_path / "out.jsonl", tmp_path / "out.csv"
    code = main(["run", str(_faststart_truncated(tmp_path)), "--jsonl", str(jsonl), "--csv", str(csv), "-q"])
    assert code == 3
    _one_line_error(capsys, "truncated")
    lines = jsonl.read_text().splitlines()
    assert 10 < len(lines) < 200 and all(json.loads(line)["faces"] for line in lines)
    assert len(read_livelink_csv(csv)[0]) == len(lines)


def test_unwritable_output_exits_5(capsys):
    assert main(["run", "--jsonl", "/nonexistent-dir/x/out.jsonl", "-q"]) == 5
    _one_line_error(capsys, "out.jsonl")


def test_bad_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "k.toml"
    cfg.write_text("max_face = 3\n")
    assert main(["run", "--config", str(cfg), "-q"]) == 2
    _one_line_error(capsys, "did you mean 'max_faces'")


def test_calibrate_then_run_with_it(tmp_path, capsys):
    cal = tmp_path / "neutral.json"
    assert main(["calibrate", str(shared("videos", *CLIP)), "--seconds", "1", "-o", str(cal)]) == 0
    neutral = json.loads(cal.read_text())
    assert neutral["frames"] >= 10 and set(neutral["neutral"]) >= {"jawOpen", "tongueOut"}
    out = tmp_path / "out.jsonl"
    assert main(["run", str(shared("videos", *CLIP)), "--calibration", str(cal), "--max-frames", "25",
                 "--jsonl", str(out), "-q"]) == 0  # fmt: skip
    rows = [json.loads(line)["faces"][0]["blendshapes"] for line in out.read_text().splitlines()]
    resting = np.median([[r[k] for k in ("eyeSquintLeft", "mouthClose", "browDownLeft")] for r in rows], axis=0)
    assert resting.max() < 0.05
    assert neutral["model"] == "kaocap"
    capsys.readouterr()
    assert main(["run", str(shared("videos", *CLIP)), "--calibration", str(cal), "--model", "mediapipe", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "recorded with --model kaocap" in err


def test_info_names_the_default_and_every_model_with_its_hash(capsys):
    from kaocap.models import CARDS, KAOCAP_FACE_MODEL, OWN_MODELS, model_path, sha256_file

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "default face model: kaocap" in out
    face = model_path(KAOCAP_FACE_MODEL)
    assert f"{KAOCAP_FACE_MODEL}: {face.stem}," in out and sha256_file(face)[:16] in out
    assert all(f"\n{m}: " in out for m in [*OWN_MODELS, *CARDS])


def test_bench_prints_the_table(capsys):
    assert main(["bench", "--frames", "8", "--no-peer"]) == 0
    out = capsys.readouterr().out
    assert "tracking" in out and "detect every frame" in out and "1 core" in out


def test_bench_face_model_batches(capsys):
    assert main(["bench", "--runtime", "all", "--batch", "1,4", "--frames", "3"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    runtimes = {r[0] for r in rows}
    assert {"onnxruntime", "openvino"} <= runtimes and len(rows) == 2 * len(runtimes)
    for r in rows:  # runtime file batch ms/call ms/face faces/s
        batch, per_call, per_face = int(r[2]), float(r[3]), float(r[4])
        assert per_face == pytest.approx(per_call / batch, abs=6e-3)  # both printed rounded


def test_bench_bad_batch_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--runtime", "all", "--batch", "0,8"])
    assert exit_.value.code == 2 and "batch sizes must be >= 1" in capsys.readouterr().err


def test_bench_runtimes_table(capsys):
    assert main(["bench", "--runtimes", "--frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "landmarks" in out and "blendshapes" in out and "fastest" in out


class _CameraThatDies:
    """A live source that delivers three frames, then loses its device for good."""

    name, live, fps, frame_count = "camera 0", True, 30.0, None

    def __iter__(self):
        from kaocap.capture import Frame
        from kaocap.errors import SourceLost

        for i in range(3):
            yield Frame(default_image(), 33 * i, i)
        raise SourceLost("camera 0 stopped delivering frames")

    def close(self):
        pass


def test_camera_gone_for_good_waits_until_stopped_and_keeps_outputs(tmp_path, monkeypatch):
    import threading

    import kaocap.jobs
    from kaocap.errors import InputError

    def reopen(spec):
        if reopen.calls:
            raise InputError("camera 0 could not be opened")
        reopen.calls += 1
        return _CameraThatDies()

    reopen.calls = 0
    monkeypatch.setattr(kaocap.jobs, "open_source", reopen)
    out, csv = tmp_path / "out.jsonl", tmp_path / "out.csv"
    stop = threading.Event()
    # the user presses Ctrl-C during the outage that follows the third frame
    press = lambda result: result.frame_index == 2 and threading.Timer(0.5, stop.set).start()
    summary = kaocap.jobs.run(0, jsonl=out, csv=csv, stop=stop, on_result=press)
    assert summary.error is None and summary.frames == 3
    assert [json.loads(line)["frame"] for line in out.read_text().splitlines()] == [0, 1, 2]
    assert len(read_livelink_csv(csv)[0]) == 3


def _start_long_run(tmp_path):
    import subprocess
    import sys
    import time

    out = tmp_path / "out.jsonl"
    clip = shared("videos", "liveportrait", "assets", "examples", "driving", "d6.mp4")  # 1008 frames
    proc = subprocess.Popen([sys.executable, "-m", "kaocap.cli", "run", str(clip), "--jsonl", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    return proc, out


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_signal_flushes_outputs_and_exits_0(tmp_path, signum):
    import signal
    import time

    proc, out = _start_long_run(tmp_path)
    sent = time.monotonic()
    proc.send_signal(getattr(signal, signum))
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - sent < 1.0
    lines = out.read_text().splitlines()
    assert 0 < len(lines) < 1008 and all(json.loads(line)["faces"] for line in lines)


def test_second_signal_exits_at_once(monkeypatch):
    import os
    import signal

    import kaocap.cli

    exits = []
    monkeypatch.setattr(kaocap.cli.os, "_exit", exits.append)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # SIG_IGN under nohup
    with kaocap.cli._stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set() and exits == []
        os.kill(os.getpid(), signal.SIGTERM)
        assert exits == [130]
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_run_sends_to_a_vmc_receiver_and_a_closed_port(capsys, caplog):
    from tests.stream._net import free_udp_port, osc_server

    closed = free_udp_port()
    with osc_server() as (port, received):
        code = main(["run", "--send", f"vmc:127.0.0.1:{port}", "--send", f"livelink:127.0.0.1:{closed}",
                     "--stats", "-q"])  # fmt: skip
        messages = received.wait_for(lambda m: any(a == "/VMC/Ext/Blend/Apply" for a, _ in m))
    assert code == 0
    values = {args[0]: args[1] for address, args in messages if address == "/VMC/Ext/Blend/Val"}
    assert values["MouthSmileLeft"] > 0.5 and len(values) >= 52  # the portrait smiles
    out = capsys.readouterr().out
    assert f"sent to vmc:127.0.0.1:{port}" in out and "p99_ms" in out
    assert all(f"cpu {part}" in out for part in ("capture", "pipeline", "outputs"))  # --stats per part


def test_camera_outage_reconnects_and_tells_live_targets(monkeypatch):
    import kaocap.jobs
    import kaocap.stream.senders
    from kaocap.capture import ReconnectingSource

    class Recorder:
        name = "recorder"

        def __init__(self):
            self.faces = []

        def send(self, result):
            self.faces.append(len(result.faces))

        def close(self):
            pass

    recorder = Recorder()
    monkeypatch.setattr(kaocap.jobs, "open_source", lambda spec: _CameraThatDies())
    monkeypatch.setattr(kaocap.stream.senders, "open_sender", lambda spec: recorder)
    original = ReconnectingSource.__init__
    monkeypatch.setattr(ReconnectingSource, "__init__",
                        lambda self, factory, **kw: original(self, factory, **{**kw, "backoff_start_s": 0.1}))  # fmt: skip
    summary = kaocap.jobs.run(0, send=["recorder"], max_frames=7)
    assert summary.error is None and summary.frames == 7 and summary.frames_with_face == 7
    assert 0 in recorder.faces  # "no face" went out during the outage
    assert recorder.faces[-1] == 1


def test_soak_prints_the_table_without_leaking_descriptors_or_threads(capsys):
    assert main(["soak", "--frames", "400", "--window", "100", "--clip-frames", "20", "-q"]) == 0
    rows = {line[:24].strip(): line[24:].split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert float(rows["open file descriptors"][2]) == 0 and float(rows["threads"][2]) == 0
    assert abs(float(rows["resident memory MB"][2])) < 10
