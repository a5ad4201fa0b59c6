"""Trained weights <-> models: load and save checkpoints, resolve names, the public factory.

The layer above the architectures (:mod:`ferkit.models`) and the checkpoint files
(:mod:`ferkit.checkpoint`): a name is a path, shipped weights (``"default"``,
``"dsan.fer2013"``) or a user model, and :func:`create_model` builds an architecture with
fresh weights or with any of those.
"""

from __future__ import annotations

import difflib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.atomic import make_dirs, os_error_message
from ferkit.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    checkpoint_dir,
    read_config,
    read_state_dict,
    write_checkpoint,
)
from ferkit.config import ModelConfig, config_of
from ferkit.errors import CheckpointError, FerkitError
from ferkit.labels import normalise_label_names
from ferkit.models import MODELS, build_from_config, load_state_dict_strict
from ferkit.models import create_model as create_architecture
from ferkit.models import list_models as list_architectures
from ferkit.weights.shipped import find_shipped, list_shipped, verify_weights
from ferkit.weights.user import check_model_name, user_model_dir, user_models_dir

_RECIPES = Path(__file__).resolve().parents[1] / "training" / "recipes"


def named_weights_dir(name: str) -> Path | None:
    """Shipped weights' directory, else a user model's, for a name; ``None`` if neither."""
    entry = find_shipped(name)
    if entry is not None:
        if not entry.installed:
            raise CheckpointError(f"the shipped weights {entry.name!r} are missing from "
                                  f"{entry.directory} (a damaged install): reinstall ferkit")
        return entry.directory
    return user_model_dir(name)


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint directory for a path, or a shipped or user model's name."""
    if not Path(path).exists():
        named = named_weights_dir(str(path))
        if named is not None:
            return named
        raise CheckpointError(_architecture_hint(str(path)) or
            f"checkpoint {str(path)!r} not found: give a directory holding {WEIGHTS_NAME} and "
            f"{CONFIG_NAME}, or a model name from `ferkit models list`"
        )
    return checkpoint_dir(path)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Build the model a checkpoint describes and load its weights (eval mode).

    ``path`` is a checkpoint directory, its ``model.safetensors`` or ``config.json``, or
    the name of weights shipped with ferkit (``"default"``, ``"dsan.fer2013"``) or of a user
    model.  Published weights (a ``weights.json`` beside them) are checked against their
    sha256 first.
    """
    directory = resolve_checkpoint_dir(path)
    published = verify_weights(directory)
    cfg = read_config(directory)
    if published is not None and published.architecture != cfg.architecture:
        raise CheckpointError(f"{directory}: weights.json names {published.name!r} but "
                              f"config.json holds a {cfg.architecture!r} model; re-publish them")
    model = build_from_config(cfg)
    state = read_state_dict(directory / WEIGHTS_NAME)
    load_state_dict_strict(model, state, source=str(directory / WEIGHTS_NAME))
    model.to(map_location)
    model.eval()
    return model


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
    cfg = config_of(model, "save_checkpoint")
    if metrics:
        cfg = cfg.replace(metrics={**cfg.metrics, **metrics})
    if provenance:
        cfg = cfg.replace(provenance={**cfg.provenance, **provenance})
    directory = write_checkpoint(directory, model.state_dict(), cfg, half=half)
    model.ferkit_config = cfg
    return directory


def list_models(pattern: str | None = None, *, pretrained: bool = False,
                include_test: bool = False) -> list[str]:
    """Architecture names, or with ``pretrained=True`` the names of shipped weights
    (``"dsan.fer2013"``); ``pattern`` is a shell wildcard (``"dsan*"``).

    Example:
        >>> "dsan.fer2013" in list_models(pretrained=True)
        True
    """
    if pretrained:
        return list_shipped(pattern)
    return list_architectures(pattern, include_test=include_test)


def create_model(
    name: str | None = None,
    *,
    pretrained: bool | str | Path | None = None,
    num_classes: int | None = None,
    label_names: Sequence[str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build an architecture, with fresh weights or trained ones.

    Args:
        name: an architecture (``"dan"``: fresh weights unless ``pretrained``), or trained
            weights by name: shipped (``"dsan.fer2013"``, ``"default"``) or a user model
            (``ferkit models add``).  May be omitted when ``pretrained`` is a checkpoint.
        pretrained: a checkpoint directory/file or weights name, whose config decides
            classes, preprocessing and options (conflicting values raise); ``True`` loads
            the architecture's shipped weights.
        num_classes, label_names, **kwargs: as :func:`ferkit.models.create_model` (for
            trained weights, only to check they agree).

    Examples:
        >>> import ferkit
        >>> ferkit.create_model("dsan.fer2013").ferkit_config.architecture
        'dsan'
        >>> ferkit.create_model("baseline", backbone="resnet18").ferkit_config.num_classes
        7
    """
    if name is not None and name not in MODELS:
        if pretrained not in (None, False):
            raise FerkitError(f"{name!r} is not an architecture, so pretrained= cannot apply "
                              f"to it; pass one of them ({', '.join(list_architectures())})")
        shipped = find_shipped(name)  # resolves "default" and old names once (they warn)
        if shipped is None and user_model_dir(name) is None:
            raise _unknown_model(name)
        name, pretrained = None, shipped.name if shipped is not None else name
    if pretrained is True:
        if name is None:
            raise FerkitError("pretrained=True needs an architecture name: create_model('dsan', "
                              "pretrained=True)")
        pretrained = _shipped_for(name)
    if pretrained in (None, False):
        if name is None:
            raise FerkitError("create_model needs a model name or pretrained=<checkpoint>")
        return create_architecture(name, num_classes=num_classes, label_names=label_names,
                                   **kwargs)
    assert not isinstance(pretrained, bool)
    model = load_checkpoint(pretrained)
    _check_agrees(model.ferkit_config, pretrained, name, num_classes, label_names, kwargs)
    return model


