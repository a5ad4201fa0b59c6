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
    "FEROutput": "ferkit.models",
    "FerkitError": "ferkit.errors",
    "ModelConfig": "ferkit.config",
    "Recognizer": "ferkit.inference.recognizer",
    "create_model": "ferkit.models",
    "list_models": "ferkit.models",
    "load_checkpoint": "ferkit.checkpoint",
    "save_checkpoint": "ferkit.checkpoint",
}

__all__ = [
    "CANONICAL",
    "DataConfig",
    "FEROutput",
    "FerkitError",
    "ModelConfig",
    "Recognizer",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from ferkit.checkpoint import load_checkpoint, save_checkpoint
    from ferkit.config import DataConfig, ModelConfig
    from ferkit.errors import FerkitError
    from ferkit.inference.recognizer import Recognizer
    from ferkit.labels import CANONICAL
    from ferkit.models import FEROutput, create_model, list_models


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
