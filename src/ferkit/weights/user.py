"""The user's own named models: checkpoint directories under ``$FERKIT_HOME/models/<name>``
(``~/.ferkit/models`` by default), added with ``ferkit models add NAME RUN/best``; every
command that takes a checkpoint also takes their name.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ferkit.errors import CheckpointError
from ferkit.weights.shipped import is_shipped_name

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def user_models_dir() -> Path:
    """Where ``ferkit models add`` keeps the user's models: ``$FERKIT_HOME/models``."""
    home = os.environ.get("FERKIT_HOME") or "~/.ferkit"
    return Path(home).expanduser() / "models"


def user_model_dir(name: str) -> Path | None:
    """The directory of the user model called ``name``, if there is one."""
    if not _NAME_RE.match(name):
        return None
    path = user_models_dir() / name
    return path if (path / "config.json").is_file() else None


def list_user_models() -> list[str]:
    """Names of the models added with ``ferkit models add``."""
    root = user_models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if user_model_dir(p.name) is not None)


def check_model_name(name: str) -> None:
    """Refuse names that cannot be a user model (bad characters, taken by a shipped model)."""
    if not _NAME_RE.match(name):
        raise CheckpointError(
            f"model name {name!r} is not allowed: use 1-64 lower-case letters, digits, '_', "
            "'-' or '.', starting with a letter or digit"
        )
    if is_shipped_name(name):
        raise CheckpointError(f"{name!r} is the name of a shipped model: pick another name")


def remove_user_model(name: str) -> Path:
    """Delete the user model ``name``; shipped models cannot be removed."""
    if is_shipped_name(name):
        raise CheckpointError(f"{name!r} is a shipped model: only user models can be removed")
    path = user_model_dir(name)
    if path is None:
        known = ", ".join(list_user_models()) or "none"
        raise CheckpointError(f"no user model called {name!r} (user models: {known})")
    shutil.rmtree(path)
    return path
