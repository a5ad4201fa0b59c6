"""Import checkpoints written by the reference implementations.

Each architecture registers a ``checkpoint_filter`` that unwraps and renames its
reference's state dict (DAN's ``{"model_state_dict": …}``, DACL's ``module.`` prefix, …).
:func:`import_upstream` reads the file without unpickling code, applies the filter and
loads strictly, so a wrong file fails with the missing/unexpected keys named.

Example:
    >>> model = import_upstream("rafdb_epoch21_acc0.897_bacc0.8275.pth", "dan")  # doctest: +SKIP
    >>> ferkit.save_checkpoint(model, "dan-rafdb")                               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ferkit.checkpoint import load_state_dict_strict, read_state_dict
from ferkit.errors import CheckpointError
from ferkit.models.registry import create_model, get_model_entry


def import_upstream(
    path: str | Path,
    architecture: str,
    *,
    num_classes: int | None = None,
    label_names: Sequence[str] | None = None,
    provenance: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build ``architecture`` and load a reference checkpoint into it (eval mode).

    ``label_names`` should state the order the reference was trained with (e.g. RAF-DB's
    order for DAN's RAF-DB weights: the head's rows follow the dataset's native order).
    """
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
