"""``kaocap train``: fit one registered learner on dataset shards, write weights, card and ONNX.

>>> from kaocap.train.loop import TrainConfig, train                      # doctest: +SKIP
>>> result = train(TrainConfig("blendshapes_cnn_s", data=(Path("ds/real"), Path("ds/render")),
...                            out=Path("runs/cnn"), mix={"real": 0.5, "render": 0.5}, seed=0))
>>> result.card["metrics"]["val"]["mean_corr"]                           # doctest: +SKIP

Same config and seed, same machine -> the same weights (sampling, augmentation and dropout all
draw from generators seeded by the config).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from kaocap.errors import InputError
from kaocap.eval.learners_metrics import mean_corr, pearson_per_shape, rotation_mae_deg
from kaocap.train import batches
from kaocap.train.augment import AugmentConfig
from kaocap.train.card import base_card, finish_card
from kaocap.train.export import export_onnx
from kaocap.train.losses import LossWeights, label_spread, total_loss
from kaocap.train.nets import Learner, rotation_6d_to_matrix
from kaocap.train.registry import LearnerCard, create_model, get_card
from kaocap.train.samples import SampleSet, load_samples, sample_weights

log = logging.getLogger(__name__)
_WARMUP_FRACTION = 0.03
#: Validation after each epoch reads at most this many samples (evenly spread); the final one all.
EPOCH_VAL_SAMPLES = 2000
#: Time kept back from a --time-budget-min for the final validation and the export, s.
_EXPORT_RESERVE_S = 180.0
_BUDGET_MARGIN = 1.1
#: A training sample is a rear view when its face axis makes more than 60 deg with the
#: camera's (cos < 0.5): head learners draw those ``rear_weight`` times as often.
REAR_COS = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """One training run. None means the learner card's default (batch_size, lr, weight_decay;
    without ``epochs`` the run lasts the card's ``train_steps``). max_steps caps the steps
    (tests, timing); threads: torch intra-op threads; time_budget_min: cut the steps so the run
    fits (measured before training; the card records the steps for ``--max-steps``)."""

    model_id: str
    data: tuple[Path, ...]
    out: Path
    mix: dict[str, float] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    seed: int = 0
    max_steps: int | None = None
    threads: int | None = None
    time_budget_min: float | None = None
    export: bool = True
    progress: bool = True
    command: str = ""
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def resolved(self, card: LearnerCard, samples: int = 0) -> dict[str, Any]:
        """The effective hyper-parameters for a training set of ``samples``; ``steps`` is the
        run's length in optimiser steps."""
        bs = self.batch_size or card.batch_size
        per_epoch = max(1, math.ceil(samples / bs))
        steps = per_epoch * self.epochs if self.epochs is not None else card.train_steps
        if self.max_steps is not None:
            steps = min(steps, self.max_steps)
        return {"steps": steps, "epochs": round(steps / per_epoch, 2), "steps_per_epoch": per_epoch,
                "batch_size": bs, "lr": self.lr or card.lr,
                "weight_decay": card.weight_decay if self.weight_decay is None else self.weight_decay}  # fmt: skip


@dataclass
class TrainResult:
    """Paths written and the card (also written as ``<model_id>.card.json``)."""

    card: dict[str, Any]
    weights: Path
    onnx: Path | None
    card_path: Path
    losses: list[float]


class _Data:
    """Train/val samples and the per-learner vector inputs."""

    def __init__(self, cfg: TrainConfig, card: LearnerCard) -> None:
        image = card.input_kind == "image"
        load = lambda split: load_samples(cfg.data, split, image_size=card.image_size, with_crops=image)
        train = load("train")
        self.train = train.subset(batches.usable(card.input_kind, train))
        try:
            val = load("val")
            self.val: SampleSet | None = val.subset(batches.usable(card.input_kind, val))
        except InputError as exc:  # a tiny dataset may have no val people
            log.warning("no validation samples (%s)", exc)
            self.val = None
        self.kind = card.input_kind
        self.head = card.family == "head"
        self.negatives = batches.NegativeCrops(cfg.seed) if self.head else None
        self.negative_fraction = float(card.extra.get("negative_fraction", 0.0))
        self.train_inputs = {} if image else batches.vector_inputs(card.input_kind, self.train)
        self.val_inputs = {} if image or self.val is None else batches.vector_inputs(card.input_kind, self.val)

    def batch(self, split: str, idx, rng=None, augment: AugmentConfig | None = None):
        samples = self.train if split == "train" else self.val
        if self.head:
            return batches.head_batch(samples, idx, rng, augment, self.negatives, self.negative_fraction)
        if self.kind == "image":
            return batches.image_batch(samples, idx, rng, augment)
        return batches.vector_batch(self.train_inputs if split == "train" else self.val_inputs, samples, idx)


