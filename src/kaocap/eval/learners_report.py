"""Markdown, JSON and a PNG of per-shape bars for a ``kaocap eval`` report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from kaocap.constants import BLENDSHAPES
from kaocap.eval.learners import EvalReport, Row
from kaocap.eval.learners_metrics import VISIBLE_PITCH_DEG, VISIBLE_YAW_DEG

#: MediaPipe's weak shapes that the issue's targets single out.
WATCHED = ("cheekPuff", "eyeWideLeft", "eyeWideRight", "noseSneerLeft", "noseSneerRight", "tongueOut")


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def table_lines(report: EvalReport) -> list[str]:
    """SuperCV's table: one row per learner."""
    head = ("| model | r synth (exact) | r real (teacher) | r real (ARKit takes) | rot MAE synth front deg "
            "| rot MAE synth rear deg | yaw MAE AFLW2000 deg | net ms (runtime) | pipeline ms | size MB fp16 "
            "| worst L/R gap |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for r in report.rows:
        ms, runtime = r.best_latency()
        gap, stem = r.lr_gap
        lines.append(f"| {r.name} | {_f(r.synth_corr)} | {_f(r.real_corr)} | {_f(r.take_corr)} "
                     f"| {_f(r.synth_rotation_mae_deg, 2)} | {_f(r.synth_rear_rotation_mae_deg, 2)} "
                     f"| {_f(r.aflw_yaw_mae_deg, 2)} "
                     f"| {_f(ms, 2)} ({runtime}) | {_f(r.pipeline_ms, 2)} | {_f(r.size_mb, 2)} "
                     f"| {_f(gap, 2)} {stem} |")  # fmt: skip
    return lines


def watched_lines(report: EvalReport) -> list[str]:
    """Per-shape r (synthetic, exact labels) of the shapes MediaPipe is weak on."""
    lines = ["| model | " + " | ".join(WATCHED) + " |", "|" + "---|" * (len(WATCHED) + 1)]
    idx = [BLENDSHAPES.index(n) for n in WATCHED]
    for r in report.rows:
        lines.append(f"| {r.name} | " + " | ".join(_f(r.synth_per_shape[i]) for i in idx) + " |")
    return lines


def markdown(report: EvalReport) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    lmk = report.settings.get("landmark_net_ms", {})
    lmk_text = ", ".join(f"{k} {v:.2f} ms" for k, v in lmk.items())
    intro = (f"Samples: {counts}. AFLW2000 faces with a yaw label: {report.aflw_faces}. Latency: median of "
             f"{report.settings.get('repeats')} runs, batch 1, 1 thread, this machine, this run; 'pipeline ms' "
             f"adds MediaPipe's 478-landmark network ({lmk_text}) and feature extraction for mesh learners. "
             f"Synthetic r is taken on visible faces (|yaw| <= {VISIBLE_YAW_DEG:.0f}, |pitch| <= "
             f"{VISIBLE_PITCH_DEG:.0f} deg); rotation MAE (mean of yaw, pitch, roll) on |yaw| <= 90 deg (front) "
             f"and > 90 deg (rear). MediaPipe is scored on the samples where it found a face.")  # fmt: skip
    lines = [
        f"# kaocap eval: held-out people ({report.split} split)",
        "",
        intro,
        "",
        *table_lines(report),
        "",
        "## Per-shape r on MediaPipe's weak shapes (synthetic, exact labels)",
        "",
        *watched_lines(report),
        "",
        "Per-shape bars: per_shape.png. All figures: report.json.",
    ]
    notes = [f"- {r.name}: {r.note}" for r in report.rows if r.note]
    return "\n".join(lines + (["", "Notes:", *notes] if notes else [])) + "\n"


def to_json(report: EvalReport) -> dict[str, Any]:
    clean = lambda a: [None if not np.isfinite(v) else round(float(v), 4) for v in a]
    rows = []
    for r in report.rows:
        d = {k: getattr(r, k) for k in ("name", "family", "synth_corr", "real_corr", "take_corr",
                                        "synth_rotation_mae_deg", "synth_rear_rotation_mae_deg",
                                        "aflw_yaw_mae_deg", "latency_ms",
                                        "pipeline_ms", "size_mb", "note")}  # fmt: skip
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
        d["synth_per_shape"], d["real_per_shape"] = clean(r.synth_per_shape), clean(r.real_per_shape)
        d["lr_gap"] = {"gap": None if not math.isfinite(r.lr_gap[0]) else r.lr_gap[0], "pair": r.lr_gap[1]}
        rows.append(d)
    return {"split": report.split, "counts": report.counts, "aflw_faces": report.aflw_faces,
            "settings": report.settings, "blendshapes": list(BLENDSHAPES), "rows": rows}  # fmt: skip


def plot_per_shape(rows: list[Row], path: Path) -> None:
    """Grouped bars of per-shape r, one panel per reference (synthetic exact, real teacher)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(22, 9), sharex=True)
    x = np.arange(len(BLENDSHAPES))
    width = 0.8 / max(1, len(rows))
    for ax, attr, title in ((axes[0], "synth_per_shape", "held-out synthetic identities: r vs exact labels"),
                            (axes[1], "real_per_shape", "held-out real people: r vs MediaPipe teacher")):  # fmt: skip
        for k, r in enumerate(rows):
            ax.bar(x + (k - (len(rows) - 1) / 2) * width, np.nan_to_num(getattr(r, attr)), width, label=r.name)
        ax.set_title(title)
        ax.set_ylim(-0.2, 1.0)
        ax.axhline(0.7, color="grey", lw=0.6, ls="--")
        ax.set_ylabel("Pearson r")
    axes[1].set_xticks(x, BLENDSHAPES, rotation=90, fontsize=8)
    axes[0].legend(ncol=min(len(rows), 6), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(report: EvalReport, out: Path) -> dict[str, Path]:
    """Write report.md, report.json and per_shape.png into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "json": out / "report.json", "png": out / "per_shape.png"}
    paths["markdown"].write_text(markdown(report))
    paths["json"].write_text(json.dumps(to_json(report), indent=1))
    plot_per_shape(report.rows, paths["png"])
    return paths
