"""Training runs end to end on the tiny dataset: loss goes down, files and card are written,
the export loads through kaocap.runtime and matches torch, a fixed seed reproduces the run."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from kaocap.blendshapes.learned import LearnedModel, embedded_card, read_card
from kaocap.errors import ModelError
from kaocap.train.loop import train
from tests.train.conftest import EXPORTED, STEPS, train_config


@pytest.mark.parametrize("model_id", list(STEPS))
def test_loss_goes_down(model_id, trained):
    losses = np.array(trained[model_id].losses)
    k = max(3, len(losses) // 4)
    assert losses[-k:].mean() < 0.8 * losses[:k].mean(), (losses[:k], losses[-k:])


@pytest.mark.parametrize("model_id", EXPORTED)
def test_export_loads_and_matches_torch(model_id, trained, tiny_dataset):
    """Through LearnedModel (onnxruntime and OpenVINO) on real crops/meshes == torch within 1e-4."""
    import torch

    from kaocap.train.registry import create_model
    from kaocap.train.samples import load_samples

    result = trained[model_id]
    card = json.loads(result.card_path.read_text())
    assert card["model_id"] == model_id and set(card["sha256"]) == {result.weights.name, result.onnx.name}
    assert embedded_card(result.onnx)["model_id"] == model_id and read_card(result.onnx) == card
    for diffs in card["parity_max_abs"].values():
        assert diffs["blendshapes"] < 1e-4 and diffs["rotation_6d"] < 1e-4 and diffs["translation_cm"] < 1e-3
    samples = load_samples([tiny_dataset], "test")
    net = create_model(model_id)
    net.load_state_dict(torch.load(result.weights))
    net.eval()
    for runtime in ("onnxruntime", "openvino"):
        model = LearnedModel(result.onnx, runtime)
        feeds = model.feeds(crops=samples.crops, mesh=samples.mesh)
        got = model.run(feeds)
        with torch.no_grad():
            ref = net(*[torch.from_numpy(feeds[n]) for n in net.input_names])
        np.testing.assert_allclose(got.blendshapes, torch.sigmoid(ref["blend_logits"]).numpy(), atol=1e-4)
        ref_rot = ref["rotation_6d"].numpy().astype(np.float64)
        np.testing.assert_allclose(got.rotation_crop[:, :, 0], ref_rot[:, :3] / np.linalg.norm(ref_rot[:, :3], axis=1, keepdims=True), atol=1e-4)
        np.testing.assert_allclose(got.translation_cm, ref["translation_cm"].numpy(), atol=1e-3)
        if "landmarks" in ref:
            np.testing.assert_allclose(got.landmarks, ref["landmarks"].numpy(), atol=1e-4)
        else:
            assert got.landmarks is None
        if "roi" in ref:  # head learners
            np.testing.assert_allclose(got.roi, ref["roi"].numpy(), atol=1e-4)
            np.testing.assert_allclose(got.presence, torch.sigmoid(ref["presence_logit"]).numpy(), atol=1e-4)
        else:
            assert got.roi is None and got.presence is None


def test_image_learners_fit_the_fp16_budget(trained):
    """The CNNs fit 3 MB fp16, the landmark head included (it is exported: the pipeline uses it)."""
    plain, lmk, gd = (trained[m].card for m in ("blendshapes_cnn_s", "blendshapes_cnn_s_lmk", "blendshapes_cnn_s_gd"))
    assert plain["size_mb_fp16"] < lmk["size_mb_fp16"] <= 3.0 and plain["params"] < lmk["params"]
    assert gd["size_mb_fp16"] <= 3.0 and trained["blendshapes_cnn_s_gdf"].card["size_mb_fp16"] == gd["size_mb_fp16"]


def test_fixed_seed_reproduces(tiny_dataset, tmp_path):
    runs = [train(train_config("blendshapes_cnn_xs", tiny_dataset, tmp_path / str(i), seed=seed, export=False, max_steps=3))
            for i, seed in enumerate((0, 0, 1))]  # fmt: skip
    assert runs[0].losses == runs[1].losses and runs[0].losses != runs[2].losses
    assert runs[0].weights.read_bytes() == runs[1].weights.read_bytes()


def test_card_sha256_is_checked(trained, tmp_path):
    onnx = tmp_path / "m.onnx"
    src = trained["blendshapes_feat_mlp"].onnx
    onnx.write_bytes(src.read_bytes() + b"\0")
    (tmp_path / "m.card.json").write_text(src.with_name(src.stem + ".card.json").read_text().replace(src.name, onnx.name))
    with pytest.raises(ModelError, match="sha256"):
        LearnedModel(onnx)


def test_mix_sets_domain_shares(tiny_dataset):
    from kaocap.train.samples import load_samples, parse_mix, sample_weights

    s = load_samples([tiny_dataset], "train", with_crops=False)
    w = sample_weights(s.domain, parse_mix("real:4,render:1"))
    assert w[s.domain == "real"].sum() == pytest.approx(0.8) and w.sum() == pytest.approx(1.0)
    with pytest.raises(Exception, match="mix"):
        parse_mix("synthetic:1")


def test_time_budget_cuts_steps_reproducibly(tiny_dataset, tmp_path):
    """A budget measures the step time first, trains fewer steps, and the card's step count
    replays the same run with --max-steps."""
    budget = (180.0 + 2.0) / 60  # the export reserve + 2 s of training
    cut = train(train_config("blendshapes_feat_mlp", tiny_dataset, tmp_path / "a", max_steps=None,
                             time_budget_min=budget, export=False))  # fmt: skip
    fitted = cut.card["hyper_parameters"]["budget"]["fitted_steps"]
    assert fitted == len(cut.losses) < cut.card["hyper_parameters"]["budget"]["planned_steps"]
    again = train(train_config("blendshapes_feat_mlp", tiny_dataset, tmp_path / "b", max_steps=fitted, export=False))
    assert again.losses == cut.losses
