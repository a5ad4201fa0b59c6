"""Training losses, each a small ``nn.Module`` called with explicit tensors.

Convention: ``loss(features, labels)`` (or ``loss(heads)``) with the tensors named in the
docstring; where a loss reads a :class:`~ferkit.models.output.FEROutput`, a
``from_output(output, labels)`` helper picks the right fields.  Losses with learnable
centres are modules with parameters: give them to the optimiser with the model's.

Example:
    >>> import torch, ferkit
    >>> from ferkit.losses import AffinityLoss, PartitionLoss
    >>> model = ferkit.create_model("dan_test")
    >>> out = model(torch.randn(4, 3, 64, 64))
    >>> labels = torch.tensor([0, 1, 2, 3])
    >>> affinity = AffinityLoss(num_classes=7, feat_dim=model.num_features)
    >>> loss = (torch.nn.functional.cross_entropy(out.logits, labels)
    ...         + affinity.from_output(out, labels) + PartitionLoss().from_output(out))
"""

from ferkit.losses.center import CenterLoss
from ferkit.losses.dacl import SparseCenterLoss
from ferkit.losses.dan import AffinityLoss, PartitionLoss
from ferkit.losses.dsan import FeatureRecalibrationLoss

__all__ = [
    "AffinityLoss",
    "CenterLoss",
    "FeatureRecalibrationLoss",
    "PartitionLoss",
    "SparseCenterLoss",
]
