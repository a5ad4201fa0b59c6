"""Training: recipes, the LightningModule, the data module and the run engine.

Lightning is imported on first use of the classes that need it, so recipes and data specs
stay usable without it.

Example:
    >>> from ferkit.training import list_recipes
    >>> "fer2013_resnet18" in list_recipes()
    True
"""

from __future__ import annotations

import importlib
from typing import Any

from ferkit.training.recipe import Recipe, list_recipes, load_recipe

_LAZY = {
    "FERDataModule": "ferkit.training.datamodule",
    "FERModule": "ferkit.training.module",
    "NonFiniteLossError": "ferkit.training.module",
    "TrainResult": "ferkit.training.engine",
    "train": "ferkit.training.engine",
}

__all__ = ["Recipe", "list_recipes", "load_recipe", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ferkit.training' has no attribute {name!r}")
