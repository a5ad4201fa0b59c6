"""ferkit's model zoo.  Each architecture module registers itself when imported here.

This layer builds architectures with fresh weights; trained weights by name
(``"dsan.fer2013"``) are the layer above, :mod:`ferkit.weights`.
"""

from ferkit.config import config_of
from ferkit.models import (
    baseline,  # noqa: F401  (registers "baseline")
    dacl,  # noqa: F401  (registers "dacl")
    dan,  # noqa: F401  (registers "dan", "dan_convnext", "dan_test")
    deep_emotion,  # noqa: F401  (registers "deep_emotion")
    dsan,  # noqa: F401  (registers "dsan")
)
from ferkit.models.base import FERModel, load_state_dict_strict
from ferkit.models.output import FEROutput
from ferkit.models.registry import (
    MODELS,
    build_from_config,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "MODELS",
    "FERModel",
    "FEROutput",
    "build_from_config",
    "config_of",
    "create_model",
    "get_model_entry",
    "list_models",
    "load_state_dict_strict",
    "register_model",
]
