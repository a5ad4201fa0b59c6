"""The training loss: cross-entropy plus weighted auxiliary terms, resolved by name.

A recipe lists its terms (``losses: [{name: cross_entropy}, {name: affinity, weight: 1}]``).
Each auxiliary term is an ``nn.Module`` from :mod:`ferkit.losses`; an :class:`AuxLoss`
entry says which class implements a name and which fields of the model's
:class:`~ferkit.models.FEROutput` it reads, so the training step stays generic.  Classes
are looked up lazily: a recipe naming a loss this installation lacks fails with a message
saying so, and nothing else breaks.

Example:
    >>> import torch
    >>> from ferkit.training.losses import soft_cross_entropy
    >>> round(float(soft_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]))), 4)
    0.6931
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferkit.errors import FerkitError
from ferkit.models.output import FEROutput


def soft_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy against hard indices ``(B,)`` or distributions ``(B, K)`` (FER+)."""
    if target.ndim == 2:
        return F.cross_entropy(logits, target.to(logits.dtype), label_smoothing=label_smoothing)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def _full_precision(x: Tensor) -> Tensor:
    """Half/bfloat16 (mixed-precision) tensors to float32; float32/64 unchanged."""
    return x.float() if x.is_floating_point() and x.dtype not in (torch.float32,
                                                                   torch.float64) else x


def _embedding(out: FEROutput, target: Tensor) -> tuple[Tensor, ...]:
    if out.embedding is None:
        raise FerkitError("this loss needs the model's embedding, but the model returned none")
    return out.embedding, target


def _attention(name: str, *, with_embedding: bool) -> Callable[..., tuple[Tensor, ...]]:
    def inputs(out: FEROutput, target: Tensor) -> tuple[Tensor, ...]:
        if name not in out.attention:
            raise FerkitError(
                f"this loss reads attention[{name!r}], which the model does not produce "
                f"(it gives: {', '.join(out.attention) or 'none'})"
            )
        if with_embedding:
            return (*_embedding(out, target)[:1], out.attention[name], target)
        return (out.attention[name],)

    return inputs


def _recalibration(out: FEROutput, target: Tensor) -> tuple[Tensor, ...]:
    missing = [k for k in ("gfe_logits", "gfe_plain_logits") if k not in out.attention]
    if missing:
        raise FerkitError(f"the recalibration loss reads attention {missing}, which the model "
                          "does not produce (it is DSAN's loss)")
    return out.attention["gfe_logits"], out.attention["gfe_plain_logits"], target


@dataclass(frozen=True)
class AuxLoss:
    """How to build and call one auxiliary loss.

    Attributes:
        factory: ``"module:Class"`` (imported on first use) or a callable returning the
            module; called with the recipe's kwargs plus ``num_classes``/``feat_dim`` where
            its signature takes them.
        inputs: ``(FEROutput, target) -> args`` for the module's ``forward``.
    """

    factory: str | Callable[..., nn.Module]
    inputs: Callable[[FEROutput, Tensor], tuple[Tensor, ...]]


_AUX_LOSSES: dict[str, AuxLoss] = {
    # DAN (Wen et al. 2023): centres over the pooled backbone feature; heads' variance.
    "affinity": AuxLoss("ferkit.losses:AffinityLoss", _embedding),
    "partition": AuxLoss("ferkit.losses:PartitionLoss", _attention("heads", with_embedding=False)),
    # Wen et al. 2016 centre loss over the embedding (the DACL paper's baseline).
    "center": AuxLoss("ferkit.losses:CenterLoss", _embedding),
    # DACL: centre loss weighted per feature element by the attention network.
    "sparse_center": AuxLoss("ferkit.losses:SparseCenterLoss",
                             _attention("element_weights", with_embedding=True)),
    # DSAN: recalibration of global-feature elements.
    "recalibration": AuxLoss("ferkit.losses:FeatureRecalibrationLoss", _recalibration),
}


def register_aux_loss(name: str, loss: AuxLoss, *, replace: bool = False) -> None:
    """Make ``name`` usable in recipes' ``losses`` lists."""
    if name in _AUX_LOSSES and not replace:
        raise ValueError(f"auxiliary loss {name!r} is already registered")
    _AUX_LOSSES[name] = loss


