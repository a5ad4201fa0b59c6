"""Losses that read :class:`ferkit.FEROutput` fields by name.

Example:
    >>> import torch, ferkit
    >>> from ferkit.losses import SparseCenterLoss
    >>> model = ferkit.create_model("deep_emotion")
    >>> out = model(torch.zeros(2, 1, 48, 48))
    >>> loss = SparseCenterLoss(num_classes=7, feat_dim=50)
    >>> value = loss(out.embedding, torch.ones_like(out.embedding), torch.tensor([0, 1]))
"""

from ferkit.losses.dacl import SparseCenterLoss
from ferkit.losses.dsan import FeatureRecalibrationLoss

__all__ = ["FeatureRecalibrationLoss", "SparseCenterLoss"]
