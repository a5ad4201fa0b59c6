"""Honest metrics for a model on a dataset: accuracy, mean class accuracy, macro F1,
per-class precision/recall/F1, the confusion matrix and calibration (expected calibration
error over 15 bins, NLL, a reliability diagram; :mod:`ferkit.calibration`).

Labels are compared by **name**: the dataset's canonical indices are mapped onto the
model's outputs through ``model.ferkit_config.label_names``; samples of classes the model
cannot predict are excluded and counted in the report, never silently mis-scored.

Example:
    >>> from ferkit.evaluation import compute_metrics
    >>> report = compute_metrics([0, 0, 1, 1], [0, 1, 1, 1], label_names=("neutral", "happy"))
    >>> report.accuracy, report.mean_class_accuracy
    (0.75, 0.75)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ferkit.config import config_of
from ferkit.errors import FerkitError
from ferkit.labels import CANONICAL, CANONICAL_INDEX
from ferkit.progress import track


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics of one model on one dataset split.

    Attributes:
        label_names: the model's classes, in output order (rows/columns of ``confusion``).
        confusion: ``confusion[true][pred]`` sample counts.
        excluded: samples skipped because the model has no output for their class.
    """

    label_names: tuple[str, ...]
    num_samples: int
    accuracy: float
    mean_class_accuracy: float
    f1_macro: float
    per_class: dict[str, ClassMetrics]
    confusion: tuple[tuple[int, ...], ...]
    excluded: int = 0
    tta: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: ``temperature``, ``ece`` and ``nll`` of the reported probabilities,
    #: ``ece_uncalibrated``/``nll_uncalibrated`` at temperature 1 and ``reliability``
    #: (:class:`~ferkit.calibration.ReliabilityBins` as a dict); empty when only labels
    #: were compared (:func:`compute_metrics` without ``probs``).
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["label_names"] = list(self.label_names)
        out["confusion"] = [list(r) for r in self.confusion]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_table(self) -> str:
        """A readable summary: headline numbers, then one row per class."""
        lines = []
        if self.meta:
            lines.append("  ".join(f"{k}: {v}" for k, v in self.meta.items()))
        lines.append(
            f"samples {self.num_samples}"
            + (f" (excluded {self.excluded} of classes the model lacks)" if self.excluded else "")
            + (f"  tta: {self.tta}" if self.tta else "")
        )
        lines.append(f"accuracy {self.accuracy:.4f}   mean class accuracy "
                     f"{self.mean_class_accuracy:.4f}   macro F1 {self.f1_macro:.4f}")
        cal = self.calibration
        if cal:
            line = f"ECE (15 bins) {cal['ece']:.4f}   NLL {cal['nll']:.4f}   temperature " \
                   f"{cal['temperature']:.4g}"
            if "ece_uncalibrated" in cal:
                line += f"   (at temperature 1: ECE {cal['ece_uncalibrated']:.4f}, NLL " \
                        f"{cal['nll_uncalibrated']:.4f})"
            lines.append(line)
        lines.append("")
        lines.append(f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
        for name, m in self.per_class.items():
            lines.append(f"{name:<10} {m.precision:>9.4f} {m.recall:>7.4f} {m.f1:>7.4f} "
                         f"{m.support:>8d}")
        lines.append("")
        lines.append("confusion (rows true, columns predicted):")
        width = max(6, *(len(n[:8]) + 1 for n in self.label_names))
        lines.append(" " * 10 + "".join(f"{n[:8]:>{width}}" for n in self.label_names))
        for name, row in zip(self.label_names, self.confusion, strict=True):
            lines.append(f"{name:<10}" + "".join(f"{v:>{width}d}" for v in row))
        return "\n".join(lines)

    def save_confusion_png(self, path: str | Path) -> Path:
        """Draw the row-normalised confusion matrix (counts in each cell) as a PNG."""
        from ferkit.figures import plot_confusion

        return plot_confusion(np.asarray(self.confusion), list(self.label_names), Path(path),
                              title=f"accuracy {self.accuracy:.3f}, macro F1 "
                                    f"{self.f1_macro:.3f}")

    def save_reliability_png(self, path: str | Path) -> Path:
        """Draw the reliability diagram (accuracy against confidence per bin) as a PNG."""
        from ferkit.figures import plot_reliability

        if not self.calibration:
            raise FerkitError("this report has no probabilities, so no reliability diagram")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cal = self.calibration
        title = f"{self.meta.get('dataset', '')} {self.meta.get('split', '')}".strip()
        return plot_reliability(cal["reliability"], path, title=title,
                                ece=cal["ece"], temperature=cal["temperature"])


def calibration_summary(logits: np.ndarray, labels: np.ndarray, *,
                        temperature: float = 1.0) -> dict[str, Any]:
    """The ``calibration`` entry of a report from raw logits ``(N, K)`` or, with TTA,
    ``(views, N, K)`` (probabilities averaged over views after the temperature)."""
    from ferkit.calibration import negative_log_likelihood, reliability_bins, softmax

    views = logits if logits.ndim == 3 else logits[None]

    def stats(t: float) -> tuple[float, float, dict[str, Any]]:
        probs = np.mean([softmax(v, t) for v in views], axis=0)
        bins = reliability_bins(probs, labels)
        nll = -float(np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels],
                                            1e-12, None))))
        if len(views) == 1:  # the exact form, without the clip
            nll = negative_log_likelihood(views[0], labels, t)
        return bins.ece, nll, bins.to_dict()

    ece, nll, bins = stats(temperature)
    out: dict[str, Any] = {"temperature": float(temperature), "ece": ece, "nll": nll}
    if temperature != 1.0:
        out["ece_uncalibrated"], out["nll_uncalibrated"], _ = stats(1.0)
    out["reliability"] = bins
    return out