def _fit_scalers(learner: Learner, data: _Data) -> None:
    for name, scaler in learner.input_scalers().items():
        scaler.set_stats(torch.from_numpy(data.train_inputs[name]))


def _schedule(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, int(total * _WARMUP_FRACTION))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def predict(learner: Learner, data: _Data, index: np.ndarray, split: str = "val", batch_size: int = 256) -> dict[str, np.ndarray]:
    """Eval-mode predictions for samples ``index`` of a split: blendshapes (N, 52) 0..1,
    rotation_crop (N, 3, 3)."""
    learner.eval()
    blend, rot = [], []
    with torch.no_grad():
        for block in batches.eval_batches(len(index), batch_size):
            inputs, _ = data.batch(split, index[block])
            out = learner(*[inputs[n] for n in learner.input_names])
            blend.append(torch.sigmoid(out["blend_logits"]).numpy())
            rot.append(rotation_6d_to_matrix(out["rotation_6d"]).numpy())
    return {"blendshapes": np.concatenate(blend), "rotation_crop": np.concatenate(rot)}


def validate(learner: Learner, data: _Data, limit: int | None = None) -> dict[str, Any]:
    """Mean and per-shape Pearson r and rotation MAE (deg) on the validation people, per domain
    (on ``limit`` evenly spread samples when given)."""
    if data.val is None or not len(data.val):
        return {}
    n = len(data.val)
    index = np.arange(n) if limit is None or n <= limit else np.linspace(0, n - 1, limit).astype(np.intp)
    pred, val = predict(learner, data, index), data.val.subset(index)
    metrics: dict[str, Any] = {}
    for domain in ("all", *sorted(set(val.domain))):
        sel = np.ones(len(val), bool) if domain == "all" else val.domain == domain
        per = pearson_per_shape(pred["blendshapes"][sel], val.blendshapes[sel], val.valid[sel])
        metrics[domain] = {"n": int(sel.sum()), "mean_corr": mean_corr(per),
                           "rotation_mae_deg": rotation_mae_deg(pred["rotation_crop"][sel], val.rotation_crop[sel]),
                           "per_shape_corr": [None if not np.isfinite(v) else round(float(v), 4) for v in per]}  # fmt: skip
    return metrics


def _step(learner, optimizer, scheduler, inputs, labels, weights: LossWeights, shape_std: torch.Tensor) -> tuple[float, dict[str, float]]:
    learner.train()
    out = learner(*[inputs[n] for n in learner.input_names])
    loss, parts = total_loss(out, labels, weights, shape_std)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(learner.parameters(), 5.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach()), parts