def add_user_model(name: str, checkpoint: str | Path, *, overwrite: bool = False) -> Path:
    """Copy a checkpoint into the user's models as ``name`` (it must load first).

    The copy is written beside the destination and renamed into place, so an interrupted
    add never leaves half a model behind, and an existing model is only replaced with
    ``overwrite=True``.
    """
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


def _shipped_for(architecture: str) -> str:
    """The shipped weights for ``architecture`` (the default's when it is one of them)."""
    MODELS.get(architecture)  # unknown architectures fail with suggestions
    names = list_shipped(f"{architecture}.*")
    if not names:
        raise FerkitError(_architecture_hint(architecture) or
                          f"ferkit ships no weights for {architecture!r}")
    default = find_shipped("default")
    return default.name if default is not None and default.name in names else names[0]


def _check_agrees(cfg: ModelConfig, source: object, name: str | None, num_classes: int | None,
                  label_names: Sequence[str] | None, kwargs: dict[str, Any]) -> None:
    """Arguments given beside trained weights may only repeat what their config says."""
    if name is not None and name != cfg.architecture:
        raise FerkitError(f"checkpoint {source} holds a {cfg.architecture!r} model, not {name!r}")
    if num_classes is not None and num_classes != cfg.num_classes:
        raise FerkitError(
            f"num_classes={num_classes} contradicts the checkpoint's {cfg.num_classes} "
            f"classes ({', '.join(cfg.label_names)}); to train a new head, build the "
            "model without pretrained= and load the backbone weights instead"
        )
    if label_names is not None and tuple(normalise_label_names(label_names)) != tuple(
        cfg.label_names
    ):
        raise FerkitError(
            f"label_names {list(label_names)} contradict the checkpoint's "
            f"{list(cfg.label_names)}"
        )
    if kwargs:
        raise FerkitError(f"{', '.join(sorted(kwargs))} cannot change trained weights "
                          f"({source}): their config.json fixes the architecture's options "
                          "and preprocessing")


def _unknown_model(name: str) -> FerkitError:
    architectures, weights = list_architectures(), list_shipped()
    close = difflib.get_close_matches(name, [*architectures, *weights], n=3, cutoff=0.5)
    did_you_mean = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return FerkitError(
        f"unknown model {name!r}.{did_you_mean} Architectures: {', '.join(architectures)}; "
        f"trained weights: default, {', '.join(weights) or 'none'}, or a user model "
        "(`ferkit models list`)."
    )


def _architecture_hint(name: str) -> str | None:
    """What to do when ``name`` is an architecture (``models list`` shows it) but not weights."""
    if name not in MODELS:
        return None
    own = list_shipped(f"{name}.*")
    if own:
        return (f"{name!r} is an architecture, not trained weights: its shipped weights are "
                f"{', '.join(own)}; pass that name (or 'default')")
    recipes = _recipes_for(name)
    train = (f"train one (`ferkit train --recipe {recipes[0]} --data DATA`; recipes for it: "
             f"{', '.join(recipes)})" if recipes else
             f"train one (`ferkit train` with model.name: {name} in a recipe)")
    shipped = ", ".join(list_shipped()) or "none"
    return (f"{name!r} is an architecture, not trained weights: ferkit ships weights only for "
            f"{shipped} ('default'). To use {name}, {train}, then pass the run's best/ "
            f"directory, or add it by name with `ferkit models add NAME RUN/best`")


def _recipes_for(architecture: str) -> list[str]:
    """Shipped recipes whose model is ``architecture``.

    Recipes are read as the YAML data files they are (``ferkit/training/recipes/``), not
    through :mod:`ferkit.training`, which sits layers above the weights.
    """
    import yaml

    found = []
    for path in sorted(_RECIPES.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and (raw.get("model") or {}).get("name") == architecture:
            found.append(path.stem)
    return found