def compute_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                    *, label_names: Sequence[str], excluded: int = 0, tta: str | None = None,
                    meta: dict[str, Any] | None = None,
                    calibration: dict[str, Any] | None = None) -> EvaluationReport:
    """Metrics from true/predicted **output** indices (``0..len(label_names)-1``).

    Classes absent from ``y_true`` get recall 0 and are left out of the mean class
    accuracy and macro F1 only if they also never appear in ``y_pred``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(label_names)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise FerkitError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D")
    if len(y_true) == 0:
        raise FerkitError("nothing to evaluate: the dataset has no samples of the model's classes")
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    # Classes that neither occur nor are predicted say nothing about the model.
    active = (support > 0) | (predicted > 0)
    present = support > 0
    return EvaluationReport(
        label_names=tuple(label_names),
        num_samples=len(y_true),
        accuracy=float(tp.sum() / len(y_true)),
        mean_class_accuracy=float(recall[present].mean()),
        f1_macro=float(f1[active].mean()),
        per_class={n: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]),
                                   int(support[i])) for i, n in enumerate(label_names)},
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        excluded=int(excluded),
        tta=tta,
        meta=dict(meta or {}),
        calibration=dict(calibration or {}),
    )


@torch.no_grad()
def predict_logits(model: nn.Module, dataset, *, batch_size: int = 64, tta: str | None = None,
                   device: str | torch.device = "auto", num_workers: int = 0) -> np.ndarray:
    """Raw logits (before any temperature) of ``model`` over a dataset already transformed:
    ``(N, K)``, or ``(2, N, K)`` with ``tta="flip"`` (plain and mirrored views)."""
    from ferkit.devices import resolve_device

    if tta not in (None, "none", "flip"):
        raise FerkitError(f"--tta must be 'flip' or 'none', not {tta!r}")
    device = resolve_device(device)
    model = model.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks = []
    for x, _ in track(loader, description="evaluating (batches)"):
        x = x.to(device)
        views = [model(x).logits.float()]
        if tta == "flip":
            views.append(model(torch.flip(x, dims=[3])).logits.float())
        chunks.append(torch.stack(views).cpu())
    logits = torch.cat(chunks, dim=1).numpy()
    return logits if tta == "flip" else logits[0]


def predict_proba(model: nn.Module, dataset, *, batch_size: int = 64, tta: str | None = None,
                  device: str | torch.device = "auto", num_workers: int = 0,
                  temperature: float | None = None) -> np.ndarray:
    """Probabilities ``(N, K)``: ``softmax(logits / T)`` with the model's calibration
    temperature unless ``temperature`` is given; flip TTA averages the two views'."""
    from ferkit.calibration import model_temperature, softmax

    t = model_temperature(model) if temperature is None else float(temperature)
    logits = predict_logits(model, dataset, batch_size=batch_size, tta=tta, device=device,
                            num_workers=num_workers)
    views = logits if logits.ndim == 3 else logits[None]
    return np.mean([softmax(v, t) for v in views], axis=0).astype(np.float32)