def aux_loss_names() -> list[str]:
    return ["cross_entropy", *sorted(_AUX_LOSSES)]


def build_aux_loss(name: str, kwargs: dict[str, Any], *, num_classes: int,
                   feat_dim: int | None) -> tuple[nn.Module, AuxLoss]:
    """Instantiate the module behind ``name`` with the recipe's ``kwargs``."""
    if name not in _AUX_LOSSES:
        raise FerkitError(
            f"unknown loss {name!r}; available: {', '.join(aux_loss_names())}"
        )
    entry = _AUX_LOSSES[name]
    factory = entry.factory
    if isinstance(factory, str):
        module_name, _, cls_name = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as exc:
            raise FerkitError(
                f"loss {name!r} needs {module_name}.{cls_name}, which this ferkit installation "
                f"does not provide ({exc}); remove it from the recipe's losses or update ferkit"
            ) from exc
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    call_kwargs = dict(kwargs)
    for key, value in (("num_classes", num_classes), ("num_class", num_classes),
                       ("feat_dim", feat_dim)):
        if (key in params or (accepts_any and key != "num_class")) and value is not None:
            call_kwargs.setdefault(key, value)
    try:
        module = factory(**call_kwargs)
    except TypeError as exc:
        raise FerkitError(f"loss {name!r}: bad options {kwargs}: {exc}") from exc
    return module, entry


class LossComposition(nn.Module):
    """``sum(weight_i * term_i)``; ``forward`` returns the total and each weighted term."""

    def __init__(self, specs: list, *, num_classes: int, feat_dim: int | None) -> None:
        super().__init__()
        if not specs:
            raise FerkitError("a recipe needs at least one loss (e.g. cross_entropy)")
        self.names: list[str] = []
        self.weights: list[float] = []
        self.label_smoothing = 0.0
        self.aux = nn.ModuleDict()
        self._from_output: dict[str, bool] = {}  # name -> from_output takes labels
        self.param_settings: dict[str, dict[str, Any]] = {}
        for spec in specs:
            if spec.name in self.names:
                raise FerkitError(f"loss {spec.name!r} is listed twice in the recipe")
            self.names.append(spec.name)
            self.weights.append(float(spec.weight))
            if spec.name == "cross_entropy":
                unknown = set(spec.kwargs) - {"label_smoothing"}
                if unknown:
                    raise FerkitError(
                        f"cross_entropy takes only label_smoothing, not {sorted(unknown)}"
                    )
                self.label_smoothing = float(spec.kwargs.get("label_smoothing", 0.0))
                continue
            module, _ = build_aux_loss(spec.name, spec.kwargs, num_classes=num_classes,
                                       feat_dim=feat_dim)
            self.aux[spec.name] = module
            if callable(getattr(module, "from_output", None)):
                params = inspect.signature(module.from_output).parameters
                self._from_output[spec.name] = len(params) >= 2
            if spec.optimizer is not None:
                self.param_settings[spec.name] = dict(spec.optimizer)

    def forward(self, out: FEROutput, target: Tensor,
                hard_target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        terms: dict[str, Tensor] = {}
        for name, weight in zip(self.names, self.weights, strict=True):
            if name == "cross_entropy":
                value = soft_cross_entropy(_full_precision(out.logits), target,
                                           self.label_smoothing)
            elif name in self._from_output:
                # ferkit.losses classes know which FEROutput fields they read.
                needs_labels = self._from_output[name]
                module = self.aux[name]
                value = (module.from_output(out, hard_target) if needs_labels
                         else module.from_output(out))
            else:
                # Looked up by name (not stored): the module stays picklable for ddp_spawn.
                args = _AUX_LOSSES[name].inputs(out, hard_target)
                value = self.aux[name](*[_full_precision(a) for a in args])
                if not torch.is_tensor(value):
                    value = torch.as_tensor(value, dtype=torch.float32, device=target.device)
            terms[name] = weight * value
        total = torch.stack(list(terms.values())).sum()
        return total, terms
