"""Export a trained learner to ONNX (opset 17, dynamic batch) with its card embedded, and check
that every installed runtime that reads ONNX reproduces the torch outputs before it is kept.

The card goes into ``metadata_props`` under ``kaocap_card`` (kaocap.blendshapes.learned); the
file's own sha256 cannot be inside it and lives in the card JSON beside the file.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from kaocap.blendshapes.learned import CARD_KEY, HEAD_OUTPUTS, LANDMARKS_OUTPUT, OUTPUT_NAMES
from kaocap.errors import ModelError
from kaocap.runtime import available_runtimes, open_session
from kaocap.train.nets import ExportWrapper, Learner, has_head_outputs, has_landmarks

log = logging.getLogger(__name__)
OPSET = 17
#: Largest |torch - runtime| allowed per output at export.
PARITY_TOLERANCE = {"blendshapes": 1e-4, "rotation_6d": 1e-4, "translation_cm": 1e-3, LANDMARKS_OUTPUT: 1e-3,
                    "roi": 1e-4, "presence": 1e-4}
ONNX_RUNTIMES = ("onnxruntime", "openvino")


def example_inputs(learner: Learner, batch: int = 2, image_size: int = 128, seed: int = 0) -> dict[str, NDArray[np.float32]]:
    """Random inputs of the right shapes for ``learner`` (for tracing and parity)."""
    rng = np.random.default_rng(seed)
    out: dict[str, NDArray[np.float32]] = {}
    for name in learner.input_names:
        if name == "image":
            out[name] = rng.random((batch, 3, image_size, image_size), dtype=np.float32)
        else:
            scaler = learner.input_scalers()[name]
            mean, std = scaler.mean.numpy(), scaler.std.numpy()
            out[name] = (mean + std * rng.standard_normal((batch, len(mean)))).astype(np.float32)
    return out


def output_names(learner: Learner) -> tuple[str, ...]:
    """The exported graph's outputs: OUTPUT_NAMES, plus ``landmarks`` for a landmark head and
    HEAD_OUTPUTS for a head learner."""
    names = (*OUTPUT_NAMES, LANDMARKS_OUTPUT) if has_landmarks(learner) else OUTPUT_NAMES
    return (*names, *HEAD_OUTPUTS) if has_head_outputs(learner) else names


def torch_outputs(learner: Learner, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """What the exported graph should return for ``feeds``, computed in torch (eval mode)."""
    wrapper = ExportWrapper(learner).eval()
    with torch.no_grad():
        values = wrapper(*[torch.from_numpy(np.asarray(feeds[n])) for n in learner.input_names])
    return {name: v.numpy() for name, v in zip(output_names(learner), values)}


def _embed_card(path: Path, card: Mapping[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card, sort_keys=True)
    model.producer_name = "kaocap"
    onnx.save(model, str(path))


def parity(path: Path, learner: Learner, feeds: Mapping[str, NDArray], runtimes: tuple[str, ...] = ONNX_RUNTIMES) -> dict[str, dict[str, float]]:
    """{runtime: {output: max |torch - runtime|}} through kaocap.export.parity.check for each
    installed runtime, on ``feeds`` and on its first row alone (batch 1); raises ParityError (a
    ModelError) if an output is off by more than PARITY_TOLERANCE."""
    from kaocap.export.parity import check

    cases = [dict(feeds), {k: np.ascontiguousarray(v[:1]) for k, v in feeds.items()}]
    worst: dict[str, dict[str, float]] = {}
    for runtime in (r for r in runtimes if r in available_runtimes()):
        session = open_session(path, runtime, threads=1)
        report = check(lambda f: torch_outputs(learner, f), session, cases, PARITY_TOLERANCE)
        worst[runtime] = dict(report.max_abs_error)
    return worst


def export_onnx(learner: Learner, path: Path, card: Mapping[str, Any], *, image_size: int = 128) -> dict[str, dict[str, float]]:
    """Write ``learner`` to ``path`` as ONNX with ``card`` embedded; returns the parity figures.

    Inputs are named ``learner.input_names`` with a dynamic batch dimension; outputs are
    :func:`output_names`. The file is written to a temporary name and renamed once parity holds.
    """
    learner = learner.eval()
    feeds = example_inputs(learner, image_size=image_size)
    tmp = path.with_name(path.stem + ".tmp.onnx")
    outputs = output_names(learner)
    dynamic = {n: {0: "batch"} for n in (*learner.input_names, *outputs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(ExportWrapper(learner), tuple(torch.from_numpy(feeds[n]) for n in learner.input_names),
                          str(tmp), dynamo=False, opset_version=OPSET, input_names=list(learner.input_names),
                          output_names=list(outputs), dynamic_axes=dynamic, do_constant_folding=True)  # fmt: skip
    _embed_card(tmp, card)
    try:
        worst = parity(tmp, learner, feeds)
    except ModelError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    log.info("exported %s (parity %s)", path, worst)
    return worst
