"""Figures of an evaluation: the confusion matrix and the reliability diagram (calibration).

Drawn with matplotlib's object API (no pyplot state, safe in servers and threads) and written
atomically.  :meth:`ferkit.evaluation.EvaluationResult.save_confusion_png` and ``ferkit plot``
(:mod:`ferkit.training.plots`) draw through these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ferkit.atomic import atomic_path


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path, *,
                   title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix (rows = true class) with counts in each cell."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(1, keepdims=True)
    rates = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 1.0 + 0.75 * len(labels)
    fig = Figure(figsize=(size + 1.5, size), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n({int(counts[i, j])})", ha="center",
                    va="center", fontsize=7, color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(shown, ax=ax, label="fraction of the true class")
    ax.set_title(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return path


def plot_reliability(bins: dict[str, Any], path: Path, *, title: str = "",
                     ece: float | None = None, temperature: float | None = None) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect
    calibration, the gap shaded, and the share of samples per bin underneath.

    ``bins`` is :meth:`ferkit.calibration.ReliabilityBins.to_dict` (as stored in an
    evaluation report's ``calibration.reliability``).
    """
    from matplotlib.figure import Figure

    edges = np.asarray(bins["edges"], dtype=np.float64)
    counts = np.asarray(bins["counts"], dtype=np.float64)
    accuracy = np.array([np.nan if v is None else v for v in bins["accuracy"]], np.float64)
    confidence = np.array([np.nan if v is None else v for v in bins["confidence"]],
                          np.float64)
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    full = counts > 0
    fig = Figure(figsize=(5, 6), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    top.bar(centres[full], accuracy[full], width=width[full], color="tab:blue",
            edgecolor="white", label="accuracy")
    # The gap, hatched so it reads over the blue bar too (under-confident bins).
    top.bar(centres[full], np.abs(confidence[full] - accuracy[full]),
            bottom=np.minimum(confidence[full], accuracy[full]), width=width[full],
            facecolor="none", edgecolor="tab:red", hatch="///", lw=0.8,
            label="gap to mean confidence")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    facts = [f"ECE {100 * ece:.2f}%" if ece is not None else "",
             f"T = {temperature:.3g}" if temperature is not None else "",
             f"n = {int(counts.sum())}"]
    top.set_title("  ".join(f for f in [title, *facts] if f), fontsize=9)
    top.grid(alpha=0.3)
    bottom.bar(centres, counts / max(counts.sum(), 1), width=width, color="grey",
               edgecolor="white")
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("share")
    bottom.grid(alpha=0.3)
    fig.savefig(path)
    return path
