"""Centre loss (Wen, Zhang, Li & Qiao, "A Discriminative Feature Learning Approach for Deep
Face Recognition", ECCV 2016): the softmax + centre-loss baseline of FER papers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ferkit.errors import InputError
from ferkit.losses._utils import check_labels, class_indices, pooled_features
from ferkit.losses.registry import LOSSES
from ferkit.models.output import FEROutput

CENTRE_UPDATES = ("paper", "gradient")


def check_centre_update(centre_update: str) -> None:
    if centre_update not in CENTRE_UPDATES:
        raise ValueError(f"centre_update must be one of {CENTRE_UPDATES}, got {centre_update!r}")


def per_class_centres(centres: Tensor, labels: Tensor, batch: float) -> Tensor:
    """``centres`` with the same value, but each row's gradient multiplied by
    ``batch / (1 + n_k)`` (``n_k``: samples of class k in the batch).

    A loss averaged over the batch gives centre k the gradient ``sum_{i: y_i = k} g_i / B``;
    through this view it becomes ``sum g_i / (1 + n_k)``: the per-class averaged centre
    step of Wen et al. 2016 and of DACL's hand-written backward, in plain autograd.
    """
    counts = torch.bincount(labels, minlength=centres.shape[0]).to(centres.dtype)
    scale = (batch / (1.0 + counts)).unsqueeze(1)
    return centres + (centres - centres.detach()) * (scale - 1.0)


class LearnableCentres(nn.Module):
    """Class centres ``self.centers`` trained by the optimiser, and the step they take.

    ``centre_update="gradient"``: the loss's true gradient; ``"paper"``: each centre row's
    gradient rescaled to Wen et al.'s per-class averaged step (:func:`per_class_centres`).
    """

    def __init__(self, num_classes: int, feat_dim: int, centres: Tensor, *,
                 centre_update: str) -> None:
        super().__init__()
        check_centre_update(centre_update)
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centre_update = centre_update
        self.centers = nn.Parameter(centres)

    def centres_for(self, labels: Tensor, batch: float) -> Tensor:
        """The centres as the loss reads them (same values; the update rule's gradient)."""
        if self.centre_update == "paper":
            return per_class_centres(self.centers, labels, batch)
        return self.centers


@LOSSES.decorator("center")
class CenterLoss(LearnableCentres):
    """``loss = mean_i 0.5 * ||x_i - c_{y_i}||^2`` with learnable centres ``c``.

    The paper sums ``0.5 * ||x_i - c_{y_i}||^2`` over the mini-batch; we average over it so
    the weight ``lambda`` does not depend on the batch size.  The paper updates the centres
    by its own rule (``c_j -= alpha * sum_i(c_j - x_i) / (1 + n_j)``); here they are
    ``nn.Parameter``\\ s trained by the optimiser.  ``centre_update="gradient"`` (default)
    gives them the true gradient ``sum_i(c_j - x_i) / B``; ``"paper"`` gives them
    ``sum_i(c_j - x_i) / (1 + n_j)``, so plain SGD with ``lr = alpha / lambda`` (``lambda``
    the loss weight, which autograd multiplies in) is the paper's update exactly.

    Args:
        num_classes: number of classes (= centres).
        feat_dim: feature size (``output.embedding``'s width).
        centre_update: ``"gradient"`` or ``"paper"`` (see above).

    Example:
        >>> loss = CenterLoss(num_classes=7, feat_dim=512)
        >>> value = loss(torch.randn(4, 512), torch.tensor([0, 1, 2, 6]))
    """

    def __init__(self, num_classes: int = 7, feat_dim: int = 512, *,
                 centre_update: str = "gradient") -> None:
        super().__init__(num_classes, feat_dim, torch.randn(num_classes, feat_dim),
                         centre_update=centre_update)

    def squared_distances(self, features: Tensor, labels: Tensor) -> Tensor:
        """``(B,)`` squared distance of each (pooled) feature to its class centre."""
        name = type(self).__name__
        x = pooled_features(features)
        if x.shape[1] != self.feat_dim:
            raise InputError(f"{name}: features have {x.shape[1]} dims, the centres "
                             f"{self.feat_dim}")
        check_labels(labels, x.shape[0], self.num_classes, name)
        centres = self.centres_for(labels, float(x.shape[0]))
        return (x - centres[labels]).pow(2).sum(dim=1)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        return 0.5 * self.squared_distances(features, labels).mean()

    def from_output(self, output: FEROutput, target: Tensor) -> Tensor:
        """The loss on ``output.embedding`` (``target``: class indices or distributions)."""
        if output.embedding is None:
            raise InputError(f"{type(self).__name__} reads the model's embedding, but the "
                             "model returned none")
        return self(output.embedding, class_indices(target))
