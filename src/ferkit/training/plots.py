"""Figures of a training run directory: loss/accuracy curves, plus the confusion matrix and the
reliability diagram of an evaluation saved in it.

Reads what the training engine writes (Lightning ``CSVLogger``: ``RUN_DIR/**/metrics.csv``
with columns such as ``epoch``, ``step``, ``train/loss``, ``val/acc``, ``val/f1_macro``)
and, when present, an evaluation JSON holding ``confusion`` (``ferkit evaluate --json``) or
``confusion_matrix`` (rows = true class) with its ``label_names`` (or ``labels``/``classes``),
and its ``calibration.reliability`` bins when the report has them.

Example:
    >>> from ferkit.training.plots import plot_run
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
from ferkit.figures import plot_confusion, plot_reliability

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
