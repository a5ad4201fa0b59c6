"""DSAN's feature recalibration loss (ferkit's design; the paper's code is not public).

Tang, Li & Jin, "A dual stream attention network for facial expression recognition in
the wild", IJMLC 2024, name a *feature recalibration loss* that, with GFE-AN's sparse
attention, "selectively emphasizes feature elements meaningful for facial expression and
suppresses those unrelated".  Our formulation (see :mod:`ferkit.models.dsan`): the GFE
classifier scores both the recalibrated global feature ``g' = g * (D * w)`` and the plain
one ``g``; recalibration must raise the true class's probability by at least ``margin``::

    L = mean_i max(0, margin - (softmax(z'_i)[y_i] - stopgrad(softmax(z_i)[y_i])))

with ``z'`` = ``output.attention["gfe_logits"]`` and ``z`` =
``output.attention["gfe_plain_logits"]``.  The plain side is detached so the loss moves
the attention (and the shared trunk/classifier through ``z'``) and never rewards making
the plain feature worse.  It is a rank-style hinge like Region Attention Networks'
rank regularisation (Wang et al., 2020); it is zero once recalibration helps enough.
"""

from __future__ import annotations

from torch import Tensor, nn

from ferkit.errors import InputError
from ferkit.losses._utils import class_indices
from ferkit.losses.registry import LOSSES
from ferkit.models.output import FEROutput


@LOSSES.decorator("recalibration")
class FeatureRecalibrationLoss(nn.Module):
    """Hinge on the true-class probability gain from recalibration.

    Args:
        margin: required gain in true-class probability (0.05: five points).

    Example:
        >>> import torch
        >>> loss = FeatureRecalibrationLoss(margin=0.1)
        >>> plain = torch.zeros(1, 2)               # p(true) = 0.5
        >>> recal = torch.tensor([[0.0, 0.0]])      # no gain -> loss = margin
        >>> round(loss(recal, plain, torch.tensor([0])).item(), 6)
        0.1
    """

    def __init__(self, margin: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= margin <= 1.0:
            raise ValueError(f"margin is a probability gain in [0, 1], got {margin}")
        self.margin = margin

    def forward(self, recalibrated_logits: Tensor, plain_logits: Tensor,
                targets: Tensor) -> Tensor:
        if recalibrated_logits.shape != plain_logits.shape or recalibrated_logits.ndim != 2:
            raise InputError(
                "FeatureRecalibrationLoss needs two (B, K) logit tensors of the same shape; "
                f"got {tuple(recalibrated_logits.shape)} and {tuple(plain_logits.shape)}"
            )
        index = targets.long().view(-1, 1)
        p_recalibrated = recalibrated_logits.softmax(dim=1).gather(1, index).squeeze(1)
        p_plain = plain_logits.detach().softmax(dim=1).gather(1, index).squeeze(1)
        return (self.margin - (p_recalibrated - p_plain)).clamp(min=0).mean()

    def from_output(self, output: FEROutput, target: Tensor) -> Tensor:
        """The loss on DSAN's ``attention["gfe_logits"]`` and ``["gfe_plain_logits"]``."""
        missing = [k for k in ("gfe_logits", "gfe_plain_logits") if k not in output.attention]
        if missing:
            raise InputError(f"FeatureRecalibrationLoss reads attention {missing}, which the "
                             "model does not produce (it is DSAN's loss)")
        return self(output.attention["gfe_logits"], output.attention["gfe_plain_logits"],
                    class_indices(target))

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
