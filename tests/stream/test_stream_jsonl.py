"""JSON Lines writer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kaocap.errors import OutputError
from kaocap.stream import JsonlWriter


def test_one_object_per_line_from_to_dict(tmp_path: Path, make_result) -> None:
    results = [make_result(t, n_faces=n) for t, n in [(0, 1), (40, 0), (80, 2)]]
    with JsonlWriter(tmp_path / "out.jsonl") as out:
        for result in results:
            out.write(result)
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict(landmarks=False) for r in results]
    assert "landmarks" not in lines[0]


def test_landmarks_option(tmp_path: Path, make_result) -> None:
    with JsonlWriter(tmp_path / "out.jsonl", landmarks=True) as out:
        out.write(make_result(0))
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert len(record["faces"][0]["landmarks"]) == 478


def test_a_job_that_stops_early_leaves_whole_lines(tmp_path: Path, make_result) -> None:
    out = JsonlWriter(tmp_path / "out.jsonl", landmarks=True)  # long lines (~20 kB)
    for t in range(3):
        out.write(make_result(t * 40))
    # Not closed: everything written so far must already be on disk, line by line.
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert [json.loads(line)["timestamp_ms"] for line in text.splitlines()] == [0, 40, 80]
    out.close()


def test_streams_and_stdout(make_result, capsys: pytest.CaptureFixture[str]) -> None:
    buffer = io.StringIO()
    with JsonlWriter(buffer) as out:
        out.write(make_result(5))
    assert json.loads(buffer.getvalue())["timestamp_ms"] == 5
    assert not buffer.closed  # a stream passed in stays open
    binary = io.BytesIO()
    with JsonlWriter(binary) as out:
        out.write(make_result(6))
    assert json.loads(binary.getvalue())["timestamp_ms"] == 6
    with JsonlWriter("-") as out:
        out.write(make_result(7))
    assert json.loads(capsys.readouterr().out)["timestamp_ms"] == 7


def test_close_is_idempotent_and_final(tmp_path: Path, make_result) -> None:
    out = JsonlWriter(tmp_path / "out.jsonl")
    out.close()
    out.close()
    with pytest.raises(OutputError, match="closed"):
        out.write(make_result(0))


def test_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no/such/dir/out.jsonl") as info:
        JsonlWriter(tmp_path / "no" / "such" / "dir" / "out.jsonl")
    assert "\n" not in str(info.value)
    with pytest.raises(OutputError, match="folder"):
        JsonlWriter(tmp_path)
