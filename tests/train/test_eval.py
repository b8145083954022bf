"""kaocap eval end to end on the tiny dataset: every learner kind, the rule baseline and
MediaPipe's model in one table, Markdown + JSON + PNG written, AFLW2000 yaw from ../shared."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from kaocap.train.loop import train
from tests.conftest import SHARED
from tests.train.conftest import train_config

#: Learners in the eval test: one image learner, one mesh learner (from the shared fixture) and
#: the rule baseline fitted here.
MODELS = ("blendshapes_cnn_s_lmk", "blendshapes_hybrid_mlp", "blendshapes_rules")


@pytest.fixture(scope="module")
def model_dir(trained, tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    for model_id in MODELS[:2]:
        for path in (trained[model_id].onnx, trained[model_id].card_path):
            shutil.copy(path, out / path.name)
    train(train_config("blendshapes_rules", tiny_dataset, out))
    return out


def test_eval_writes_the_table(model_dir, tiny_dataset, tmp_path):
    from kaocap.eval.learners import evaluate
    from kaocap.eval.learners_report import write_report

    headpose = SHARED / "data" / "headpose"
    report = evaluate([model_dir], [tiny_dataset], aflw_dir=headpose if headpose.is_dir() else None, repeats=3)
    paths = write_report(report, tmp_path / "eval")
    names = [r.name for r in report.rows]
    assert names == [*sorted(MODELS), "mediapipe_blendshapes"]
    text = paths["markdown"].read_text()
    assert all(f"| {n} |" in text for n in names) and paths["png"].stat().st_size > 10_000
    data = json.loads(paths["json"].read_text())
    for row in data["rows"]:
        assert row["synth_corr"] is None or -1 <= row["synth_corr"] <= 1
        assert all(v > 0 for v in row["latency_ms"].values()) and row["latency_ms"]
    rows = {r.name: r for r in report.rows}
    assert math.isfinite(rows["blendshapes_cnn_s_lmk"].synth_rotation_mae_deg)
    assert rows["blendshapes_cnn_s_lmk"].size_mb < 3.0 and math.isfinite(rows["mediapipe_blendshapes"].synth_corr)
    assert rows["blendshapes_cnn_s_lmk"].pipeline_ms < rows["blendshapes_hybrid_mlp"].pipeline_ms  # no landmark net
    if report.aflw_faces:
        assert report.aflw_faces >= 5
        mp = rows["mediapipe_blendshapes"].aflw_yaw_mae_deg
        assert mp < 6.0, "kaocap's yaw convention vs the AFLW2000 labels"
        assert all(np.isfinite(r.aflw_yaw_mae_deg) for r in report.rows)


def test_aflw_labels_follow_kaocap_yaw():
    headpose = SHARED / "data" / "headpose"
    if not headpose.is_dir():
        pytest.skip("../shared absent")
    from kaocap.eval.learners_aflw import yaw_labels

    labels = yaw_labels(headpose)
    assert len(labels) == 2000 and labels["image00002.jpg"] == pytest.approx(-1.044306, abs=1e-5)


def test_cli_train_and_eval(tiny_dataset, tmp_path, capsys):
    from kaocap.cli import main

    out = tmp_path / "rules"
    assert main(["train", "--model", "blendshapes_rules", "--data", str(tiny_dataset), "--out", str(out), "-q"]) == 0
    assert (out / "blendshapes_rules.card.json").is_file()
    code = main(["eval", "--models", str(out), "--data", str(tiny_dataset), "--out", str(tmp_path / "ev"),
                 "--no-aflw", "--no-mediapipe", "--repeats", "2"])  # fmt: skip
    assert code == 0 and "blendshapes_rules" in capsys.readouterr().out
    assert Path(tmp_path / "ev" / "report.md").is_file()


def test_cli_rejects_a_bad_mix(tiny_dataset, tmp_path, capsys):
    from kaocap.cli import main

    code = main(["train", "--model", "blendshapes_feat_mlp", "--data", str(tiny_dataset), "--out", str(tmp_path),
                 "--mix", "synthetic:1"])  # fmt: skip
    assert code == 2 and "mix" in capsys.readouterr().err
