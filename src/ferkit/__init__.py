"""ferkit: facial expression recognition with attention networks.

Examples:
    >>> import ferkit
    >>> "baseline" in ferkit.list_models()
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferkit.checkpoint import load_checkpoint, save_checkpoint
from ferkit.config import DataConfig, ModelConfig
from ferkit.errors import FerkitError
from ferkit.labels import CANONICAL
from ferkit.models import FEROutput, create_model, list_models

__version__ = "0.1.0"

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
    from ferkit.inference.recognizer import Recognizer


def __getattr__(name: str) -> Any:
    # The Recognizer pulls in face detectors and image decoding: import it on first use.
    if name == "Recognizer":
        from ferkit.inference.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
