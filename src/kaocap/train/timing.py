"""Step-time measurement on synthetic inputs: sizes the default epochs to the time budget."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from kaocap.constants import NUM_LANDMARKS
from kaocap.train.augment import AugmentConfig, affine_batch, colour_batch
from kaocap.train.export import example_inputs
from kaocap.train.loop import loss_weights
from kaocap.train.losses import total_loss
from kaocap.train.registry import create_model, get_card


def _labels(n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    return {"blendshapes": torch.from_numpy(rng.random((n, 52), dtype=np.float32)),
            "valid": torch.ones(n, 52, dtype=torch.bool),
            "rotation_crop": torch.eye(3).expand(n, 3, 3).contiguous(),
            "translation_cm": torch.zeros(n, 3),
            "landmarks": torch.from_numpy(rng.random((n, NUM_LANDMARKS, 3), dtype=np.float32))}  # fmt: skip


@dataclass(frozen=True)
class StepTime:
    """Median per training step: wall_ms, and cpu_ms = CPU time of this process. On a machine
    shared with other work, cpu_ms at 1 thread is what the step costs on an idle core."""

    wall_ms: float
    cpu_ms: float


def time_train_steps(model_id: str, *, batch_size: int = 64, steps: int = 20, threads: int | None = None) -> StepTime:
    """Time full training steps (augmentation for image learners, forward, loss, backward,
    AdamW) at ``batch_size`` on random inputs; the first 3 steps are warm-up."""
    if threads:
        torch.set_num_threads(threads)
    card, rng = get_card(model_id), np.random.default_rng(0)
    learner = create_model(model_id).train()
    if card.input_kind == "image":
        learner = learner.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(learner.parameters(), lr=1e-3)
    weights, aug = loss_weights(card), AugmentConfig()
    shape_std = torch.full((52,), 0.1)
    times, cpu = [], []
    for _ in range(steps + 3):
        start, cpu_start = time.perf_counter(), time.process_time()
        feeds = example_inputs(learner, batch=batch_size, image_size=card.image_size)
        labels = _labels(batch_size, rng)
        if card.input_kind == "image":
            crops = (rng.random((batch_size, card.image_size, card.image_size, 3)) * 255).astype(np.uint8)
            crops, _, _ = affine_batch(crops, labels["landmarks"].numpy(), labels["rotation_crop"].numpy(), rng, aug)
            feeds["image"] = colour_batch(np.multiply(crops, np.float32(1 / 255), dtype=np.float32), rng, aug).transpose(0, 3, 1, 2)
        out = learner(*[torch.from_numpy(feeds[n]) for n in learner.input_names])
        loss, _ = total_loss(out, labels, weights, shape_std)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return StepTime(float(np.median(times[3:]) * 1000), float(np.median(cpu[3:]) * 1000))
