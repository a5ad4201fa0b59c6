"""The explainer base class and the batch result every explainer returns.

Pattern from pytorch-grad-cam: a base class does the plumbing (input checks, per-sample
targets, context-manager cleanup) and a subclass overrides one method,
:meth:`Explainer.explain_batch`.  ``with`` blocks release hooks on exit and never swallow
an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferkit.config import find_config
from ferkit.errors import FerkitError, InputError
from ferkit.explain.targets import ClassTarget, TargetLike, resolve_target
from ferkit.labels import default_label_names


@dataclass
class BatchExplanation:
    """What an explainer found for a preprocessed batch of ``B`` inputs.

    Attributes:
        method: ``"gradcam"``, ``"gradcam++"``, ``"attention"`` …
        label_names: the model's classes, in output order.
        probs: ``(B, K)`` softmax probabilities from the same forward pass.
        target_index: per sample, the class explained (``None`` for a custom callable target).
        maps: name → ``(B, H, W)`` float32 in [0, 1] at the model's input size.
        vectors: name → ``(B, …)`` per-sample attention weights that are not spatial
            (DAN's per-head channel weights ``(B, N, C)``, DACL's ``(B, 512)``).
        images: name → ``(B, H, W)`` float32 in [0, 1] (e.g. Deep-Emotion's warped input).
        grids: name → ``(B, H, W, 2)`` sampling positions ``(x, y)`` in input pixels
            (Deep-Emotion's spatial-transformer grid).
    """

    method: str
    label_names: tuple[str, ...]
    probs: np.ndarray
    target_index: list[int | None]
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    grids: dict[str, np.ndarray] = field(default_factory=dict)


class TopClassTarget:
    """The top predicted class's logit, decided per sample on the fly."""

    def __call__(self, logits: Tensor) -> Tensor:
        return logits[..., int(logits.argmax(-1))]


class Explainer:
    """Base class: subclasses set ``method`` and override :meth:`explain_batch`.

    Use as a context manager (or call :meth:`close`) so hooks are removed::

        with GradCAM(model) as cam:
            result = cam(batch, target="happy")
    """

    method: str = "explainer"

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        cfg = find_config(model)
        self.label_names: tuple[str, ...] = (
            tuple(cfg.label_names) if cfg is not None else tuple(default_label_names(
                _num_outputs(model)))
        )

    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # Returning None lets any exception from the block propagate.
        self.close()

    def close(self) -> None:
        """Release hooks and restore the model's mode (nothing to do by default)."""

    def __call__(self, x: Tensor, target: TargetLike | Sequence[TargetLike] = None
                 ) -> BatchExplanation:
        """Explain a preprocessed batch ``x`` ``(B, C, H, W)``.

        ``target``: one target for every sample or a sequence of ``B`` (class names,
        indices, :class:`~ferkit.explain.targets.ExpressionTarget` or callables);
        ``None`` explains each sample's top class.
        """
        if not isinstance(x, Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"explainers take a (B, C, H, W) tensor batch, got {shape}")
        if isinstance(target, (list, tuple)):
            if len(target) != x.shape[0]:
                raise FerkitError(f"{len(target)} targets for a batch of {x.shape[0]}")
            targets = [resolve_target(t, self.label_names) for t in target]
        else:
            targets = [resolve_target(target, self.label_names)] * x.shape[0]
        return self.explain_batch(x, [t or TopClassTarget() for t in targets])

    def explain_batch(self, x: Tensor, targets: list[Callable[[Tensor], Tensor]]
                      ) -> BatchExplanation:
        """The one method to override: ``targets`` holds one callable per sample."""
        raise NotImplementedError


def target_indices(targets: Sequence[Callable], logits: Tensor) -> list[int | None]:
    """The class each target stands for (``None`` for custom callables)."""
    out: list[int | None] = []
    for target, row in zip(targets, logits, strict=True):
        if isinstance(target, ClassTarget):
            out.append(target.index)
        elif isinstance(target, TopClassTarget):
            out.append(int(row.argmax()))
        else:
            out.append(None)
    return out


def normalise_maps(maps: Tensor | np.ndarray, *, joint_dims: int = 0) -> np.ndarray:
    """Min-max scale each map to [0, 1]; constant maps become all zeros.

    ``maps`` is ``(B, …, H, W)``; with ``joint_dims=1`` a ``(B, N, H, W)`` stack is scaled
    jointly per sample (so DAN's heads keep their relative strength).
    """
    arr = torch.as_tensor(np.asarray(maps) if not isinstance(maps, Tensor) else maps)
    arr = arr.detach().float().cpu()
    if not torch.isfinite(arr).all():
        raise FerkitError("the model produced non-finite attention/CAM values (NaN or inf); "
                          "check the weights and the input normalisation")
    keep = arr.ndim - 2 - joint_dims
    flat = arr.reshape(*arr.shape[:keep], -1)
    lo = flat.amin(-1, keepdim=True)
    hi = flat.amax(-1, keepdim=True)
    span = hi - lo
    scaled = torch.where(span > 1e-12, (flat - lo) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return scaled.reshape(arr.shape).clamp_(0, 1).numpy().astype(np.float32)


def resize_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, N, h, w)`` maps to ``size`` (pixel centres aligned)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps.float()
    return F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)


def _num_outputs(model: nn.Module) -> int:
    num = getattr(model, "num_classes", None)
    if isinstance(num, int):
        return num
    raise FerkitError("this model has no ferkit_config (build it with ferkit.create_model) "
                      "and no num_classes attribute, so its class names are unknown")
