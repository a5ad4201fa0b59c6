"""The model registry: one factory, ``create_model``, for every architecture.

Each architecture module registers plain builder functions with :func:`register_model`;
``ferkit.models`` imports those modules explicitly (no star-import side effects).  A
builder takes ``num_classes``, ``in_chans`` and its own keyword arguments and returns an
``nn.Module`` whose ``forward`` returns :class:`~ferkit.models.output.FEROutput`.
:func:`create_model` resolves classes and preprocessing, builds the model with fresh weights
and attaches the :class:`~ferkit.config.ModelConfig` as ``model.ferkit_config`` (the
:class:`~ferkit.models.base.FERModel` contract).  Trained weights are the layer above:
:mod:`ferkit.weights`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ferkit.config import DataConfig, ModelConfig
from ferkit.errors import FerkitError
from ferkit.labels import default_label_names, normalise_label_names
from ferkit.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture."""

    name: str
    builder: Callable[..., nn.Module]
    data: DataConfig
    summary: str
    reference: str
    test_only: bool = False
    #: maps an upstream checkpoint's state dict to this architecture's keys (timm's
    #: ``checkpoint_filter_fn``); ``None`` when the architecture has no upstream weights.
    checkpoint_filter: Callable[[dict[str, Any]], dict[str, Any]] | None = None


#: Every architecture, filled by the imports in ``ferkit/models/__init__.py``.
MODELS: Registry[ModelEntry] = Registry("model", hint="(`ferkit models list`)",
                                        hidden=lambda entry: entry.test_only)

#: Builder arguments that only initialise weights from a file (``backbone_weights``).  They
#: never travel in ``config.json``: a checkpoint already holds the result, and the file may
#: not exist where the checkpoint is loaded.  :func:`create_model` hands them to the builder
#: once and records where the weights came from in ``provenance``.
INIT_ONLY_KWARGS = frozenset({"backbone_weights"})


def register_model(
    name: str,
    *,
    data: DataConfig,
    summary: str,
    reference: str = "",
    test_only: bool = False,
    checkpoint_filter: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``builder`` under ``name``; a duplicate name is an error.

    ``data`` is the architecture's default preprocessing; ``test_only`` hides tiny variants
    meant for CI from :func:`list_models` unless asked for; ``checkpoint_filter`` turns the
    reference implementation's checkpoint into this model's state dict
    (:func:`ferkit.models.convert.import_upstream`).
    """

    return MODELS.decorator(name, lambda builder: ModelEntry(
        name, builder, data, summary, reference, test_only, checkpoint_filter))


def list_models(pattern: str | None = None, *, include_test: bool = False) -> list[str]:
    """Registered architecture names, sorted; ``pattern`` is a shell wildcard (``"dan*"``)."""
    return MODELS.names(pattern, where=None if include_test else lambda e: not e.test_only)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``, with close-match suggestions when unknown."""
    return MODELS.get(name)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    label_names: Sequence[str] | None = None,
    input_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build a registered architecture with fresh weights.

    This is the architecture layer's factory; :func:`ferkit.create_model` (in
    :mod:`ferkit.weights`) adds trained weights by name (``"dsan.fer2013"``) or path.

    Args:
        name: architecture, e.g. ``"dan"``.
        num_classes: number of outputs; 7 and 8 map to the canonical class lists.
        label_names: class names in output order (overrides ``num_classes``).
        input_size, mean, std: override the architecture's default preprocessing.
        **model_kwargs: architecture arguments (see each model's docstring).

    Examples:
        >>> model = create_model("baseline", backbone="resnet18")
        >>> model.ferkit_config.label_names[:3]
        ('neutral', 'happy', 'sad')
    """
    if "pretrained" in model_kwargs:
        raise FerkitError("ferkit.models.create_model builds architectures with fresh weights; "
                          "load trained ones with ferkit.create_model(name, pretrained=...)")
    entry = get_model_entry(name)
    if label_names is not None:
        labels = normalise_label_names(label_names)
        if num_classes is not None and num_classes != len(labels):
            raise FerkitError(
                f"num_classes={num_classes} but label_names has {len(labels)} entries"
            )
    else:
        labels = default_label_names(7 if num_classes is None else num_classes)

    data = entry.data
    changes: dict[str, Any] = {}
    if input_size is not None:
        changes["input_size"] = tuple(int(v) for v in input_size)
    if mean is not None:
        changes["mean"] = tuple(float(v) for v in mean)
    if std is not None:
        changes["std"] = tuple(float(v) for v in std)
    if changes:
        if "input_size" in changes and changes["input_size"][0] != data.in_chans:
            # A channel change without new statistics: repeat/average the defaults.
            chans = changes["input_size"][0]
            changes.setdefault("mean", _fit_stats(data.mean, chans))
            changes.setdefault("std", _fit_stats(data.std, chans))
        try:
            data = data.replace(**changes)
        except ValueError as exc:
            raise FerkitError(f"invalid preprocessing for {name}: {exc}") from exc

    init_kwargs = {k: model_kwargs.pop(k) for k in INIT_ONLY_KWARGS & model_kwargs.keys()}
    provenance = {k: _weights_source(v) for k, v in init_kwargs.items() if v is not None}
    model = build_from_config(
        ModelConfig(architecture=name, label_names=labels, data=data, model_kwargs=model_kwargs,
                    provenance=provenance),
        init_kwargs=init_kwargs,
    )
    return model


def build_from_config(cfg: ModelConfig, *, init_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate the architecture that ``cfg`` describes (random weights, or those that
    ``init_kwargs`` such as ``backbone_weights`` load; see :data:`INIT_ONLY_KWARGS`)."""
    entry = get_model_entry(cfg.architecture)
    signature = inspect.signature(entry.builder)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    init_kwargs = dict(init_kwargs or {})
    unknown = [k for k in [*cfg.model_kwargs, *init_kwargs]
               if k not in signature.parameters and not accepts_any]
    if unknown:
        allowed = [p for p in signature.parameters if p not in ("num_classes", "in_chans")]
        raise FerkitError(
            f"{cfg.architecture} does not take {', '.join(unknown)}; "
            f"its options are: {', '.join(allowed) or 'none'}"
        )
    kwargs = {**cfg.model_kwargs, **init_kwargs}
    if "input_size" in signature.parameters:
        kwargs.setdefault("input_size", cfg.data.input_size[1:])
    model = entry.builder(num_classes=cfg.num_classes, in_chans=cfg.data.in_chans, **kwargs)
    model.ferkit_config = cfg
    return model


def _fit_stats(values: Sequence[float], channels: int) -> tuple[float, ...]:
    if channels == 1:
        return (sum(values) / len(values),)
    return tuple(values[0] for _ in range(channels)) if len(values) == 1 else tuple(values)


def _weights_source(value: Any) -> str:
    """How provenance names an init-only weights argument: a file's name, never its
    full local path; an in-memory state dict as such."""
    if isinstance(value, (str, Path)):
        return Path(value).name
    return f"<in-memory {type(value).__name__}>"
