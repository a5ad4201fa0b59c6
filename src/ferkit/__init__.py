"""ferkit: facial expression recognition with attention networks.

The public names below are imported on first use (PEP 562), so ``import ferkit`` and
``ferkit --help`` do not pay for torch and timm until a model is needed.

Examples:
    >>> import ferkit
    >>> "baseline" in ferkit.list_models()
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "CANONICAL": "ferkit.labels",
    "DataConfig": "ferkit.config",
    "FERModel": "ferkit.models",
    "FEROutput": "ferkit.models",
    "FerkitError": "ferkit.errors",
    "ModelConfig": "ferkit.config",
    "Recognizer": "ferkit.inference.recognizer",
    "WeightsConfig": "ferkit.config",
    "config_of": "ferkit.config",
    "create_model": "ferkit.weights",
    "list_models": "ferkit.weights",
    "load_checkpoint": "ferkit.weights",
    "save_checkpoint": "ferkit.weights",
}

__all__ = [
    "CANONICAL",
    "DataConfig",
    "FERModel",
    "FEROutput",
    "FerkitError",
    "ModelConfig",
    "Recognizer",
    "WeightsConfig",
    "__version__",
    "config_of",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from ferkit.config import DataConfig, ModelConfig, WeightsConfig, config_of
    from ferkit.errors import FerkitError
    from ferkit.inference.recognizer import Recognizer
    from ferkit.labels import CANONICAL
    from ferkit.models import FERModel, FEROutput
    from ferkit.weights import create_model, list_models, load_checkpoint, save_checkpoint


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
