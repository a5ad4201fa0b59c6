"""ferkit's checkpoint files: ``model.safetensors`` + ``config.json`` in one directory.

The bottom of the weights stack: reading and writing those two files (atomically), nothing
that knows models or names.  Building a model from a checkpoint, saving a model and
resolving names (``"default"``, ``"dsan.fer2013"``, user models) live one layer up in
:mod:`ferkit.weights`.

Safetensors cannot execute code, so loading a checkpoint never unpickles anything; the
legacy ``.pth``/``.pt`` files of upstream projects are read with ``weights_only=True``
(:func:`read_state_dict`), and :mod:`ferkit.models.convert` maps their keys.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ferkit import atomic
from ferkit.atomic import atomic_path, make_dirs
from ferkit.config import ModelConfig
from ferkit.errors import CheckpointError, FerkitError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def write_checkpoint(directory: str | Path, state: Mapping[str, Tensor], config: ModelConfig,
                     *, half: bool = False) -> Path:
    """Write ``state`` and ``config`` as a checkpoint directory; returns the directory.

    ``half=True`` stores floating-point tensors as fp16 (loading casts them back).  Each file
    goes to a temporary first and is renamed, so an interrupted save never leaves a
    half-written checkpoint behind.
    """
    directory = make_dirs(directory)
    tensors = {}
    for key, value in state.items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        except SafetensorError as exc:  # safetensors wraps the OSError (e.g. a full disk)
            raise FerkitError(f"cannot write {directory / WEIGHTS_NAME}: {exc}; free some "
                              "disk space or save elsewhere") from None
    atomic.write_text(directory / CONFIG_NAME, config.to_json())
    return directory


def update_config(directory: str | Path, **changes: Any) -> ModelConfig:
    """Replace fields of a checkpoint's ``config.json`` (e.g. ``temperature=1.4``), atomically;
    the weights are not touched.  Returns the new config."""
    directory = Path(directory)
    cfg = read_config(directory)
    cfg = cfg.replace(**changes)  # validated: a bad value is a one-line ConfigError
    atomic.write_text(directory / CONFIG_NAME, cfg.to_json())
    return cfg


def checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint directory for an existing directory, ``model.safetensors`` or
    ``config.json`` path; one line naming the missing file otherwise."""
    candidate = Path(path)
    directory = candidate.parent if candidate.is_file() else candidate
    missing = [n for n in (WEIGHTS_NAME, CONFIG_NAME) if not (directory / n).is_file()]
    if missing:
        raise CheckpointError(
            f"{directory} is not a ferkit checkpoint: missing {', '.join(missing)}. "
            "Upstream .pth files are imported with `ferkit.models.convert`"
        )
    return directory


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | Path) -> Any:
    """A JSON file's content; one :class:`CheckpointError` line if it is unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def read_config(directory: str | Path) -> ModelConfig:
    path = Path(directory) / CONFIG_NAME
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return ModelConfig.from_dict(raw, source=str(path))


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors from a ``.safetensors`` file, or from a ``.pth``/``.pt`` without unpickling code.

    Returns the raw mapping as stored (upstream wrappers such as ``{"model_state_dict": …}``
    are left for the converters to unwrap).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from exc
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        # weights_only refuses pickled code objects: report that plainly, never fall back.
        raise CheckpointError(
            f"cannot read {path} as a tensor checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). ferkit only loads "
            "plain tensors (torch.load weights_only=True); re-save the state_dict alone"
        ) from exc


def __getattr__(name: str) -> Any:
    # Names that moved up (they build models or resolve names, which this file-I/O layer
    # must not know); importing them from here still works for one release.  The imports
    # below are the deprecated aliases' only way up (tests/test_import_structure.py).
    if name in ("load_checkpoint", "save_checkpoint", "resolve_checkpoint_dir"):
        from ferkit import weights as home
    elif name == "load_state_dict_strict":
        from ferkit.models import base as home
    else:
        raise AttributeError(f"module 'ferkit.checkpoint' has no attribute {name!r}")
    warnings.warn(f"ferkit.checkpoint.{name} moved to {home.__name__}.{name}; the old name "
                  "goes in the next release", DeprecationWarning, stacklevel=2)
    return getattr(home, name)
