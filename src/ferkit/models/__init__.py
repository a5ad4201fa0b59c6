"""ferkit's model zoo.  Each architecture module registers itself when imported here."""

from ferkit.models import baseline  # noqa: F401  (registers "baseline")
from ferkit.models.dan import DAN  # noqa: F401  (registers "dan", "dan_convnext", "dan_test")
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
