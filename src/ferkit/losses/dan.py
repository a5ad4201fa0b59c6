"""DAN's two auxiliary losses (Wen et al. 2023, github.com/yaoing/DAN).

The reference trains with ``CrossEntropy(logits) + AffinityLoss(feature_map) +
PartitionLoss(heads)``, all weighted 1, the centres optimised together with the model.

* :class:`AffinityLoss` pulls each sample's pooled backbone feature towards its class
  centre, scaled by the spread of the centres (maximising inter-class margins).
* :class:`PartitionLoss` pushes the heads apart (maximises their variance) so each attends
  to a different face region.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ferkit.errors import InputError
from ferkit.losses.center import CenterLoss
from ferkit.losses.registry import LOSSES
from ferkit.models.output import FEROutput


@LOSSES.decorator("affinity")
class AffinityLoss(CenterLoss):
    """DAN's affinity loss: distance to the class centre over the centres' total variance.

    For pooled features ``x_i`` (``(B, D)``; a ``(B, D, H, W)`` map is averaged over space,
    as the reference does with the map it receives), labels ``y_i`` and learnable centres
    ``c`` (``(num_classes, D)``, initialised from N(0, 1) as the reference)::

        loss = mean_i  clamp(||x_i - c_{y_i}||^2 / sum_d var_k(c_{k,d}), 1e-12, 1e12)

    ``var_k`` is the unbiased variance over the classes.  The denominator carries gradient
    too, so the loss also spreads the centres apart.

    ``num_centers`` > ``num_classes`` reproduces the reference's ``rafdb.py``, which builds
    ``AffinityLoss(num_class=8)`` while training the 7 RAF-DB classes: the 8th centre is never
    any sample's own centre but enters the variance in the denominator (and is pushed away
    from the others by it).  The ``dan_rafdb`` recipe sets ``num_centers: 8``.

    Differences from the reference: the reference clamps the whole masked
    ``(B, num_centers)`` distance matrix, so each of the ``num_centers - 1`` zero entries per
    sample adds 1e-12 to the value; here only the own class's distance is clamped (a
    difference below 1e-11 in the value and none in the gradient: clamped entries pass no
    gradient).  The distance is ``||x - c||^2`` rather than the reference's expansion
    ``||x||^2 + ||c||^2 - 2 x.c`` (equal up to rounding).

    Args:
        num_classes: number of classes (the labels' range).
        feat_dim: feature size (512 for ResNet-18 DAN, 768 for ConvNeXt-Tiny).
        num_centers: number of centres (default ``num_classes``); rows past
            ``num_classes`` only enter the variance.

    Example:
        >>> loss = AffinityLoss(num_classes=7, feat_dim=512)
        >>> value = loss(torch.randn(4, 512, 7, 7), torch.tensor([0, 1, 2, 6]))
    """

    def __init__(self, num_classes: int = 7, feat_dim: int = 512, *,
                 num_centers: int | None = None) -> None:
        super().__init__(num_classes, feat_dim)
        num_centers = num_classes if num_centers is None else int(num_centers)
        if num_centers < num_classes:
            raise ValueError(f"AffinityLoss needs num_centers >= num_classes ({num_classes}), "
                             f"got {num_centers}")
        self.num_centers = num_centers
        if num_centers != num_classes:
            self.centers = nn.Parameter(torch.randn(num_centers, feat_dim))

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        distance = self.squared_distances(features, labels)
        spread = self.centers.var(dim=0).sum()
        return (distance / spread).clamp(min=1e-12, max=1e12).mean()


@LOSSES.decorator("partition")
class PartitionLoss(nn.Module):
    """DAN's partition loss: ``log(1 + N / (mean variance across heads + eps))``.

    ``heads`` is ``(B, N, C)``, the N heads' outputs.  Like the reference, the loss works on
    the heads after the fusion's log-softmax across heads: it is applied here, and since
    log-softmax is idempotent, passing heads that are already log-softmaxed (the reference's
    model output) gives the same value.  Then::

        v = mean over (b, c) of var_n(h[b, n, c])       (unbiased variance across heads)
        loss = log(1 + N / (v + eps))

    **The mean sits inside the log**: variances are averaged over batch and channels first
    and the log taken once, exactly as the reference.  ``eps`` defaults to the reference's
    ``sys.float_info.epsilon`` (2.2e-16, added in rafdb.py/affectnet.py "to avoid empty var
    case"): identical heads (v = 0, e.g. a fresh model whose heads are all equal) give a
    finite value.  With one head there is nothing to partition and the loss is 0.

    Example:
        >>> PartitionLoss()(torch.randn(2, 4, 512)).item() > 0
        True
    """

    def __init__(self, eps: float = sys.float_info.epsilon) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, heads: Tensor) -> Tensor:
        if heads.ndim != 3:
            raise InputError(f"PartitionLoss: heads must be (B, N, C), got {tuple(heads.shape)}")
        num_head = heads.shape[1]
        if num_head < 2:
            return heads.new_zeros(())
        variance = F.log_softmax(heads, dim=1).var(dim=1).mean()
        return torch.log1p(num_head / (variance + self.eps))

    def from_output(self, output: FEROutput, target: Tensor | None = None) -> Tensor:
        """The loss on ``output.attention["heads"]`` (it reads no labels)."""
        if "heads" not in output.attention:
            raise InputError("PartitionLoss needs a model with attention heads "
                             "(output.attention['heads'], e.g. dan)")
        return self(output.attention["heads"])
