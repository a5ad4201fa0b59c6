"""Calibrated probabilities: temperature scaling and expected calibration error.

A network trained with cross-entropy is usually over-confident.  Temperature scaling
(Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017)
divides the logits by one scalar ``T > 0`` fitted to minimise the negative log-likelihood
on held-out data; the argmax, and so every accuracy figure, is unchanged.  ferkit stores
``T`` in the checkpoint's config (:attr:`ferkit.config.ModelConfig.temperature`) and applies
it in one place, :class:`ferkit.models.output.LogitsOnly`, which both inference backends run
(PyTorch directly, ONNX Runtime as the exported graph), so the Recognizer, ``ferkit
predict``, the HTTP server, exported ``.onnx`` files and ``ferkit evaluate`` report the
same probabilities.

Expected calibration error (ECE) follows Guo et al.: predictions are put into 15
equal-width bins by confidence (the top probability); ECE is the sample-weighted mean of
``|accuracy - mean confidence|`` over the bins.

Example:
    >>> import numpy as np
    >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [0.0, 4.0]])
    >>> labels = np.array([0, 1, 1, 0])            # half right at ~98% confidence
    >>> round(expected_calibration_error(softmax(logits), labels), 3)
    0.482
    >>> t = fit_temperature(logits, labels)
    >>> t > 10, round(expected_calibration_error(softmax(logits / t), labels), 3)
    (True, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ferkit.config import find_config
from ferkit.errors import FerkitError

#: the bin count of the ECE every ferkit report and model card quotes
ECE_BINS = 15
#: the search range of the fitted temperature (inverse: 1/T in [1/T_MAX, 1/T_MIN])
T_MIN, T_MAX = 0.05, 20.0


def model_temperature(model: object) -> float:
    """The calibration temperature in ``model.ferkit_config`` (1.0 when absent)."""
    cfg = find_config(model)
    return 1.0 if cfg is None else float(cfg.temperature)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray,
                            temperature: float = 1.0) -> float:
    """Mean ``-log p(label)`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), np.asarray(labels)]))


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram (equal-width confidence bins).

    Attributes:
        edges: ``n_bins + 1`` bin edges over ``[0, 1]``.
        counts: samples whose top probability falls in each bin.
        confidence: mean top probability per bin (``nan`` for an empty bin).
        accuracy: fraction correct per bin (``nan`` for an empty bin).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    confidence: tuple[float, ...]
    accuracy: tuple[float, ...]

    @property
    def ece(self) -> float:
        counts = np.asarray(self.counts, dtype=np.float64)
        full = counts > 0
        gaps = np.abs(np.asarray(self.accuracy)[full] - np.asarray(self.confidence)[full])
        return float((gaps * counts[full]).sum() / counts.sum())

    def to_dict(self) -> dict[str, list[float | int | None]]:
        def clean(values: Sequence[float]) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in values]

        return {"edges": list(self.edges), "counts": list(self.counts),
                "confidence": clean(self.confidence), "accuracy": clean(self.accuracy)}


def reliability_bins(probs: np.ndarray, labels: np.ndarray,
                     n_bins: int = ECE_BINS) -> ReliabilityBins:
    """Bin predictions by confidence (``(lo, hi]`` bins, the first also holds 0)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels) or len(labels) == 0:
        raise FerkitError(f"need (N, K) probabilities and N labels, got {probs.shape} and "
                          f"{labels.shape}")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, confidence, minlength=n_bins) / counts
        mean_acc = np.bincount(index, correct, minlength=n_bins) / counts
    return ReliabilityBins(tuple(float(e) for e in edges), tuple(int(c) for c in counts),
                           tuple(float(v) for v in mean_conf), tuple(float(v) for v in mean_acc))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray,
                               n_bins: int = ECE_BINS) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al. 2017; 15 bins there)."""
    return reliability_bins(probs, labels, n_bins).ece


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of ``softmax(logits / T)`` on ``labels``.

    The NLL is convex in ``1/T`` (a log-sum-exp of functions linear in it, minus a linear
    term), so a golden-section search over ``1/T`` finds the global minimum; it is
    deterministic and needs no learning rate, unlike LBFGS on ``log T``.  The result is
    clipped to ``[T_MIN, T_MAX]``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise FerkitError(f"fit_temperature needs (N, K) logits and N labels, got "
                          f"{logits.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise FerkitError(f"labels must lie in 0..{logits.shape[1] - 1}")

    def loss(inverse: float) -> float:
        return negative_log_likelihood(logits, labels, 1.0 / inverse)

    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > 1e-6:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.clip(1.0 / ((lo + hi) / 2.0), T_MIN, T_MAX))


def __getattr__(name: str) -> Any:
    # fit_checkpoint_temperature loads and evaluates a checkpoint: it moved up to
    # ferkit.evaluation, which uses this module's maths.  This deprecated alias is the only
    # import from here upwards (tests/test_import_structure.py).
    if name != "fit_checkpoint_temperature":
        raise AttributeError(f"module 'ferkit.calibration' has no attribute {name!r}")
    import warnings

    from ferkit.evaluation import fit_checkpoint_temperature

    warnings.warn("ferkit.calibration.fit_checkpoint_temperature moved to "
                  "ferkit.evaluation.fit_checkpoint_temperature; the old name goes in the next "
                  "release", DeprecationWarning, stacklevel=2)
    return fit_checkpoint_temperature
