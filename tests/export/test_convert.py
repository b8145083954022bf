"""kaocap export model: the CNN learner to TFLite (fp32, fp16, int8) and OpenVINO IR, each file
run on every runtime that reads it and compared with torch on real face crops.

The learner is ``blendshapes_cnn_s_lmk`` with fixed-seed weights. A freshly initialised one
answers the same for every face (its BatchNorm statistics are the defaults and its heads start
small), which would make any parity pass; so its BatchNorm statistics are measured on real
crops (and on the noise images export_onnx checks itself on) and its blendshape and rotation
heads are scaled up, until every compared output moves with the face by far more than the
tolerance (asserted). The conversion runs once for the module.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from kaocap.blendshapes.learned import LearnedModel, rotation_6d_to_matrix
from kaocap.cli import main
from kaocap.errors import ModelError, RuntimeNotAvailable
from kaocap.export import tflite
from kaocap.export.calibration import face_crops
from kaocap.export.convert import FORMATS, export_model
from kaocap.export.openvino_ir import read_rt_card
from tests.conftest import shared

torch = pytest.importorskip("torch")

MODEL_ID = "blendshapes_cnn_s_lmk"
COMPARED = ("blendshapes", "rotation_6d", "landmarks")
#: (file suffix or "onnx", runtime) -> max |torch - runtime| on every compared output.
PAIRS = {
    ("onnx", "onnxruntime"): 1e-3, ("onnx", "openvino"): 1e-3,
    ("tflite-fp32", "litert"): 1e-3, ("tflite-fp32", "openvino"): 1e-3,
    ("openvino-ir", "openvino"): 1e-3,
    ("tflite-fp16", "litert"): 1e-2, ("openvino-ir-fp16", "openvino"): 1e-2,
}  # fmt: skip


def _image_folders():
    return [shared("images", "codeformer", "inputs", "gray_faces"), shared("images", "synergynet", "img")]


@pytest.fixture(scope="module")
def crops():
    """(N >= 8, 3, 128, 128) real face crops, as the network sees them."""
    out = face_crops(_image_folders(), 128)
    assert len(out) >= 8
    return out


@pytest.fixture(scope="module")
def learner(crops):
    from kaocap.train.export import example_inputs
    from kaocap.train.registry import create_model

    torch.manual_seed(0)
    model = create_model(MODEL_ID)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the one batch below
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.concatenate([crops, example_inputs(model, batch=8)["image"]])))
        model.heads.blend.weight.mul_(30.0)
        model.heads.rotation.weight.mul_(10.0)
    return model.eval()


@pytest.fixture(scope="module")
def reference(learner, crops):
    from kaocap.train.export import torch_outputs

    out = torch_outputs(learner, {"image": crops})
    for name in COMPARED:  # a parity test that cannot fail is no test
        assert out[name].std(axis=0).max() > 1e-2, name
    return out


@pytest.fixture(scope="module")
def source(learner, tmp_path_factory):
    """The learner as kaocap trains it out: <model_id>.onnx (card embedded) + its card file."""
    from kaocap.train.card import finish_card, input_specs
    from kaocap.train.export import export_onnx
    from kaocap.train.registry import get_card

    folder = tmp_path_factory.mktemp("learner")
    card = {"model_id": MODEL_ID, "input_kind": "image", "image_size": 128, "inputs": input_specs(get_card(MODEL_ID))}
    path = folder / f"{MODEL_ID}.onnx"
    card["parity_max_abs"] = export_onnx(learner, path, card)
    finish_card(card, folder, [path], 0.0)
    return path


@pytest.fixture(scope="module")
def report(source, crops, tmp_path_factory):
    result = export_model(source, tmp_path_factory.mktemp("exported"), crops, list(FORMATS))
    print(result.format())
    return result


def _file(report, fmt):
    return next(f for f in report.files if f.format == fmt)


def _assert_close(got, reference, rows, tolerance, label):
    want = {"blendshapes": reference["blendshapes"][rows], "landmarks": reference["landmarks"][rows],
            "rotation": rotation_6d_to_matrix(reference["rotation_6d"][rows])}  # fmt: skip
    have = {"blendshapes": got.blendshapes, "landmarks": got.landmarks, "rotation": got.rotation_crop}
    for name, expected in want.items():
        err = float(np.abs(have[name] - expected).max())
        assert err <= tolerance, f"{label} {name}: max |err| {err:.3g} > {tolerance}"


def test_every_file_on_every_runtime_matches_torch_at_batch_8_and_1(report, source, crops, reference):
    for (fmt, runtime), tolerance in PAIRS.items():
        path = source if fmt == "onnx" else _file(report, fmt).path
        model = LearnedModel(path, runtime)  # sha256 checked; NHWC fed from the card's layout
        for rows in (slice(0, 8), slice(3, 4)):
            _assert_close(model.run({"image": crops[rows]}), reference, rows, tolerance, f"{fmt} on {runtime}")


def test_export_parity_per_runtime_is_in_the_report_and_the_card(report):
    expected_runtimes = {"tflite": {"litert", "openvino"}, "openvino-ir": {"openvino"}}
    for exported in report.files:
        kind, precision, _ = FORMATS[exported.format]
        assert set(exported.parity) == expected_runtimes[kind]
        card = json.loads(exported.card_path.read_text())
        assert (card["format"], card["precision"]) == (kind, precision)
        assert card["parity_max_abs"] == {r: dict(e) for r, e in exported.parity.items()}
        if precision != "int8":
            bound = 1e-3 if precision == "fp32" else 1e-2
            assert max(e[n] for e in exported.parity.values() for n in COMPARED) <= bound
            assert exported.blendshape_pearson > 0.999


def test_int8_error_and_correlation_are_reported(report):
    int8 = _file(report, "tflite-int8")
    errors = [e for per_runtime in int8.parity.values() for e in per_runtime.values()]
    print(f"int8: blendshape Pearson r {int8.blendshape_pearson:.4f}, max |err| {max(errors):.3g}")
    assert np.isfinite(errors).all() and 0.5 < int8.blendshape_pearson <= 1.0
    assert int8.stats.file_size_bytes < 0.4 * _file(report, "tflite-fp32").stats.file_size_bytes
    assert "reported" in int8.summary() and "Pearson r" in report.format()


def test_tflite_is_nhwc_without_transposes_and_carries_the_card(report):
    for fmt in ("tflite-fp32", "tflite-fp16", "tflite-int8"):
        exported = _file(report, fmt)
        assert exported.stats.kind == "tflite" and exported.stats.transposes == 0, exported.stats.format()
        assert exported.stats.inputs == (("image", (-1, 128, 128, 3)),)
        assert [n for n, _ in exported.stats.outputs] == ["blendshapes", "rotation_6d", "translation_cm", "landmarks"]
        embedded = tflite.read_metadata(exported.path)
        assert embedded["inputs"][0]["layout"] == "NHWC" and embedded["inputs"][0]["shape"] == [-1, 128, 128, 3]
        assert embedded["model_id"] == MODEL_ID and embedded["precision"] == fmt.split("-")[1]
    ir = _file(report, "openvino-ir")
    assert ir.stats.inputs == (("image", (-1, 3, 128, 128)),) and ir.stats.transposes == 0
    assert read_rt_card(ir.path)["inputs"][0]["layout"] == "NCHW"
    assert report.source_stats.transposes == 0


def test_a_modified_file_is_refused(report, tmp_path):
    for fmt in ("tflite-fp16", "openvino-ir"):
        exported = _file(report, fmt)
        copy = tmp_path / exported.path.name
        shutil.copy(exported.card_path, tmp_path / exported.card_path.name)
        copy.write_bytes(exported.path.read_bytes() + b"\0")
        if fmt == "openvino-ir":
            shutil.copy(exported.path.with_suffix(".bin"), copy.with_suffix(".bin"))
        with pytest.raises(ModelError, match="sha256"):
            LearnedModel(copy)
    ir = _file(report, "openvino-ir")  # the IR's weights file is checked too
    xml, weights = tmp_path / "w" / ir.path.name, tmp_path / "w" / ir.path.with_suffix(".bin").name
    xml.parent.mkdir()
    shutil.copy(ir.path, xml)
    shutil.copy(ir.card_path, xml.parent / ir.card_path.name)
    weights.write_bytes(ir.path.with_suffix(".bin").read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(ModelError, match=r"\.bin does not match"):
        LearnedModel(xml)


def test_cli_writes_the_ir_and_prints_stats_and_parity(source, tmp_path, capsys):
    folders = [str(p) for p in _image_folders()]
    assert main(["export", "model", str(source), "--out", str(tmp_path), "--formats", "openvino-ir",
                 "--calibration-images", *folders]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert (tmp_path / f"{MODEL_ID}_openvino.xml").is_file() and (tmp_path / f"{MODEL_ID}_openvino.card.json").is_file()
    assert "Transpose: 0" in out and "max |err| vs ONNX" in out and "parameters" in out


def test_cli_errors_are_one_line_with_their_exit_code(source, tmp_path, capsys, monkeypatch):
    from tests.export._graphs import constant_chain

    plain = tmp_path / "plain.onnx"
    plain.write_bytes(constant_chain().SerializeToString())
    cases = [
        (["export", "model", str(tmp_path / "missing.onnx"), "--out", str(tmp_path)], 4, "not found"),
        (["export", "model", str(plain), "--out", str(tmp_path)], 4, "not a kaocap learner"),
        (["export", "model", str(source), "--out", str(tmp_path), "--formats", "tflite-fp8"], 2, "tflite-fp8"),
        (["export", "model", str(source), "--out", str(tmp_path), "--formats", "tflite-int8"], 2, "--calibration-images"),
    ]  # fmt: skip
    for argv, code, message in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    monkeypatch.setitem(sys.modules, "onnx2tf", None)  # as if the converter were not installed
    with pytest.raises(RuntimeNotAvailable, match="kaocap\\[export\\]"):
        tflite.keras_model(source)
    assert main(["export", "model", str(source), "--out", str(tmp_path), "--formats", "tflite-fp32"]) == 4
    assert "onnx2tf" in capsys.readouterr().err
