"""``FERModule``: a ferkit model, its loss composition and optimiser as a LightningModule.

Datasets yield **canonical** class indices; the module maps them to the model's output
indices by name (``model.ferkit_config.label_names``), so a 7-class model trains on 8-class
data after the data module drops the classes the model lacks, and soft targets are
re-ordered the same way.

Example:
    >>> from ferkit.training import FERModule
    >>> from ferkit.training.recipe import load_recipe
    >>> recipe = load_recipe("fer2013_resnet18", overrides=["model.kwargs.backbone=resnet10t"])
    >>> module = FERModule(recipe)
    >>> module.model.ferkit_config.architecture
    'baseline'
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

import ferkit
from ferkit.errors import FerkitError
from ferkit.labels import CANONICAL, CANONICAL_INDEX
from ferkit.training.losses import LossComposition
from ferkit.training.recipe import ModelSpec, Recipe, recipe_from_dict


class NonFiniteLossError(FerkitError):
    """A loss term became NaN or infinite during training."""


def build_model(spec: ModelSpec) -> nn.Module:
    """The model a recipe's ``model`` section describes."""
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if spec.pretrained:
        return _pretrained_with_options(spec.name, spec.pretrained, kwargs)
    data = spec.data_overrides()
    # The input shape and statistics shape the network (its first layer's channels).
    model = ferkit.create_model(
        spec.name, num_classes=spec.num_classes, label_names=spec.label_names,
        input_size=data.pop("input_size", None), mean=data.pop("mean", None),
        std=data.pop("std", None), **kwargs,
    )
    if data:  # how faces are cropped: config only
        cfg = model.ferkit_config
        try:
            model.ferkit_config = cfg.replace(data=cfg.data.replace(**data))
        except ValueError as exc:
            raise FerkitError(f"recipe model section: {exc}") from exc
    return model


def _pretrained_with_options(name: str, pretrained: str, kwargs: dict[str, Any]) -> nn.Module:
    """A checkpoint's weights in its architecture rebuilt with the recipe's ``kwargs``.

    Options that change no weight's shape (DSAN's ``output_stride``, ``gfe_min_support``)
    turn a trained model into the start of a new one: fine-tuning the shipped default at a
    denser map, say.  Any option that changes a shape fails with the keys named."""
    model = ferkit.create_model(name, pretrained=pretrained)
    cfg = model.ferkit_config
    merged = {**cfg.model_kwargs, **kwargs}
    if merged == cfg.model_kwargs:
        return model
    rebuilt = ferkit.create_model(cfg.architecture, label_names=cfg.label_names,
                                  input_size=cfg.data.input_size, mean=cfg.data.mean,
                                  std=cfg.data.std, **merged)
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    changed = sorted(k for k in have.keys() | want.keys() if have.get(k) != want.get(k))
    if changed:
        raise FerkitError(f"recipe model.kwargs {kwargs} change the shapes of {pretrained}'s "
                          f"weights ({', '.join(changed[:4])}{' …' if len(changed) > 4 else ''}"
                          "), so they cannot start from it; drop the option or pretrained")
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    rebuilt.ferkit_config = cfg.replace(model_kwargs=merged, temperature=1.0, metrics={})
    return rebuilt


