"""Weights shipped inside the ferkit package.

Each shipped model is a checkpoint directory under this package (``model.safetensors`` +
``config.json``); ``SHIPPED`` maps the public name to that directory.  ``"default"`` is the
model :class:`ferkit.Recognizer` and ``ferkit predict`` use when none is named.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: public name -> checkpoint directory name inside this package
SHIPPED: dict[str, str] = {}
#: the name "default" resolves to this shipped model, once one ships
DEFAULT_NAME: str | None = None


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
