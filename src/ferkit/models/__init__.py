"""ferkit's model zoo.  Each architecture module registers itself when imported here."""

from ferkit.models import (
    baseline,  # noqa: F401  (registers "baseline")
    dacl,  # noqa: F401  (registers "dacl")
    dan,  # noqa: F401  (registers "dan", "dan_convnext", "dan_test")
    deep_emotion,  # noqa: F401  (registers "deep_emotion")
    dsan,  # noqa: F401  (registers "dsan")
)
from ferkit.models.output import FEROutput
from ferkit.models.registry import (
    build_from_config,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "FEROutput",
    "build_from_config",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
]