class FERModule(L.LightningModule):
    """Train/validate a ferkit model with the losses and optimiser of a recipe.

    Args:
        recipe: the resolved :class:`Recipe` or its :meth:`~Recipe.to_dict` form; saved as
            hyperparameters in the plain form, so a Lightning ``.ckpt`` alone can rebuild
            the module (``FERModule.load_from_checkpoint``).
        model: an already built model (tests, notebooks); by default built from the recipe.
    """

    def __init__(self, recipe: Recipe | Mapping[str, Any],
                 model: nn.Module | None = None) -> None:
        super().__init__()
        self.recipe: Recipe = recipe_from_dict(
            recipe if isinstance(recipe, Recipe) else dict(recipe))
        self.save_hyperparameters({"recipe": self.recipe.to_dict()})
        self.model = model if model is not None else build_model(self.recipe.model)
        cfg = self.model.ferkit_config
        self.label_names: tuple[str, ...] = tuple(cfg.label_names)
        num_classes = len(self.label_names)
        # canonical index -> output index (-1: class the model does not predict).
        lookup = torch.full((len(CANONICAL),), -1, dtype=torch.long)
        for out_idx, name in enumerate(self.label_names):
            lookup[CANONICAL_INDEX[name]] = out_idx
        self.register_buffer("canonical_to_output", lookup, persistent=False)
        self.register_buffer(
            "output_to_canonical",
            torch.tensor([CANONICAL_INDEX[n] for n in self.label_names]), persistent=False,
        )
        self.criterion = LossComposition(self.recipe.losses, num_classes=num_classes,
                                         feat_dim=_embedding_dim(self.model))
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")

    # ----------------------------------------------------------------- steps
    def setup(self, stage: str) -> None:
        # Before the optimisers exist; parameters keep their identity, only their layout changes.
        if self.recipe.trainer.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if self.recipe.trainer.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def forward(self, x: Tensor):
        return self.model(x)

    def _train_forward(self, x: Tensor):
        """The model's forward for training steps: compiled when ``trainer.compile``.

        The compiled wrapper shares the model's parameters and is kept out of the module
        tree (``__dict__``), so state dicts and checkpoints keep their keys.
        """
        if not self.recipe.trainer.compile:
            return self.model(x)
        compiled = self.__dict__.get("_compiled_model")
        if compiled is None:
            compiled = self.__dict__["_compiled_model"] = torch.compile(self.model)
        return compiled(x)

    def _targets(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Model-space targets: ``(loss_target, hard_index)`` from canonical labels."""
        if y.ndim == 2:  # soft labels over the canonical classes
            soft = y[:, self.output_to_canonical]
            soft = soft / soft.sum(dim=1, keepdim=True).clamp_min(1e-12)
            return soft, soft.argmax(dim=1)
        mapped = self.canonical_to_output[y]
        if bool((mapped < 0).any()):
            bad = sorted({CANONICAL[i] for i in y[mapped < 0].tolist()})
            raise FerkitError(
                f"batch holds classes {bad} that the model does not predict "
                f"({', '.join(self.label_names)}); filter the dataset to the model's classes"
            )
        return mapped, mapped

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        target, hard = self._targets(y)
        out = self._train_forward(x)
        loss, terms = self.criterion(out, target)
        if self.recipe.trainer.detect_nonfinite:
            self._check_finite(loss, terms)
        batch_size = x.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        if len(terms) > 1:
            for name, value in terms.items():
                self.log(f"train/{name}", value, batch_size=batch_size)
        acc = (out.logits.argmax(dim=1) == hard).float().mean()
        self.log("train/acc", acc, prog_bar=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        target, hard = self._targets(y)
        out = self.model(x)
        loss, _ = self.criterion(out, target)
        preds = out.logits.argmax(dim=1)
        self.val_acc.update(preds, hard)
        self.val_f1.update(preds, hard)
        self.log("val/loss", loss, batch_size=x.shape[0], sync_dist=True)
        self.log("val/acc", self.val_acc, prog_bar=True, batch_size=x.shape[0])
        self.log("val/f1_macro", self.val_f1, batch_size=x.shape[0])

    def _check_finite(self, loss: Tensor, terms: dict[str, Tensor]) -> None:
        # One device sync per step: cheap next to a backward pass, and a NaN caught at
        # its first step names the term that produced it.
        if bool(torch.isfinite(loss)):
            return
        bad = [f"{n}={float(v.detach())}" for n, v in terms.items()
               if not bool(torch.isfinite(v))]
        raise NonFiniteLossError(
            f"training stopped: non-finite loss at global step {self.global_step} "
            f"(epoch {self.current_epoch}): "
            f"{', '.join(bad) or f'total={float(loss.detach())}'}. Lower optimizer.lr, set "
            "trainer.gradient_clip_val, or check the data for broken images"
        )

    # ------------------------------------------------------------ optimiser
    def configure_optimizers(self):
        opt = self.recipe.optimizer
        main_params = list(self.model.parameters())
        groups: list[dict[str, Any]] = []
        scheduled: list[bool] = []
        shared_aux: list[nn.Parameter] = []
        for name, module in self.criterion.terms.items():
            params = [p for p in module.parameters() if p.requires_grad]
            if not params:
                continue
            own = self.criterion.param_settings.get(name)
            if own is None:
                shared_aux.extend(params)  # DAN: centres share the main optimiser
                continue
            scheduled.append(own.scheduled)
            groups.append({"params": params, "name": f"loss/{name}", **own.group_settings()})
        groups.insert(0, {"params": main_params + shared_aux, "name": "main"})
        scheduled.insert(0, True)
        if opt.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum,
                                        weight_decay=opt.weight_decay, nesterov=opt.nesterov)
        elif opt.name == "adam":
            optimizer = torch.optim.Adam(groups, lr=opt.lr, weight_decay=opt.weight_decay,
                                         betas=tuple(opt.betas))
        else:
            optimizer = torch.optim.AdamW(groups, lr=opt.lr, weight_decay=opt.weight_decay,
                                          betas=tuple(opt.betas))
        schedule = _lr_lambda(self.recipe)
        lambdas = [schedule if s else _constant for s in scheduled]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # -------------------------------------------------- exact resume (RNG)
    def on_train_epoch_start(self) -> None:
        # Every epoch's randomness (augmentation, dropout) is a function of (seed, epoch,
        # rank) alone, so a run resumed from an epoch checkpoint replays the same stream.
        seed = self.recipe.trainer.seed + 1000 * self.current_epoch + 7 * self.global_rank
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)


def _constant(epoch: int) -> float:
    return 1.0


def _lr_lambda(recipe: Recipe):
    sched = recipe.scheduler
    epochs = max(recipe.trainer.epochs, 1)

    def factor(epoch: int) -> float:
        if sched.warmup_epochs and epoch < sched.warmup_epochs:
            return 0.1 + 0.9 * epoch / sched.warmup_epochs
        if sched.name == "step":
            return sched.gamma ** (epoch // sched.step_size)
        if sched.name == "exponential":
            return sched.gamma ** epoch
        if sched.name == "cosine":
            span = max(epochs - sched.warmup_epochs, 1)
            t = min(max(epoch - sched.warmup_epochs, 0) / span, 1.0)
            return sched.min_lr_ratio + (1 - sched.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        return 1.0

    return factor


@torch.no_grad()
def _embedding_dim(model: nn.Module) -> int | None:
    """The width of ``FEROutput.embedding``, from one forward pass on zeros."""
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(2, *model.ferkit_config.data.input_size))
    finally:
        model.train(was_training)
    return None if out.embedding is None else int(out.embedding.shape[-1])
