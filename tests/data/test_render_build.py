"""kaocap data render: blocks, splits by person, resume, card."""

from __future__ import annotations

import json

from kaocap.cli import main
from kaocap.data import shards
from kaocap.data.render_build import plan_blocks


def test_blocks_cover_the_count_and_split_8_1_1():
    blocks = plan_blocks(2600, 256)
    assert sum(n for _, n, _ in blocks) == 2600 and blocks[-1] == (2560, 40, "train") and blocks[9][2] == "test"
    assert [s for _, _, s in blocks[:10]].count("train") == 8


def test_render_cli_builds_resumes_and_keeps_people_apart(tmp_path, capsys):
    out = tmp_path / "render"
    args = ["data", "render", "--count", "30", "--block", "3", "--no-teacher", "--workers", "1", "--out", str(out), "-q"]
    assert main(args) == 0
    people = {split: {p for s in shards.iter_shards(out, split) for p in s["person"]} for split in shards.SPLITS}
    assert sum(len(s) for s in shards.iter_shards(out)) >= 30
    assert not (people["train"] & people["val"]) and not (people["train"] & people["test"])
    assert (out / "card").is_dir() and json.loads((out / "manifest.json").read_text())["count"] == 30
    capsys.readouterr()
    assert main(args) == 0
    assert "(0 labelled now" in capsys.readouterr().out
