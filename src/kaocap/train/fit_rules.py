"""Fit the rule-based baseline (kaocap.blendshapes.rules): two numbers per shape, no training.

Writes ``<out>/blendshapes_rules.json`` (the fitted ranges) and its card.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kaocap.blendshapes.rules import RuleSolver
from kaocap.errors import InputError
from kaocap.eval.learners_metrics import mean_corr, pearson_per_shape, rotation_mae_deg
from kaocap.train import batches
from kaocap.train.card import base_card, finish_card
from kaocap.train.registry import get_card
from kaocap.train.samples import SampleSet, load_samples


def _metrics(solver: RuleSolver, val: SampleSet) -> dict[str, Any]:
    out = solver.predict(val.mesh)
    per = pearson_per_shape(out.blendshapes, val.blendshapes, val.valid & solver.valid)
    return {"all": {"n": len(val), "mean_corr": mean_corr(per),
                    "rotation_mae_deg": rotation_mae_deg(out.rotation_crop, val.rotation_crop),
                    "per_shape_corr": [None if not np.isfinite(v) else round(float(v), 4) for v in per]}}  # fmt: skip


def fit_rules(cfg: Any):
    """Fit on the train split of ``cfg.data`` (samples with a known mesh), report on val."""
    from kaocap.train.loop import TrainResult

    start = time.perf_counter()
    card = get_card(cfg.model_id)
    train = load_samples(cfg.data, "train", with_crops=False)
    train = train.subset(batches.usable("rules", train))
    feats = batches.vector_inputs("rules", train)["features"]
    solver = RuleSolver().fit(feats, train.blendshapes, train.valid, train.rotation_crop.astype(np.float64),
                              train.mesh, train.translation_cm)  # fmt: skip
    try:
        val = load_samples(cfg.data, "val", with_crops=False)
        metrics = {"val": _metrics(solver, val.subset(val.mesh_ok()))}
    except InputError:  # a tiny dataset may have no val people
        metrics = {"val": {}}
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / f"{cfg.model_id}.json"
    solver.save(path)
    info = base_card(card, solver, cfg, cfg.resolved(card, len(train)), train, metrics, {}, time.perf_counter() - start)
    info["weights"] = path.name
    card_path = finish_card(info, cfg.out, [path], time.perf_counter() - start)
    return TrainResult(info, path, None, card_path, [])
