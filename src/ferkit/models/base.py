"""What every ferkit model is (:class:`FERModel`) and how weights go into one.

An architecture's builder returns a plain ``nn.Module``; :func:`ferkit.create_model` attaches
its :class:`~ferkit.config.ModelConfig` as ``ferkit_config``.  :class:`FERModel` names what
the rest of ferkit relies on, so inference, explainers, export and training read one
contract instead of probing attributes; :func:`~ferkit.config.config_of` fetches the config
with one error message wherever it is required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from ferkit.config import ModelConfig
from ferkit.errors import CheckpointError
from ferkit.models.output import FEROutput


@runtime_checkable
class FERModel(Protocol):
    """A model built by :func:`ferkit.create_model` (or loaded from a checkpoint).

    Attributes:
        ferkit_config: architecture, classes, preprocessing and provenance; saved as
            ``config.json`` beside the weights.

    Methods:
        ``model(x)``: ``(B, C, H, W)`` normalised crops -> :class:`FEROutput` (``logits``
        always; ``embedding``, ``feature_map`` and ``attention`` where the architecture has
        them).  ``default_cam_layer()``: the layer that makes the final feature map, which CAM
        explainers hook by default; architectures may also list ``cam_layers()``
        (candidates, deepest first), and explainers then hook the deepest whose map has at
        least 6x6 cells at the model's input size.

    Example:
        >>> import ferkit
        >>> isinstance(ferkit.create_model("baseline_test"), FERModel)
        True
    """

    ferkit_config: ModelConfig

    def __call__(self, x: Tensor) -> FEROutput: ...

    def default_cam_layer(self) -> nn.Module: ...

    def state_dict(self, *args, **kwargs) -> dict[str, Tensor]: ...

    def eval(self) -> nn.Module: ...


def load_state_dict_strict(model: nn.Module, state: Mapping[str, Tensor], *, source: str) -> None:
    """Load ``state`` into ``model``, failing with the missing/unexpected/mis-shaped keys.

    Floating-point tensors are cast to the model's dtype (fp16 checkpoints load into fp32).
    """
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


def _preview(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")
