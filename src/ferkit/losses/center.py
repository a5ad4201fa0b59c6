"""Centre loss (Wen, Zhang, Li & Qiao, "A Discriminative Feature Learning Approach for Deep
Face Recognition", ECCV 2016): the softmax + centre-loss baseline of FER papers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ferkit.errors import InputError
from ferkit.losses._utils import check_labels, pooled_features
from ferkit.models.output import FEROutput


class CenterLoss(nn.Module):
    """``loss = mean_i 0.5 * ||x_i - c_{y_i}||^2`` with learnable centres ``c``.

    The paper sums ``0.5 * ||x_i - c_{y_i}||^2`` over the mini-batch; we average over it so
    the weight ``lambda`` does not depend on the batch size.  The paper updates the centres
    by its own rule (``c_j -= alpha * sum_i(c_j - x_i) / (1 + n_j)``); here they are
    ``nn.Parameter``\\ s trained by the optimiser, whose gradient ``sum_i(c_j - x_i) / B`` has
    the same direction: give them their own parameter group (and learning rate) if needed.

    Args:
        num_classes: number of classes (= centres).
        feat_dim: feature size (``output.embedding``'s width).

    Example:
        >>> loss = CenterLoss(num_classes=7, feat_dim=512)
        >>> value = loss(torch.randn(4, 512), torch.tensor([0, 1, 2, 6]))
    """

    def __init__(self, num_classes: int = 7, feat_dim: int = 512) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def squared_distances(self, features: Tensor, labels: Tensor) -> Tensor:
        """``(B,)`` squared distance of each (pooled) feature to its class centre."""
        name = type(self).__name__
        x = pooled_features(features)
        if x.shape[1] != self.feat_dim:
            raise InputError(f"{name}: features have {x.shape[1]} dims, the centres "
                             f"{self.feat_dim}")
        check_labels(labels, x.shape[0], self.num_classes, name)
        return (x - self.centers[labels]).pow(2).sum(dim=1)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        return 0.5 * self.squared_distances(features, labels).mean()

    def from_output(self, output: FEROutput, labels: Tensor) -> Tensor:
        """The loss on ``output.embedding``."""
        return self(output.embedding, labels)
