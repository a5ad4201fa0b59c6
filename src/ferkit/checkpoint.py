"""ferkit's checkpoint format: ``model.safetensors`` + ``config.json`` in one directory.

Safetensors cannot execute code, so loading a checkpoint never unpickles anything; the
legacy ``.pth``/``.pt`` files of upstream projects are read with ``weights_only=True``
(:func:`read_state_dict`), and :mod:`ferkit.models.convert` maps their keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ferkit import atomic
from ferkit.atomic import atomic_path, make_dirs
from ferkit.config import ModelConfig
from ferkit.errors import CheckpointError, FerkitError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def save_checkpoint(
    model: nn.Module,
    directory: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` (built by :func:`ferkit.create_model`) to ``directory``.

    ``metrics`` and ``provenance`` are merged into the saved config.  ``half=True`` stores
    floating-point weights as fp16 (they are cast back to fp32 when loaded).  Files are
    written to temporaries first and renamed, so an interrupted save never leaves a
    half-written checkpoint behind.
    """
    cfg = _config_of(model)
    if metrics:
        cfg = cfg.replace(metrics={**cfg.metrics, **metrics})
    if provenance:
        cfg = cfg.replace(provenance={**cfg.provenance, **provenance})
    directory = make_dirs(directory)
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        try:
            save_file(state, str(tmp), metadata={"format": "pt"})
        except SafetensorError as exc:  # safetensors wraps the OSError (e.g. a full disk)
            raise FerkitError(f"cannot write {directory / WEIGHTS_NAME}: {exc}; free some "
                              "disk space or save elsewhere") from None
    atomic.write_text(directory / CONFIG_NAME, cfg.to_json())
    model.ferkit_config = cfg
    return directory


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Build the model a checkpoint describes and load its weights (eval mode).

    ``path`` is a checkpoint directory, its ``model.safetensors`` or ``config.json``, or
    the name of weights shipped with ferkit (``"default"``) or of a user model.
    """
    from ferkit.models.registry import build_from_config

    directory = resolve_checkpoint_dir(path)
    cfg = read_config(directory)
    model = build_from_config(cfg)
    state = read_state_dict(directory / WEIGHTS_NAME)
    load_state_dict_strict(model, state, source=str(directory / WEIGHTS_NAME))
    model.to(map_location)
    model.eval()
    return model


def update_config(directory: str | Path, **changes: Any) -> ModelConfig:
    """Replace fields of a checkpoint's ``config.json`` (e.g. ``temperature=1.4``), atomically;
    the weights are not touched.  Returns the new config."""
    directory = Path(directory)
    cfg = read_config(directory)
    cfg = cfg.replace(**changes)  # validated: a bad value is a one-line ConfigError
    atomic.write_text(directory / CONFIG_NAME, cfg.to_json())
    return cfg


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint directory for a path, or a shipped or user model's name."""
    from ferkit.weights import named_weights_dir

    candidate = Path(path)
    if not candidate.exists():
        named = named_weights_dir(str(path))
        if named is not None:
            return named
        raise CheckpointError(_architecture_hint(str(path)) or
            f"checkpoint {str(path)!r} not found: give a directory holding {WEIGHTS_NAME} and "
            f"{CONFIG_NAME}, or a model name from `ferkit models list`"
        )
    directory = candidate.parent if candidate.is_file() else candidate
    missing = [n for n in (WEIGHTS_NAME, CONFIG_NAME) if not (directory / n).is_file()]
    if missing:
        raise CheckpointError(
            f"{directory} is not a ferkit checkpoint: missing {', '.join(missing)}. "
            "Upstream .pth files are imported with `ferkit.models.convert`"
        )
    return directory


def _architecture_hint(name: str) -> str | None:
    """What to do when ``name`` is an architecture (``models list`` shows it) but not weights."""
    from ferkit.models import list_models
    from ferkit.weights import list_shipped

    if name not in list_models(include_test=True):
        return None
    recipes = _recipes_for(name)
    train = (f"train one (`ferkit train --recipe {recipes[0]} --data DATA`; recipes for it: "
             f"{', '.join(recipes)})" if recipes else
             f"train one (`ferkit train` with model.name: {name} in a recipe)")
    shipped = ", ".join(list_shipped()) or "none"
    return (f"{name!r} is an architecture, not trained weights: ferkit ships weights only for "
            f"{shipped} ('default'). To use {name}, {train}, then pass the run's best/ "
            f"directory, or add it by name with `ferkit models add NAME RUN/best`")


def _recipes_for(architecture: str) -> list[str]:
    """Shipped recipes whose model is ``architecture``."""
    import yaml

    from ferkit.training.recipe import list_recipes, recipe_path

    found = []
    for recipe in list_recipes():
        try:
            raw = yaml.safe_load(recipe_path(recipe).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and (raw.get("model") or {}).get("name") == architecture:
            found.append(recipe)
    return found


def read_config(directory: str | Path) -> ModelConfig:
    path = Path(directory) / CONFIG_NAME
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
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


def load_state_dict_strict(model: nn.Module, state: Mapping[str, Tensor], *, source: str) -> None:
    """Load ``state`` into ``model``, failing with the missing/unexpected/mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} (file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys: {_preview(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {_preview(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches: {_preview(mismatched)}")
        raise CheckpointError(
            f"weights in {source} do not fit {type(model).__name__}: " + "; ".join(parts)
        )
    cast = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(cast, strict=True)


def _config_of(model: nn.Module) -> ModelConfig:
    cfg = getattr(model, "ferkit_config", None)
    if not isinstance(cfg, ModelConfig):
        raise CheckpointError(
            "this model has no ferkit_config; build it with ferkit.create_model() so the "
            "checkpoint records its architecture, classes and preprocessing"
        )
    return cfg


def _preview(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")

