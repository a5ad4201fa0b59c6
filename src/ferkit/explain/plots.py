"""Training plots from a run directory: loss/accuracy curves, the confusion matrix and the
reliability diagram (calibration).

Reads what the training engine writes (Lightning ``CSVLogger``: ``RUN_DIR/**/metrics.csv``
with columns such as ``epoch``, ``step``, ``train/loss``, ``val/acc``, ``val/f1_macro``)
and, when present, an evaluation JSON holding ``confusion`` (``ferkit evaluate --json``) or
``confusion_matrix`` (rows = true class) with its ``label_names`` (or ``labels``/``classes``),
and its ``calibration.reliability`` bins when the report has them.

Example:
    >>> from ferkit.explain.plots import plot_run
    >>> paths = plot_run("runs/dan_rafdb")                  # doctest: +SKIP
    >>> [p.name for p in paths]                             # doctest: +SKIP
    ['curves.png', 'confusion_matrix.png', 'reliability.png']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.atomic import atomic_path, make_dirs
from ferkit.errors import FerkitError

CONFUSION_KEYS = ("confusion_matrix", "confusion")
LABEL_KEYS = ("label_names", "labels", "classes")


def find_metrics_csv(run_dir: Path) -> Path:
    """The newest ``metrics.csv`` under ``run_dir`` (the run itself may be the file)."""
    if run_dir.is_file():
        return run_dir
    found = sorted(run_dir.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FerkitError(f"no metrics.csv under {run_dir}: give the run directory a "
                          "`ferkit train` run wrote (its logs/metrics.csv holds the curves)")
    return found[-1]


def find_confusion(run_dir: Path) -> tuple[np.ndarray, list[str], Path] | None:
    """The confusion matrix of the newest evaluation JSON under ``run_dir``, if any."""
    if run_dir.is_file():
        return None
    candidates = sorted((p for p in run_dir.rglob("*.json") if p.name != "config.json"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        found = _find_confusion_in(raw)
        if found is not None:
            matrix, labels = found
            return matrix, labels, path
    return None


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``curves.png`` (+ ``confusion_matrix.png`` when an evaluation JSON exists)."""
    run = Path(run_dir)
    if not run.exists():
        raise FerkitError(f"run directory {run} does not exist")
    out = Path(out_dir) if out_dir is not None else (run if run.is_dir() else run.parent)
    make_dirs(out)
    metrics_csv = find_metrics_csv(run)
    written = [plot_curves(metrics_csv, out / "curves.png")]
    confusion = find_confusion(run)
    if confusion is not None:
        matrix, labels, source = confusion
        written.append(plot_confusion(matrix, labels, out / "confusion_matrix.png",
                                      title=f"confusion matrix ({source.name})"))
        try:
            calibration = json.loads(source.read_text()).get("calibration") or {}
        except (OSError, json.JSONDecodeError, AttributeError):
            calibration = {}
        if calibration.get("reliability"):
            written.append(plot_reliability(
                calibration["reliability"], out / "reliability.png",
                title=f"reliability ({source.name})", ece=calibration.get("ece"),
                temperature=calibration.get("temperature")))
    return written


def plot_curves(metrics_csv: Path, path: Path) -> Path:
    """Loss panel (every ``*loss*`` column) and score panel (``*acc*``, ``*f1*``) over epochs."""
    import pandas as pd
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    try:
        table = pd.read_csv(metrics_csv)
    except (OSError, ValueError) as exc:
        raise FerkitError(f"cannot read {metrics_csv}: {exc}") from exc
    loss_cols = [c for c in table.columns if "loss" in c.lower()]
    score_cols = [c for c in table.columns if any(k in c.lower() for k in ("acc", "f1"))]
    if not loss_cols and not score_cols:
        raise FerkitError(f"{metrics_csv} has no loss/accuracy columns (columns: "
                          f"{', '.join(map(str, table.columns))})")
    x_col = "epoch" if "epoch" in table.columns else "step" if "step" in table.columns else None
    fig = Figure(figsize=(12, 4.5), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, cols, title in ((axes[0], loss_cols, "loss"), (axes[1], score_cols, "score")):
        for col in cols:
            series = table[[col] + ([x_col] if x_col else [])].dropna(subset=[col])
            if series.empty:
                continue
            if x_col:
                # Step-level rows share an epoch: average them so curves read per epoch.
                series = series.groupby(x_col, as_index=False)[col].mean()
                xs = series[x_col].to_numpy()
            else:
                xs = np.arange(len(series))
            ax.plot(xs, series[col].to_numpy(), marker="o", ms=3, label=col)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(x_col or "row")
        ax.set_ylabel(title)
        ax.set_title(f"{title} per {x_col or 'row'}")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=9)
        else:
            ax.text(0.5, 0.5, f"no {title} logged", ha="center", va="center",
                    transform=ax.transAxes)
    fig.suptitle(f"training curves: {metrics_csv}", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    return path


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


def _find_confusion_in(raw: Any) -> tuple[np.ndarray, list[str]] | None:
    if not isinstance(raw, dict):
        return None
    for key in CONFUSION_KEYS:
        if key in raw:
            matrix = np.asarray(raw[key], dtype=np.float64)
            labels = next((list(raw[k]) for k in LABEL_KEYS if k in raw), None)
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                continue
            if labels is None or len(labels) != matrix.shape[0]:
                labels = [str(i) for i in range(matrix.shape[0])]
            return matrix, [str(v) for v in labels]
    for value in raw.values():
        found = _find_confusion_in(value)
        if found is not None:
            return found
    return None
