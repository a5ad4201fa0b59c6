"""Named weights: the models shipped inside ferkit and the user's own saved models.

A shipped model is a checkpoint directory inside this package (``model.safetensors`` +
``config.json``); ``SHIPPED`` maps its public name to that directory, and ``"default"`` is
the one :class:`ferkit.Recognizer` and ``ferkit predict`` use when none is named
(docs/model-card.md).  User models are checkpoint directories under
``$FERKIT_HOME/models/<name>`` (``~/.ferkit/models`` by default), added with
``ferkit models add NAME RUN/best``; every command that takes a checkpoint also takes
their name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ferkit.errors import CheckpointError

_HERE = Path(__file__).resolve().parent

#: public name -> checkpoint directory name inside this package
SHIPPED: dict[str, str] = {"fer2013_dsan": "fer2013_dsan"}
#: the name "default" resolves to this shipped model
DEFAULT_NAME: str | None = "fer2013_dsan"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def shipped_weights_dir(name: str) -> Path | None:
    """The directory of shipped weights called ``name`` (or ``"default"``), if any."""
    if name == "default":
        if DEFAULT_NAME is None:
            return None
        name = DEFAULT_NAME
    folder = SHIPPED.get(name)
    if folder is None:
        return None
    path = _HERE / folder
    return path if (path / "config.json").is_file() else None


def list_shipped() -> list[str]:
    """Names of the weights that ship with this install."""
    return sorted(n for n in SHIPPED if shipped_weights_dir(n) is not None)


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


def named_weights_dir(name: str) -> Path | None:
    """A shipped model's directory, else a user model's, for a name; ``None`` if neither."""
    return shipped_weights_dir(name) or user_model_dir(name)


def check_model_name(name: str) -> None:
    """Refuse names that cannot be a user model (bad characters, taken by a shipped model)."""
    if not _NAME_RE.match(name):
        raise CheckpointError(
            f"model name {name!r} is not allowed: use 1-64 lower-case letters, digits, '_', "
            "'-' or '.', starting with a letter or digit"
        )
    if name == "default" or name in SHIPPED:
        raise CheckpointError(f"{name!r} is the name of a shipped model: pick another name")


def add_user_model(name: str, checkpoint: str | Path, *, overwrite: bool = False) -> Path:
    """Copy a checkpoint into the user's models as ``name`` (it must load first).

    The copy is written beside the destination and renamed into place, so an interrupted
    add never leaves half a model behind, and an existing model is only replaced with
    ``overwrite=True``.
    """
    from ferkit.atomic import make_dirs, os_error_message
    from ferkit.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_checkpoint, resolve_checkpoint_dir

    check_model_name(name)
    source = resolve_checkpoint_dir(checkpoint)
    load_checkpoint(source)  # refuse what would not load later
    target = user_models_dir() / name
    if target.exists() and not overwrite:
        raise CheckpointError(
            f"a user model called {name!r} already exists ({target}): pass --overwrite to "
            "replace it, or pick another name"
        )
    make_dirs(target.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    except OSError as exc:
        raise CheckpointError(os_error_message(exc, target.parent)) from None
    try:
        for file in (WEIGHTS_NAME, CONFIG_NAME):
            shutil.copy2(source / file, staging / file)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except OSError as exc:  # a full disk while copying: one line, nothing half-added
        shutil.rmtree(staging, ignore_errors=True)
        raise CheckpointError(os_error_message(exc, target)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def remove_user_model(name: str) -> Path:
    """Delete the user model ``name``; shipped models cannot be removed."""
    if name == "default" or name in SHIPPED:
        raise CheckpointError(f"{name!r} is a shipped model: only user models can be removed")
    path = user_model_dir(name)
    if path is None:
        known = ", ".join(list_user_models()) or "none"
        raise CheckpointError(f"no user model called {name!r} (user models: {known})")
    shutil.rmtree(path)
    return path