def prepare_for_model(dataset, model: nn.Module):
    """A shallow copy of ``dataset`` that yields exactly the model's inputs: the model's eval
    transform, and, for datasets of whole photos with face boxes
    (:class:`~ferkit.data.faceboxes.FaceBoxDataset`), the Recognizer's face crop."""
    from ferkit.data.transforms import eval_transform

    cfg = model.ferkit_config
    data = copy.copy(dataset)
    data.transform = eval_transform(cfg.data)
    if hasattr(data, "crop_config"):
        data.crop_config = cfg.data
    return data


def evaluate(model: nn.Module, dataset, *, batch_size: int = 64, tta: str | None = None,
             device: str | torch.device = "auto", num_workers: int = 0,
             meta: dict[str, Any] | None = None,
             temperature: float | None = None) -> EvaluationReport:
    """Evaluate a ferkit model on a :class:`~ferkit.data.FERDataset` (any split).

    The dataset's transform is replaced (on a copy) by the model's eval transform, so the
    preprocessing is exactly the one inference uses.  Probabilities (and so the report's
    calibration figures) use the model's calibration temperature, or ``temperature`` when
    given; the report also gives ECE and NLL at temperature 1 when they differ.

    Example:
        >>> import ferkit
        >>> from ferkit.data import FakeFER
        >>> model = ferkit.create_model("baseline_test")
        >>> report = evaluate(model, FakeFER(16, image_size=32), batch_size=8)
        >>> report.num_samples, 0 <= report.calibration["ece"] <= 1
        (16, True)
    """
    from ferkit.calibration import model_temperature, softmax

    cfg = config_of(model, "evaluate")
    data, targets, excluded = model_inputs(model, dataset)
    logits = predict_logits(model, data, batch_size=batch_size, tta=tta, device=device,
                            num_workers=num_workers)
    t = model_temperature(model) if temperature is None else float(temperature)
    views = logits if logits.ndim == 3 else logits[None]
    info = {"model": cfg.architecture, "dataset": getattr(dataset, "name", "dataset"),
            "split": getattr(dataset, "split", "?"), **(meta or {})}
    probs = np.mean([softmax(v, t) for v in views], axis=0)
    return compute_metrics(targets, probs.argmax(axis=1), label_names=cfg.label_names,
                           excluded=excluded, tta=None if tta in (None, "none") else tta,
                           meta=info, calibration=calibration_summary(logits, targets,
                                                                      temperature=t))


def model_inputs(model: nn.Module, dataset) -> tuple[Any, np.ndarray, int]:
    """``(data, targets, excluded)``: the samples of ``dataset`` whose class ``model`` has,
    prepared as the model's inputs (:func:`prepare_for_model`), their labels as the model's
    output indices, and how many samples were left out."""
    cfg = model.ferkit_config
    lookup = np.full(len(CANONICAL), -1, dtype=np.int64)
    for out_idx, name in enumerate(cfg.label_names):
        lookup[CANONICAL_INDEX[name]] = out_idx
    canonical = np.asarray(dataset.targets, dtype=np.int64)
    mapped = lookup[canonical]
    keep = np.flatnonzero(mapped >= 0)
    if len(keep) == 0:
        raise FerkitError(
            f"{getattr(dataset, 'name', 'dataset')} has no samples of the model's classes "
            f"({', '.join(cfg.label_names)})"
        )
    data = prepare_for_model(dataset, model)
    subset = data if len(keep) == len(canonical) else Subset(data, keep.tolist())
    return subset, mapped[keep], len(canonical) - len(keep)