def _fit(learner: Learner, data: _Data, cfg: TrainConfig, hp: dict[str, Any], card: LearnerCard) -> dict[str, Any]:
    """The optimisation loop; returns the run's history (losses, step times, per-epoch val)."""
    bs, steps_per_epoch, total = hp["batch_size"], hp["steps_per_epoch"], hp["steps"]
    optimizer = torch.optim.AdamW(learner.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    scheduler, weights = _schedule(optimizer, total), loss_weights(card)
    shape_std = label_spread(data.train.blendshapes, data.train.valid)
    p = sample_weights(data.train.domain, cfg.mix)
    if "rear_weight" in card.extra:  # head learners: more of the views a face model never sees
        p = p * np.where(data.train.rotation_crop[:, 2, 2] < REAR_COS, card.extra["rear_weight"], 1.0)
        p /= p.sum()
    history: dict[str, Any] = {"loss": [], "step_s": [], "step_cpu_s": [], "epochs": []}
    augment = augment_for(card, cfg.augment)
    bar = tqdm(total=total, desc=card.model_id, unit="step", disable=not cfg.progress, leave=False)
    step, epoch = 0, 0
    while step < total:
        order = batches.epoch_indices(p, steps_per_epoch, bs, cfg.seed, epoch)
        for i, idx in enumerate(order[: total - step]):
            start, cpu_start = time.perf_counter(), time.process_time()
            rng = np.random.default_rng([cfg.seed, epoch, i + 1])
            inputs, labels = data.batch("train", idx, rng, augment)
            loss, _ = _step(learner, optimizer, scheduler, inputs, labels, weights, shape_std)
            history["loss"].append(loss)
            history["step_s"].append(time.perf_counter() - start)
            history["step_cpu_s"].append(time.process_time() - cpu_start)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", epoch=epoch)
            step += 1
        val = validate(learner, data, EPOCH_VAL_SAMPLES)
        history["epochs"].append({"epoch": epoch, "steps": step, "train_loss": float(np.mean(history["loss"][-len(order):])),
                                  "val_mean_corr": val.get("all", {}).get("mean_corr"),
                                  "val_rotation_mae_deg": val.get("all", {}).get("rotation_mae_deg")})  # fmt: skip
        epoch += 1
    bar.close()
    return history


def loss_weights(card: LearnerCard) -> LossWeights:
    """The card's loss weights: the landmark term from ``landmark_aux``, others from
    ``extra["loss"]`` (head learners leave the blendshape terms out)."""
    return LossWeights(**{"landmarks": card.landmark_aux, **card.extra.get("loss", {})})


def augment_for(card: LearnerCard, default: AugmentConfig) -> AugmentConfig:
    """``default`` with the card's ``extra["augment"]`` ranges (head learners jitter more)."""
    return replace(default, **card.extra.get("augment", {}))


def _fit_budget(cfg: TrainConfig, card: LearnerCard, hp: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
    """Fewer steps when the run would not fit ``cfg.time_budget_min``: the step time is measured
    *before* training (kaocap.train.timing), so the run itself stays deterministic and
    ``--max-steps <steps>`` reproduces it anywhere."""
    from kaocap.train.timing import time_train_steps

    step_s = time_train_steps(cfg.model_id, batch_size=hp["batch_size"], steps=8).wall_ms / 1000
    val_share = 1.0 + min(1.0, EPOCH_VAL_SAMPLES / 3 / max(1, hp["steps_per_epoch"] * hp["batch_size"]))
    left_s = cfg.time_budget_min * 60 - elapsed_s - _EXPORT_RESERVE_S
    fits = max(1, int(left_s / (step_s * val_share * _BUDGET_MARGIN)))
    log.info("measured %.0f ms/step; %d steps fit the %s min budget", step_s * 1000, fits, cfg.time_budget_min)
    steps = min(hp["steps"], fits)
    return {"steps": steps, "epochs": round(steps / hp["steps_per_epoch"], 2),
            "budget": {"minutes": cfg.time_budget_min, "measured_step_ms": round(step_s * 1000, 1),
                       "planned_steps": hp["steps"], "fitted_steps": steps}}  # fmt: skip


def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg.model_id`` and write ``<out>/<model_id>.pt``, ``.onnx`` and ``.card.json``."""
    card = get_card(cfg.model_id)
    if card.family == "rules":
        from kaocap.train.fit_rules import fit_rules

        return fit_rules(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    data = _Data(cfg, card)
    hp = cfg.resolved(card, len(data.train))
    if cfg.time_budget_min is not None:
        hp.update(_fit_budget(cfg, card, hp, time.perf_counter() - start))
    torch.manual_seed(cfg.seed)
    learner: Learner = create_model(cfg.model_id)
    if card.input_kind == "image":
        learner = learner.to(memory_format=torch.channels_last)  # measured faster on CPU
    _fit_scalers(learner, data)
    history = _fit(learner, data, cfg, hp, card)
    metrics = {"val": validate(learner, data)}
    cfg.out.mkdir(parents=True, exist_ok=True)
    weights = cfg.out / f"{cfg.model_id}.pt"
    torch.save(learner.state_dict(), weights)
    info = base_card(card, learner, cfg, hp, data.train, metrics, history, time.perf_counter() - start)
    onnx_path = None
    if cfg.export:
        onnx_path = cfg.out / f"{cfg.model_id}.onnx"
        info["parity_max_abs"] = export_onnx(learner, onnx_path, info, image_size=card.image_size)
    card_path = finish_card(info, cfg.out, [weights] + ([onnx_path] if onnx_path else []), time.perf_counter() - start)
    return TrainResult(info, weights, onnx_path, card_path, history["loss"])
