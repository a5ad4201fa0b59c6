"""Training losses, each a small ``nn.Module``, registered by name in :data:`LOSSES`.

Convention: ``loss(features, labels)`` (or ``loss(heads)``) with the tensors named in the
docstring, and ``from_output(output, target)``, which picks the right fields of a
:class:`~ferkit.models.output.FEROutput`: the one way the training loop calls every loss
a recipe names (:mod:`ferkit.losses.registry`).  Losses with learnable centres are modules
with parameters: give them to the optimiser with the model's.

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

from ferkit.losses._utils import class_indices
from ferkit.losses.center import CenterLoss
from ferkit.losses.cross_entropy import SoftCrossEntropyLoss, soft_cross_entropy
from ferkit.losses.dacl import SparseCenterLoss
from ferkit.losses.dan import AffinityLoss, PartitionLoss
from ferkit.losses.dsan import FeatureRecalibrationLoss
from ferkit.losses.registry import LOSSES, OutputLoss

__all__ = [
    "LOSSES",
    "AffinityLoss",
    "CenterLoss",
    "FeatureRecalibrationLoss",
    "OutputLoss",
    "PartitionLoss",
    "SoftCrossEntropyLoss",
    "SparseCenterLoss",
    "class_indices",
    "soft_cross_entropy",
]
