"""Import checkpoints written by the reference implementations.

This is the architectures' side of weights, and so part of the models layer: each
architecture knows its reference's key layout (its ``checkpoint_filter``), and importing
builds that architecture with fresh weights and fills them, using only the file reading
below it (:mod:`ferkit.checkpoint`).  Naming, shipping and checksumming trained weights is
the layer above (:mod:`ferkit.weights`); an imported model joins it once saved
(``ferkit.save_checkpoint``, then ``ferkit models add``).

Each architecture registers a ``checkpoint_filter`` that unwraps and renames its
reference's state dict (DAN's ``{"model_state_dict": …}``, DACL's ``module.`` prefix, …).
:func:`import_upstream` reads the file without unpickling code, applies the filter and
loads strictly, so a wrong file fails with the missing/unexpected keys named.

A reference's output rows follow the label order *it* was trained with (DAN's RAF-DB
weights: RAF-DB's surprise, fear, disgust, …; Deep-Emotion's: FER2013's anger, disgust, …),
not ferkit's canonical order.  A ``format`` (:data:`UPSTREAM_FORMATS`) sets the
architecture, that order and the class/head counts in one word; importing a known
architecture without a format or ``label_names`` warns, since the outputs would be
mislabelled silently.

Example:
    >>> model = import_upstream("rafdb_epoch21_acc0.897_bacc0.8275.pth",  # doctest: +SKIP
    ...                         format="dan_rafdb")
    >>> model.ferkit_config.label_names[:3]                               # doctest: +SKIP
    ('surprise', 'fear', 'disgust')
    >>> ferkit.save_checkpoint(model, "dan-rafdb")                        # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ferkit.checkpoint import read_state_dict
from ferkit.errors import CheckpointError, FerkitError
from ferkit.labels import NATIVE_ORDERS
from ferkit.models.base import load_state_dict_strict
from ferkit.models.registry import create_model, get_model_entry


@dataclass(frozen=True)
class UpstreamFormat:
    """What a reference's released (or trained) checkpoint is: the architecture it loads
    into, its output rows' label order, the model options it needs and where it comes from."""

    architecture: str
    label_names: tuple[str, ...]
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    reference: str = ""


def _native(dataset: str, count: int | None = None) -> tuple[str, ...]:
    names = tuple(n for n in NATIVE_ORDERS[dataset] if n is not None)
    return names if count is None else names[:count]


#: Known reference checkpoint formats (``import_upstream(path, format=NAME)``).
UPSTREAM_FORMATS: dict[str, UpstreamFormat] = {
    # yaoing/DAN rafdb.py: RAF-DB list labels minus one (0 surprise … 6 neutral).
    "dan_rafdb": UpstreamFormat("dan", _native("rafdb"), {"num_head": 4},
                                "yaoing/DAN rafdb.py (rafdb_epoch21_acc0.897_bacc0.8275.pth)"),
    # yaoing/DAN affectnet.py: ImageFolder over folders 0..7 = AffectNet's own order;
    # --num_class 7 drops contempt (7).
    "dan_affectnet7": UpstreamFormat("dan", _native("affectnet", 7), {"num_head": 4},
                                     "yaoing/DAN affectnet.py --num_class 7"),
    "dan_affectnet8": UpstreamFormat("dan", _native("affectnet", 8), {"num_head": 4},
                                     "yaoing/DAN affectnet.py --num_class 8"),
    # amirhfarzaneh/dacl main.py: ImageFolder over train/00..06 (ferkit.labels "dacl").
    "dacl_rafdb": UpstreamFormat("dacl", _native("dacl"), {},
                                 "amirhfarzaneh/dacl main.py (train/00..06 folders)"),
    # omarsayed7/Deep-Emotion: the CSV's emotion column (0 angry … 6 neutral).
    "deep_emotion_fer2013": UpstreamFormat("deep_emotion", _native("fer2013"), {},
                                           "omarsayed7/Deep-Emotion main.py"),
}


