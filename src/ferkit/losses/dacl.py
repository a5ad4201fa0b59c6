"""DACL's sparse (attentive) centre loss, in plain autograd.

Farzaneh & Qi, "Facial Expression Recognition in the Wild via Deep Attentive Center
Loss", WACV 2021, Eq. (5)-(8); reference ``loss.py`` of github.com/amirhfarzaneh/dacl.

For features ``x_i`` (``(B, D)``), attention weights ``a_i`` (``(B, D)``, from
``output.attention["element_weights"]``), labels ``y_i`` and class centres ``c_k``::

    L = 1 / (2B) * sum_i sum_d a_id * (x_id - c_{y_i, d})^2

The paper's hand-derived updates are

* dL/dx_i = a_i * (x_i - c_{y_i}) / B,  dL/da_i = (x_i - c_{y_i})^2 / (2B)  (true gradients)
* delta c_k = sum_{i: y_i = k} a_i * (c_k - x_i) / (1 + n_k)   (n_k = samples of class k)

The centre update is *not* the gradient of L (which divides by B, not 1 + n_k): it is
centre loss's usual per-class averaged step (Wen et al., 2016).  The reference gets it
with a hand-written ``autograd.Function``; here ``centre_update="paper"`` (default)
gets it from plain autograd by rescaling each centre row's gradient by ``B / (1 + n_k)``
with a value-preserving reparameterisation, and ``centre_update="gradient"`` keeps the
true gradient.  One difference remains and is documented rather than hidden: autograd
multiplies the centre gradient by the loss weight (``lambda`` in ``CE + lambda * L``),
which the reference's hand-written backward ignores; to reproduce the reference's
centre step ``c <- c - alpha * delta c``, give the centre optimiser ``lr = alpha / lambda``
(the reference's alpha 0.5 and lambda 0.01: ``lr = 50``, as the DACL recipes do).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ferkit.errors import InputError
from ferkit.losses._utils import class_indices
from ferkit.losses.center import CENTRE_UPDATES, LearnableCentres
from ferkit.losses.registry import LOSSES
from ferkit.models.output import FEROutput

__all__ = ["CENTRE_UPDATES", "SparseCenterLoss"]


@LOSSES.decorator("sparse_center")
class SparseCenterLoss(LearnableCentres):
    """Attention-weighted centre loss with learnable class centres (``self.centers``).

    Args:
        num_classes: number of classes (one centre each).
        feat_dim: feature width (512 for DACL's ResNet-18).
        size_average: divide by the batch size (the reference's default) or not.
        centre_update: ``"paper"`` -> centre gradients equal the paper's
            ``sum a * (c - x) / (1 + n_k)``; ``"gradient"`` -> the true gradient of the loss.

    Example:
        >>> import torch
        >>> loss = SparseCenterLoss(num_classes=2, feat_dim=3)
        >>> with torch.no_grad():
        ...     _ = loss.centers.zero_()
        >>> x = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
        >>> a = torch.tensor([[1.0, 0.5, 1.0], [0.0, 1.0, 0.25]])
        >>> loss(x, a, torch.tensor([0, 1])).item()   # (1 + 2 + 0 + 0 + 0 + 1) / (2 * 2)
        1.0
    """

    def __init__(self, num_classes: int, feat_dim: int, *, size_average: bool = True,
                 centre_update: str = "paper") -> None:
        centres = torch.empty(num_classes, feat_dim)
        # The reference's init: Kaiming-normal on the transposed (feat_dim, classes) view.
        nn.init.kaiming_normal_(centres.t())
        super().__init__(num_classes, feat_dim, centres, centre_update=centre_update)
        self.size_average = size_average

    def forward(self, features: Tensor, weights: Tensor, targets: Tensor) -> Tensor:
        features = features.flatten(1)
        if features.shape[1] != self.feat_dim or weights.shape != features.shape:
            raise InputError(
                f"SparseCenterLoss({self.num_classes}, {self.feat_dim}) needs features and "
                f"attention weights of shape (B, {self.feat_dim}); got features "
                f"{tuple(features.shape)} and weights {tuple(weights.shape)}"
            )
        if targets.shape != (features.shape[0],):
            raise InputError(f"targets must have shape ({features.shape[0]},), got "
                             f"{tuple(targets.shape)}")
        targets = targets.long()
        denominator = float(features.shape[0]) if self.size_average else 1.0
        # "paper": the same values; the gradient of row k multiplied by B / (1 + n_k).
        centres = self.centres_for(targets, denominator)
        diff = features - centres[targets]
        return (weights * diff.pow(2)).sum() / 2.0 / denominator

    def from_output(self, output: FEROutput, target: Tensor) -> Tensor:
        """The loss on ``output.embedding`` weighted by ``attention["element_weights"]``."""
        weights = output.attention.get("element_weights")
        if output.embedding is None or weights is None:
            raise InputError(
                "SparseCenterLoss reads the model's embedding and attention['element_weights'] "
                f"(DACL's), but the model gives attention: {', '.join(output.attention) or 'none'}"
            )
        return self(output.embedding, weights, class_indices(target))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, "
                f"size_average={self.size_average}, centre_update={self.centre_update!r}")
