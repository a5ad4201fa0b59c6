"""The training loss: the weighted sum of the terms a recipe lists.

A recipe lists its terms (``losses: [{name: cross_entropy}, {name: affinity, weight: 1}]``).
Each name is looked up in :data:`ferkit.losses.LOSSES`, built with the recipe's kwargs (plus
``num_classes``/``feat_dim`` where its signature takes them) and called as
``loss.from_output(output, target)``: the loss itself says which fields of the model's
:class:`~ferkit.models.FEROutput` it reads, so the training step stays generic.

Example:
    >>> import torch
    >>> from ferkit.models.output import FEROutput
    >>> from ferkit.training.losses import LossComposition
    >>> from ferkit.training.recipe import LossSpec
    >>> loss = LossComposition([LossSpec(name="cross_entropy")], num_classes=2, feat_dim=None)
    >>> total, terms = loss(FEROutput(logits=torch.zeros(1, 2)), torch.tensor([[0.5, 0.5]]))
    >>> round(float(total), 4)
    0.6931
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ferkit.errors import FerkitError
from ferkit.losses import LOSSES, OutputLoss, class_indices, soft_cross_entropy
from ferkit.models.output import FEROutput
from ferkit.training.recipe import LossOptimizerSpec, LossSpec

__all__ = ["LossComposition", "build_loss", "soft_cross_entropy"]


def build_loss(spec: LossSpec, *, num_classes: int, feat_dim: int | None) -> nn.Module:
    """The module behind ``spec.name``, built with ``spec.kwargs``."""
    factory = LOSSES.get(spec.name)
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = dict(spec.kwargs)
    for key, value in (("num_classes", num_classes), ("num_class", num_classes),
                       ("feat_dim", feat_dim)):
        if (key in params or (accepts_any and key != "num_class")) and value is not None:
            kwargs.setdefault(key, value)
    try:
        module = factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise FerkitError(f"loss {spec.name!r}: bad options {spec.kwargs}: {exc}") from exc
    if not isinstance(module, OutputLoss):
        raise FerkitError(f"loss {spec.name!r} ({type(module).__name__}) has no "
                          "from_output(output, target) method, which training calls")
    return module


def _full_precision(x: Tensor) -> Tensor:
    """Half/bfloat16 (mixed-precision) tensors to float32; float32/64 unchanged."""
    return x.float() if x.is_floating_point() and x.dtype not in (torch.float32,
                                                                   torch.float64) else x


def _full_precision_output(out: FEROutput) -> FEROutput:
    """The losses read float32 (or float64) whatever precision the forward ran in."""
    cast = {f.name: _full_precision(v) for f in dataclasses.fields(out)
            if torch.is_tensor(v := getattr(out, f.name))}
    return dataclasses.replace(out, **cast, attention={
        k: _full_precision(v) for k, v in out.attention.items()})


class LossComposition(nn.Module):
    """``sum(weight_i * term_i)``; ``forward`` returns the total and each weighted term.

    Attributes:
        terms: the loss modules by recipe name (their parameters are the centres).
        names, weights: the recipe's order and weights.
        param_settings: recipe names -> the loss's own parameter group settings.
    """

    def __init__(self, specs: Sequence[LossSpec], *, num_classes: int,
                 feat_dim: int | None) -> None:
        super().__init__()
        if not specs:
            raise FerkitError("a recipe needs at least one loss (e.g. cross_entropy)")
        self.names: list[str] = []
        self.weights: list[float] = []
        self.terms = nn.ModuleDict()
        self.param_settings: dict[str, LossOptimizerSpec] = {}
        for spec in specs:
            if spec.name in self.names:
                raise FerkitError(f"loss {spec.name!r} is listed twice in the recipe")
            self.names.append(spec.name)
            self.weights.append(float(spec.weight))
            self.terms[spec.name] = build_loss(spec, num_classes=num_classes, feat_dim=feat_dim)
            if spec.optimizer is not None:
                self.param_settings[spec.name] = spec.optimizer

    def forward(self, out: FEROutput, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``target``: ``(B,)`` class indices or ``(B, K)`` distributions, model order."""
        out = _full_precision_output(out)
        terms: dict[str, Tensor] = {}
        for name, weight in zip(self.names, self.weights, strict=True):
            value = self.terms[name].from_output(out, target)
            if not torch.is_tensor(value):
                value = torch.as_tensor(value, dtype=torch.float32, device=target.device)
            terms[name] = weight * value
        total = torch.stack(list(terms.values())).sum()
        return total, terms


# ---------------------------------------------------------------- deprecated (one release)

@dataclass(frozen=True)
class AuxLoss:
    """Deprecated: register a loss class with ``from_output`` in :data:`ferkit.losses.LOSSES`.

    Attributes:
        factory: a callable returning the module, or ``"module:Class"``.
        inputs: ``(FEROutput, labels) -> args`` for the module's ``forward``.
    """

    factory: str | Callable[..., nn.Module]
    inputs: Callable[[FEROutput, Tensor], tuple[Tensor, ...]]


class _InputsLoss(nn.Module):
    """An :class:`AuxLoss` as a loss with ``from_output``."""

    def __init__(self, loss: nn.Module, inputs: Callable[..., tuple[Tensor, ...]]) -> None:
        super().__init__()
        self.loss = loss
        self.inputs = inputs

    def from_output(self, output: FEROutput, target: Tensor) -> Tensor:
        return self.loss(*self.inputs(output, class_indices(target)))


def register_aux_loss(name: str, loss: AuxLoss, *, replace: bool = False) -> None:
    """Deprecated: ``ferkit.losses.LOSSES.register(name, LossClass)`` with a
    ``from_output(output, target)`` method on the class.  ``replace`` is ignored: a
    registered name cannot be replaced."""
    warnings.warn("register_aux_loss/AuxLoss are deprecated: give the loss class a "
                  "from_output(output, target) method and register it with "
                  "ferkit.losses.LOSSES.register(name, LossClass)", DeprecationWarning,
                  stacklevel=2)
    factory = loss.factory
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise FerkitError(f"loss {name!r} needs {module_name}.{attr}, which this ferkit "
                              f"installation does not provide ({exc})") from exc

    def build(**kwargs: Any) -> nn.Module:
        return _InputsLoss(factory(**kwargs), loss.inputs)

    build.__signature__ = inspect.signature(factory)  # type: ignore[attr-defined]
    LOSSES.register(name, build)


def aux_loss_names() -> list[str]:
    """Deprecated: ``ferkit.losses.LOSSES.names()``."""
    warnings.warn("aux_loss_names() is deprecated: use ferkit.losses.LOSSES.names()",
                  DeprecationWarning, stacklevel=2)
    return LOSSES.names()