def _resolve_format(format: str | None, architecture: str | None) -> UpstreamFormat | None:
    if format is None:
        if architecture is None:
            raise FerkitError("import_upstream needs an architecture or a format= "
                              f"({', '.join(UPSTREAM_FORMATS)})")
        return None
    if format not in UPSTREAM_FORMATS:
        close = difflib.get_close_matches(format, list(UPSTREAM_FORMATS), n=2)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise FerkitError(f"unknown upstream format {format!r}.{hint} Known: "
                          f"{', '.join(UPSTREAM_FORMATS)}")
    preset = UPSTREAM_FORMATS[format]
    if architecture is not None and architecture != preset.architecture:
        raise FerkitError(f"format {format!r} is a {preset.architecture} checkpoint, but "
                          f"architecture {architecture!r} was given; drop one of them")
    return preset


def import_upstream(
    path: str | Path,
    architecture: str | None = None,
    *,
    format: str | None = None,
    num_classes: int | None = None,
    label_names: Sequence[str] | None = None,
    provenance: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build ``architecture`` and load a reference checkpoint into it (eval mode).

    Args:
        path: the reference's ``.pth``/``.pt`` file.
        architecture: registry name (``dan``, ``dacl``, ``deep_emotion`` …); implied by
            ``format``.
        format: a known checkpoint format (:data:`UPSTREAM_FORMATS`, e.g. ``"dan_rafdb"``):
            sets the architecture, the native label order and class/head counts.
        num_classes, label_names: the classes in the order the reference was trained with
            (given by ``format``; a different ``label_names`` beside a format is refused).
        provenance: extra provenance entries for the model's config.
        model_kwargs: architecture options (``input_size``, ``num_head`` …), over the
            format's.
    """
    preset = _resolve_format(format, architecture)
    if preset is not None:
        architecture = preset.architecture
        if label_names is not None and tuple(label_names) != preset.label_names:
            raise FerkitError(
                f"format {format!r} fixes the label order to {', '.join(preset.label_names)}; "
                f"drop label_names (got {', '.join(label_names)}) or the format"
            )
        if num_classes is not None and num_classes != len(preset.label_names):
            raise FerkitError(f"format {format!r} has {len(preset.label_names)} classes, "
                              f"not num_classes={num_classes}")
        label_names = preset.label_names
        model_kwargs = {**preset.model_kwargs, **model_kwargs}
        provenance = {"upstream_format": format, "upstream_reference": preset.reference,
                      **(provenance or {})}
    elif label_names is None:
        known = [n for n, f in UPSTREAM_FORMATS.items() if f.architecture == architecture]
        if known:
            warnings.warn(
                f"importing a {architecture} reference checkpoint without format= or "
                "label_names=: its outputs get ferkit's canonical order (neutral, happy, sad, "
                "…), which is not the order the reference trained in; pass "
                f"format={' or '.join(repr(k) for k in known)} (or label_names= in the "
                "checkpoint's own order)",
                UserWarning, stacklevel=2,
            )
    assert architecture is not None
    entry = get_model_entry(architecture)
    if entry.checkpoint_filter is None:
        raise CheckpointError(f"{architecture} has no reference checkpoint format to import")
    raw = read_state_dict(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(raw).__name__})")
    state = entry.checkpoint_filter(raw)
    model = create_model(architecture, num_classes=num_classes, label_names=label_names,
                         **model_kwargs)
    load_state_dict_strict(model, state, source=str(path))
    cfg = model.ferkit_config
    model.ferkit_config = cfg.replace(
        provenance={**cfg.provenance, "imported_from": Path(path).name, **(provenance or {})}
    )
    return model.eval()


def strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Remove ``prefix`` from every key that has it (``module.`` from DataParallel saves)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def unwrap(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The nested state dict under the first of ``keys`` present, else ``raw`` itself."""
    for key in keys:
        if key in raw and isinstance(raw[key], dict):
            return raw[key]
    return raw
