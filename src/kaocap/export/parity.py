"""Parity: the one check every graph pass, fusion and export goes through before it is written.

``check(reference, candidate, inputs, tolerance)`` runs both on the same inputs and compares
their outputs by name (max absolute error per output, against a tolerance per output).
Either side can be an ``onnx.ModelProto``, a path to an ``.onnx`` file (run with onnxruntime),
a :class:`kaocap.runtime.Session` (any runtime), or a plain callable ``feeds -> outputs``
(e.g. the unfused numpy/OpenCV pipeline).

>>> report = check(model, passes.fold_constants(model), example_feeds(model), 1e-5)  # doctest: +SKIP
>>> print(report)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ModelError, OutputError
from kaocap.export._onnx import load_model, require_onnx, run_model

log = logging.getLogger(__name__)

Feeds = Mapping[str, NDArray]
#: What parity can run: a model, a model file, a runtime Session, or ``feeds -> outputs``.
Runnable = Any


class ParityError(ModelError):
    """The candidate's outputs differ from the reference's beyond the tolerance (or are missing)."""


@dataclass(frozen=True, slots=True)
class ParityReport:
    """Per compared output (candidate's name): max absolute error over every input case, and
    its tolerance. ``cases`` is how many input sets were run."""

    max_abs_error: Mapping[str, float]
    tolerance: Mapping[str, float]
    cases: int

    @property
    def ok(self) -> bool:
        return all(self.max_abs_error[n] <= self.tolerance[n] for n in self.max_abs_error)

    def __str__(self) -> str:
        rows = [f"  {n}: max |err| {e:.3g} (tolerance {self.tolerance[n]:.3g})"
                f"{'' if e <= self.tolerance[n] else '  FAIL'}" for n, e in self.max_abs_error.items()]
        return f"parity over {self.cases} input set(s): {'ok' if self.ok else 'FAILED'}\n" + "\n".join(rows)


def as_callable(runnable: Runnable) -> Callable[[Feeds], Mapping[str, NDArray]]:
    """``feeds -> outputs`` for a ModelProto, an .onnx path, a Session or a callable."""
    onnx = require_onnx()
    if isinstance(runnable, (str, Path)):
        runnable = load_model(runnable)
    if isinstance(runnable, onnx.ModelProto):
        model = runnable
        return lambda feeds: run_model(model, feeds)
    if hasattr(runnable, "run") and hasattr(runnable, "inputs"):
        return runnable.run
    if callable(runnable):
        return runnable
    raise TypeError(f"cannot run a {type(runnable).__name__} for a parity check")


def _max_abs_error(name: str, ref: NDArray, cand: NDArray) -> float:
    ref, cand = np.asarray(ref), np.asarray(cand)
    if ref.shape != cand.shape:
        raise ParityError(f"output {name!r}: shape {cand.shape} differs from the reference's {ref.shape}")
    if ref.size == 0:
        return 0.0
    ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
    same = (ref64 == cand64) | (np.isnan(ref64) & np.isnan(cand64))  # equal infinities too
    with np.errstate(invalid="ignore"):
        err = np.where(same, 0.0, np.abs(ref64 - cand64))
    return float(np.nan_to_num(err, nan=math.inf).max())


def _pairs(ref: Mapping[str, NDArray], cand: Mapping[str, NDArray],
           output_map: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """candidate name -> reference name of the outputs to compare."""
    if output_map is None:
        pairs = {n: n for n in cand if n in ref}
    elif isinstance(output_map, Mapping):
        pairs = {c: r for r, c in output_map.items()}
    else:
        pairs = {n: n for n in output_map}
    missing = [f"{c!r} (candidate)" for c in pairs if c not in cand]
    missing += [f"{r!r} (reference)" for r in pairs.values() if r not in ref]
    if missing:
        raise ParityError(f"outputs to compare are missing: {', '.join(missing)}")
    if not pairs:
        raise ParityError(f"no output to compare: reference has {sorted(ref)}, candidate {sorted(cand)}")
    return pairs


def _run(role: str, run: Callable[[Feeds], Mapping[str, NDArray]], feeds: Feeds) -> Mapping[str, NDArray]:
    try:
        return run(feeds)
    except ParityError:
        raise
    except Exception as exc:  # every runtime raises its own types; the message says what broke
        shapes = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in feeds.items())
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ParityError(f"the {role} fails to run on {shapes}: {first[:300]}") from exc


def check(reference: Runnable, candidate: Runnable, inputs: Feeds | Sequence[Feeds],
          tolerance: float | Mapping[str, float] = 1e-4, *, input_map: Mapping[str, str] | None = None,
          output_map: Mapping[str, str] | Sequence[str] | None = None) -> ParityReport:
    """Run both on ``inputs`` (one feed dict or several) and compare outputs by name.

    tolerance: max absolute error, one for all outputs or one per candidate output name.
    input_map: reference input name -> candidate input name where a pass renamed inputs.
    output_map: reference output name -> candidate output name, or the names to compare;
        default: every output name both sides have (at least one).
    Returns the report; raises ParityError when either side fails to run, or an output is
    missing, has another shape, or differs by more than its tolerance.
    """
    run_ref, run_cand = as_callable(reference), as_callable(candidate)
    cases = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    errors: dict[str, float] = {}
    for feeds in cases:
        ref = _run("reference", run_ref, feeds)
        cand = _run("candidate", run_cand, {(input_map or {}).get(k, k): v for k, v in feeds.items()})
        for c_name, r_name in _pairs(ref, cand, output_map).items():
            errors[c_name] = max(errors.get(c_name, 0.0), _max_abs_error(c_name, ref[r_name], cand[c_name]))
    tol = {n: float(tolerance[n] if isinstance(tolerance, Mapping) else tolerance) for n in errors}
    report = ParityReport(errors, tol, len(cases))
    if not report.ok:
        raise ParityError(str(report))
    log.info("%s", report)
    return report


def save_checked(candidate, path: str | Path, reference: Runnable, inputs: Feeds | Sequence[Feeds],
                 tolerance: float | Mapping[str, float] = 1e-4, **maps) -> ParityReport:
    """``onnx.checker`` + :func:`check`, then write ``candidate`` (a ModelProto) to ``path``.

    Nothing is written when the check fails. ``maps``: ``input_map`` / ``output_map`` of check.
    """
    onnx = require_onnx()
    try:
        onnx.checker.check_model(candidate)
    except onnx.checker.ValidationError as exc:
        raise ParityError(f"candidate graph is not valid ONNX: {str(exc).strip()[:300]}") from exc
    report = check(reference, candidate, inputs, tolerance, **maps)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        onnx.save(candidate, str(tmp))
        tmp.replace(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc
    return report
