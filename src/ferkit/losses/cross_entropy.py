"""Cross-entropy against class indices or class distributions (soft labels, FER+).

Example:
    >>> import torch
    >>> from ferkit.losses.cross_entropy import soft_cross_entropy
    >>> round(float(soft_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]))), 4)
    0.6931
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ferkit.losses.registry import LOSSES
from ferkit.models.output import FEROutput


def soft_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy against hard indices ``(B,)`` or distributions ``(B, K)`` (FER+)."""
    if target.ndim == 2:
        return F.cross_entropy(logits, target.to(logits.dtype), label_smoothing=label_smoothing)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


@LOSSES.decorator("cross_entropy")
class SoftCrossEntropyLoss(nn.Module):
    """The recipes' ``cross_entropy`` term: :func:`soft_cross_entropy` on ``output.logits``.

    Args:
        label_smoothing: as :func:`torch.nn.functional.cross_entropy`'s.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return soft_cross_entropy(logits, target, self.label_smoothing)

    def from_output(self, output: FEROutput, target: Tensor) -> Tensor:
        return self(output.logits, target)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"
