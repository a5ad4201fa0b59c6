"""Deprecated: training-run figures moved to :mod:`ferkit.training.plots` and evaluation
figures to :mod:`ferkit.figures` (explain/ is about what a network looks at).  These names go
in the next release."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "CONFUSION_KEYS": "ferkit.training.plots",
    "LABEL_KEYS": "ferkit.training.plots",
    "find_confusion": "ferkit.training.plots",
    "find_metrics_csv": "ferkit.training.plots",
    "plot_curves": "ferkit.training.plots",
    "plot_run": "ferkit.training.plots",
    "plot_confusion": "ferkit.figures",
    "plot_reliability": "ferkit.figures",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        home = _MOVED[name]
        warnings.warn(f"ferkit.explain.plots.{name} moved to {home}.{name}; the old name goes "
                      "in the next release", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module 'ferkit.explain.plots' has no attribute {name!r}")
