"""The weights shipped inside ferkit: one registered entry per folder of this package.

A shipped folder holds a checkpoint (``model.safetensors`` + ``config.json``, which say how
to *use* the weights) and ``weights.json`` (:class:`~ferkit.config.WeightsConfig`: what
they *are*: name, sha256, licence, dataset, recipe, metrics).  Names follow timm's
``architecture.tag`` (``dsan.fer2013``); ``"default"`` is the one :class:`ferkit.Recognizer`
and ``ferkit predict`` use when none is named.

Adding shipped weights (docs/architecture.md, "Adding shipped weights"):
``scripts/ship_default_model.py RUN/best --name FOLDER --tag TAG`` writes the folder with
its ``weights.json``; then one :func:`register_shipped` line below registers it, and
``DEFAULT_NAME`` moves to it if it becomes the default.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ferkit.atomic import write_text
from ferkit.checkpoint import CONFIG_NAME, WEIGHTS_NAME, file_sha256, read_json
from ferkit.config import WeightsConfig
from ferkit.errors import CheckpointError
from ferkit.registry import Registry

_HERE = Path(__file__).resolve().parent
WEIGHTS_CONFIG_NAME = "weights.json"


@dataclass(frozen=True)
class ShippedWeights:
    """A registered folder of shipped weights."""

    name: str
    folder: str
    #: earlier names of these weights: still resolved, with a DeprecationWarning
    aliases: tuple[str, ...] = ()

    @property
    def directory(self) -> Path:
        return _HERE / self.folder

    @property
    def installed(self) -> bool:
        """Whether the checkpoint files are present (a broken install may lack them)."""
        return all((self.directory / n).is_file()
                   for n in (WEIGHTS_NAME, CONFIG_NAME, WEIGHTS_CONFIG_NAME))

    @property
    def config(self) -> WeightsConfig:
        return read_weights_config(self.directory)


#: Every shipped weights entry, by ``architecture.tag`` name.
WEIGHTS: Registry[ShippedWeights] = Registry("shipped weights", hint="(`ferkit models list`)")


def register_shipped(name: str, folder: str, *, aliases: tuple[str, ...] = ()) -> ShippedWeights:
    """Register the weights in ``ferkit/weights/<folder>/`` as ``name`` (``arch.tag``)."""
    return WEIGHTS.register(name, ShippedWeights(name, folder, aliases))


# --- the shipped weights: one line each --------------------------------------------------
register_shipped("dsan.fer2013", "fer2013_dsan", aliases=("fer2013_dsan",))

#: the name ``"default"`` resolves to these shipped weights
DEFAULT_NAME: str | None = "dsan.fer2013"
# -------------------------------------------------------------------------------------------


def _aliases() -> dict[str, str]:
    return {alias: name for name, entry in WEIGHTS.items() for alias in entry.aliases}


def find_shipped(name: str) -> ShippedWeights | None:
    """The shipped entry a name means: ``"default"``, an ``arch.tag`` name, or an old
    alias (which warns); ``None`` when it is none of those."""
    if name == "default":
        if DEFAULT_NAME is None:
            return None
        name = DEFAULT_NAME
    elif name not in WEIGHTS and name in _aliases():
        new = _aliases()[name]
        warnings.warn(f"the weights name {name!r} is now {new!r}; the old name goes in the "
                      "next release", DeprecationWarning, stacklevel=3)
        name = new
    return WEIGHTS.get(name) if name in WEIGHTS else None


def is_shipped_name(name: str) -> bool:
    """Whether ``name`` is taken by shipped weights (``default``, names, old aliases)."""
    return name == "default" or name in WEIGHTS or name in _aliases()


def shipped_weights_dir(name: str) -> Path | None:
    """The directory of shipped weights called ``name`` (or ``"default"``), if installed."""
    entry = find_shipped(name)
    return entry.directory if entry is not None and entry.installed else None


def list_shipped(pattern: str | None = None) -> list[str]:
    """Names (``arch.tag``) of the weights that ship with this install."""
    return WEIGHTS.names(pattern, where=lambda entry: entry.installed)


def read_weights_config(directory: str | Path) -> WeightsConfig:
    """The :class:`WeightsConfig` in ``directory/weights.json`` (one line if unreadable)."""
    path = Path(directory) / WEIGHTS_CONFIG_NAME
    return WeightsConfig.from_dict(read_json(path), source=str(path))


def write_weights_config(directory: str | Path, config: WeightsConfig) -> Path:
    """Write ``weights.json`` atomically."""
    path = Path(directory) / WEIGHTS_CONFIG_NAME
    write_text(path, config.to_json())
    return path


def publish_weights(directory: str | Path, *, name: str, licence: str, dataset: str,
                    recipe: str, metrics: dict[str, Any] | None = None,
                    card: str = "") -> WeightsConfig:
    """Describe the checkpoint in ``directory`` as published weights: write its
    ``weights.json`` with the sha256 of its ``model.safetensors`` as it is now.

    Numeric ``metrics`` are kept (strings and ``None`` are left to ``config.json``).
    Run it after the last write of the weights: any later change fails the checksum.
    """
    directory = Path(directory)
    numbers = {k: v for k, v in (metrics or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    config = WeightsConfig(name=name, sha256=file_sha256(directory / WEIGHTS_NAME),
                           licence=licence, dataset=dataset, recipe=recipe, metrics=numbers,
                           card=card)
    write_weights_config(directory, config)
    return config


def verify_weights(directory: str | Path) -> WeightsConfig | None:
    """Check ``model.safetensors`` against the sha256 in ``weights.json`` (when there is one):
    a damaged or replaced file fails here with one line instead of loading wrong weights.
    Returns the :class:`WeightsConfig` (``None`` for a checkpoint without one)."""
    directory = Path(directory)
    if not (directory / WEIGHTS_CONFIG_NAME).is_file():
        return None
    published = read_weights_config(directory)
    expected = published.sha256
    weights = directory / WEIGHTS_NAME
    stat = weights.stat()
    actual = _sha256_cached(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise CheckpointError(
            f"{weights} does not match its published checksum (sha256 {actual[:12]}…, "
            f"{WEIGHTS_CONFIG_NAME} says {expected[:12]}…): the file is damaged or was "
            "replaced; reinstall ferkit (or restore the file) to load these weights"
        )
    return published


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # keyed by size and mtime: a file rewritten in place is hashed again
    return file_sha256(path)