def compare(checkpoints: Sequence[str | Path], dataset, *, batch_size: int = 64,
            tta: str | None = None, device: str | torch.device = "auto"
            ) -> list[EvaluationReport]:
    """Evaluate several checkpoints on the same data (one report each, in order)."""
    from ferkit.devices import resolve_device
    from ferkit.weights import load_checkpoint

    device = resolve_device(device)
    reports = []
    for ckpt in track(checkpoints, description="models"):
        model = load_checkpoint(ckpt, map_location=device)
        reports.append(evaluate(model, dataset, batch_size=batch_size, tta=tta, device=device,
                                meta={"checkpoint": str(ckpt)}))
    return reports


def fit_checkpoint_temperature(checkpoint: str | Path, dataset: Any, *, batch_size: int = 64,
                               device: str = "auto", write: bool = True) -> dict[str, Any]:
    """Fit the temperature of ``checkpoint`` on ``dataset`` (a held-out split) and, with
    ``write``, store it in the checkpoint's ``config.json`` (replaced atomically).

    Returns what ``ferkit calibrate`` prints: ``temperature``, ``previous``, ``samples``,
    ``ece_before``/``ece_after`` and ``nll_before``/``nll_after`` on ``dataset`` (before:
    at the checkpoint's previous temperature), ``dataset``, ``split`` and ``config``.
    """
    from ferkit.calibration import (
        expected_calibration_error,
        fit_temperature,
        model_temperature,
        negative_log_likelihood,
        softmax,
    )
    from ferkit.checkpoint import CONFIG_NAME, update_config
    from ferkit.devices import resolve_device
    from ferkit.weights import load_checkpoint, resolve_checkpoint_dir

    device = resolve_device(device)  # an unavailable device fails before the model loads
    directory = resolve_checkpoint_dir(checkpoint)
    model = load_checkpoint(directory, map_location=device)
    data, labels, _ = model_inputs(model, dataset)
    logits = predict_logits(model, data, batch_size=batch_size, device=device)
    previous = model_temperature(model)
    temperature = fit_temperature(logits, labels)
    result = {
        "temperature": temperature, "previous": previous, "samples": len(labels),
        "dataset": getattr(dataset, "name", "dataset"), "split": getattr(dataset, "split", "?"),
        "ece_before": expected_calibration_error(softmax(logits, previous), labels),
        "ece_after": expected_calibration_error(softmax(logits, temperature), labels),
        "nll_before": negative_log_likelihood(logits, labels, previous),
        "nll_after": negative_log_likelihood(logits, labels, temperature),
        "config": str(directory / CONFIG_NAME),
    }
    if write:
        update_config(directory, temperature=temperature)
    return result


def comparison_table(reports: Sequence[EvaluationReport]) -> str:
    """One row per report: checkpoint, model, accuracy, mean class accuracy, macro F1."""
    header = f"{'checkpoint':<32} {'model':<14} {'n':>6} {'acc':>7} {'mean_cls':>8} {'f1_mac':>7}"
    rows = [header, "-" * len(header)]
    for r in reports:
        name = str(r.meta.get("checkpoint", "?"))
        name = name if len(name) <= 32 else "…" + name[-31:]
        rows.append(f"{name:<32} {r.meta.get('model', '?'):<14} {r.num_samples:>6d} "
                    f"{r.accuracy:>7.4f} {r.mean_class_accuracy:>8.4f} {r.f1_macro:>7.4f}")
    return "\n".join(rows)
