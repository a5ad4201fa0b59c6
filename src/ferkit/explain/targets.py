"""What an explanation explains: small callables that pick a scalar out of the logits.

As in pytorch-grad-cam, a target is any callable ``logits_row (K,) -> scalar tensor``;
:class:`ClassTarget` picks one output index, :class:`ExpressionTarget` names the class
(``"happy"``) and is resolved through ``model.ferkit_config.label_names``, so a caller
never needs to know a model's output order.  ``None`` means the top predicted class.

Example:
    >>> import torch
    >>> from ferkit.explain.targets import ExpressionTarget
    >>> target = ExpressionTarget("happiness").bind(("neutral", "happy", "sad"))
    >>> float(target(torch.tensor([0.1, 2.0, -1.0])))
    2.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from ferkit.errors import FerkitError
from ferkit.labels import canonical_name


@dataclass(frozen=True)
class ClassTarget:
    """The logit of output ``index`` (the gradient of a logit, not of a softmax, as in
    Grad-CAM's paper: softmax gradients mix in every other class)."""

    index: int

    def __call__(self, logits: Tensor) -> Tensor:
        return logits[..., self.index]


@dataclass(frozen=True)
class ExpressionTarget:
    """An expression by name; :meth:`bind` turns it into a :class:`ClassTarget`."""

    label: str

    def bind(self, label_names: Sequence[str]) -> ClassTarget:
        name = canonical_name(self.label)
        if name not in label_names:
            raise FerkitError(
                f"target {self.label!r} is not one of this model's classes "
                f"({', '.join(label_names)})"
            )
        return ClassTarget(list(label_names).index(name))

    def __call__(self, logits: Tensor) -> Tensor:
        raise FerkitError(
            f"ExpressionTarget({self.label!r}) must be bound to a model's label names first "
            "(explainers do this for you; by hand: target.bind(model.ferkit_config.label_names))"
        )


TargetLike = int | str | ExpressionTarget | Callable[[Tensor], Tensor] | None


def resolve_target(target: TargetLike, label_names: Sequence[str]) -> Callable | None:
    """``None`` stays ``None`` (top class); ints, names and ExpressionTargets become a
    :class:`ClassTarget`; any other callable is used as given."""
    if target is None:
        return None
    if isinstance(target, bool):
        raise FerkitError(f"target must be a class name, index or callable, not {target!r}")
    if isinstance(target, int):
        if not 0 <= target < len(label_names):
            raise FerkitError(
                f"target index {target} is out of range for {len(label_names)} classes "
                f"({', '.join(label_names)})"
            )
        return ClassTarget(target)
    if isinstance(target, str):
        target = ExpressionTarget(target)
    if isinstance(target, ExpressionTarget):
        return target.bind(label_names)
    if callable(target):
        return target
    raise FerkitError(f"target must be a class name, index or callable, not {target!r}")
