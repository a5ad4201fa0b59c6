"""The losses a recipe can name, and the one way a loss reads a model's output.

Every training loss is an ``nn.Module`` with ``from_output(output, target)``: it picks the
:class:`~ferkit.models.output.FEROutput` fields it needs (logits, embedding, an attention
map) and returns the scalar loss.  ``target`` is what the batch holds in the model's class
order: ``(B,)`` class indices, or ``(B, K)`` class distributions for soft-label data (FER+);
losses that need indices take :func:`~ferkit.losses.class_indices` of it.

:data:`LOSSES` maps recipe names to the classes (or factories) that build them; the
training loop passes a loss's recipe ``kwargs`` plus ``num_classes``/``feat_dim`` where its
signature takes them.

New losses: ``LOSSES.register("name", LossClass)`` (or ``@LOSSES.decorator("name")`` on
the class), the class with a ``from_output`` method.

Example:
    >>> from ferkit.losses import LOSSES
    >>> LOSSES.get("partition").__name__
    'PartitionLoss'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from ferkit.models.output import FEROutput
from ferkit.registry import Registry


@runtime_checkable
class OutputLoss(Protocol):
    """A loss that reads what it needs from a model's output."""

    def from_output(self, output: FEROutput, target: Tensor) -> Tensor: ...


#: Recipe loss names -> the class (or factory) building the ``nn.Module``.
LOSSES: Registry[Callable[..., nn.Module]] = Registry(
    "loss", loaders=("ferkit.losses",),
    hint="New losses: ferkit.losses.LOSSES.register(name, LossClass), the class with a "
         "from_output(output, target) method.")
