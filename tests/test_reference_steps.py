"""One DAN and one DACL training step through ferkit's training path equal the reference's.

ferkit trains with ``FERModule`` under Lightning: the recipe's optimiser and parameter
groups (``configure_optimizers``), its loss composition (``training_step``) and Lightning's
optimisation loop.  Each test runs two steps of that path in float64 from given weights
and batches, and runs the reference's training loop on a copy of the same weights and
batches, with the reference's update rule written out here by hand from its code
(yaoing/DAN rafdb.py, amirhfarzaneh/dacl main.py + loss.py; see docs/training.md for the
cited lines): its own loss formulas, its optimisers, its step order.  Parameters and
centres must agree within 1e-8.  (The networks' forward passes are checked against the
references separately: tests/test_models_dan.py, tests/test_models_more.py.)
"""

from __future__ import annotations

import copy
import sys

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import ferkit
from ferkit.labels import CANONICAL_INDEX, native_order
from ferkit.training.module import FERModule
from ferkit.training.recipe import load_recipe

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

STEPS = 2  # the second step exercises momentum buffers (and their absence for centres)


def _batches(shape: tuple[int, ...], labels: list[list[int]], seed: int):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(len(y), *shape, generator=generator, dtype=torch.float64),
             torch.tensor(y)) for y in labels]


def _ferkit_steps(recipe_name: str, model: torch.nn.Module, batches) -> FERModule:
    """``STEPS`` optimisation steps of ``recipe_name`` through FERModule + Lightning."""
    recipe = load_recipe(recipe_name, ["trainer.precision=64-true"])
    module = FERModule(recipe, model=model)
    module.initial_centres = {name: loss.centers.detach().clone().double()
                              for name, loss in module.criterion.terms.items()
                              if hasattr(loss, "centers")}
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    loader = DataLoader(TensorDataset(x, y), batch_size=len(batches[0][1]), shuffle=False)
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", devices=1,
                        precision=recipe.trainer.precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, deterministic=False)
    trainer.fit(module, train_dataloaders=loader)
    return module


def _model_targets(model: torch.nn.Module, canonical: torch.Tensor) -> torch.Tensor:
    """The reference's labels: the model's output index of each canonical class."""
    names = model.ferkit_config.label_names
    lookup = {CANONICAL_INDEX[n]: i for i, n in enumerate(names)}
    return torch.tensor([lookup[int(c)] for c in canonical])


def _assert_same(module: FERModule, reference: torch.nn.Module,
                 centres: dict[str, torch.Tensor]) -> None:
    moved = 0.0
    ours = dict(module.model.named_parameters())
    assert all(p.dtype == torch.float64 for p in ours.values())
    for name, param in reference.named_parameters():
        torch.testing.assert_close(ours[name].detach(), param.detach(), rtol=0, atol=1e-8,
                                   msg=name)
    for name, value in centres.items():
        mine = module.criterion.terms[name].centers.detach()
        torch.testing.assert_close(mine, value.detach(), rtol=0, atol=1e-8, msg=name)
        moved = max(moved, float((mine - module.initial_centres[name]).abs().max()))
    assert moved > 1e-3  # the centres did move


# ------------------------------------------------------------------------------- DAN

def _reference_affinity(feat: torch.Tensor, labels: torch.Tensor,
                        centres: torch.Tensor) -> torch.Tensor:
    """rafdb.py:88-105: pooled features, the expanded squared distance to every centre,
    masked to the own class, over the centres' summed variance, clamped, / batch."""
    x = feat.mean(dim=(2, 3))
    batch, num_class = x.shape[0], centres.shape[0]
    distmat = (x.pow(2).sum(dim=1, keepdim=True).expand(batch, num_class)
               + centres.pow(2).sum(dim=1, keepdim=True).expand(num_class, batch).t())
    distmat = distmat.addmm(x, centres.t(), beta=1, alpha=-2)
    mask = labels.unsqueeze(1).expand(batch, num_class).eq(
        torch.arange(num_class).expand(batch, num_class))
    dist = distmat * mask.to(distmat.dtype) / centres.var(dim=0).sum()
    return dist.clamp(min=1e-12, max=1e12).sum() / batch


def _reference_partition(heads: torch.Tensor) -> torch.Tensor:
    """rafdb.py:111-121 on the model's (already log-softmaxed) heads, eps rafdb.py:25."""
    num_head = heads.shape[1]
    return torch.log(1 + num_head / (heads.var(dim=1).mean() + sys.float_info.epsilon))


def test_dan_rafdb_step_equals_the_reference_loop():
    torch.manual_seed(0)
    # The reference's own label order (RAF-DB's), as imported weights would have it.
    model = ferkit.create_model("dan_test", num_head=4, label_names=native_order("rafdb"))
    reference = copy.deepcopy(model).double().train()
    batches = _batches((3, 64, 64), [[3, 0, 6, 1, 3, 2], [5, 4, 3, 0, 0, 6]], seed=1)
    module = _ferkit_steps("dan_rafdb", model, batches)

    # rafdb.py:175, :178-180: AffinityLoss's 8 centres join the model's parameters in one
    # SGD (lr 0.1, weight decay 1e-4, momentum 0.9).
    centres = module.initial_centres["affinity"].clone().requires_grad_()
    assert centres.shape[0] == 8
    optimizer = torch.optim.SGD([*reference.parameters(), centres], lr=0.1,
                                weight_decay=1e-4, momentum=0.9)
    for x, y in batches:  # rafdb.py:190-202
        targets = _model_targets(model, y)
        optimizer.zero_grad()
        out = reference(x)
        heads = F.log_softmax(out.attention["heads"], dim=1)  # networks/dan.py:34-35
        loss = (F.cross_entropy(out.logits, targets)
                + 1 * _reference_affinity(out.feature_map, targets, centres)
                + 1 * _reference_partition(heads))
        loss.backward()
        optimizer.step()
    _assert_same(module, reference, {"affinity": centres})


# ------------------------------------------------------------------------------ DACL

class _ReferenceSparseCentre(torch.autograd.Function):
    """loss.py:30-53: the value, and the hand-written backward: true gradients for the
    features and attention, ``sum_k -A (x - c) / (1 + n_k)`` for the centres, **not**
    multiplied by the incoming gradient (so lambda never reaches the centres)."""

    @staticmethod
    def forward(ctx, feature, attention, label, centers, batch_size):
        ctx.save_for_backward(feature, attention, label, centers, batch_size)
        diff = feature - centers.index_select(0, label)
        return (attention * diff.pow(2)).sum() / 2.0 / batch_size

    @staticmethod
    def backward(ctx, grad_output):
        feature, attention, label, centers, batch_size = ctx.saved_tensors
        diff = feature - centers.index_select(0, label)
        counts = centers.new_ones(centers.shape[0]).scatter_add(
            0, label, centers.new_ones(label.shape[0]))
        grad_centers = centers.new_zeros(centers.shape).scatter_add(
            0, label.unsqueeze(1).expand(feature.shape), -attention * diff) / counts.view(-1, 1)
        return (grad_output * attention * diff / batch_size,
                grad_output * diff.pow(2) / 2.0 / batch_size, None, grad_centers, None)


def test_dacl_rafdb_step_equals_the_reference_loop():
    torch.manual_seed(0)
    model = ferkit.create_model("dacl", input_size=(3, 32, 32), label_names=native_order("dacl"))
    reference = copy.deepcopy(model).double().train()
    # Repeated classes: the (1 + n_k) centre step differs from the batch mean there.
    batches = _batches((3, 32, 32), [[3, 3, 3, 0, 6, 1], [5, 4, 3, 0, 0, 6]], seed=2)
    module = _ferkit_steps("dacl_rafdb", model, batches)

    centres = module.initial_centres["sparse_center"].clone().requires_grad_()
    # main.py:116-119: SGD(model, 0.01, momentum 0.9, wd 5e-4); SGD(centres, alpha 0.5).
    optimizer = torch.optim.SGD(reference.parameters(), 0.01, momentum=0.9, weight_decay=5e-4)
    centre_optimizer = torch.optim.SGD([centres], 0.5)
    for x, y in batches:  # main.py:176-204
        targets = _model_targets(model, y)
        out = reference(x)
        feat, attention = out.embedding, out.attention["element_weights"]
        batch = torch.tensor([float(len(targets))], dtype=torch.float64)
        l_center = _ReferenceSparseCentre.apply(feat, attention, targets, centres, batch)
        l_total = F.cross_entropy(out.logits, targets) + 0.01 * l_center  # main.py:185
        optimizer.zero_grad()
        centre_optimizer.zero_grad()
        l_total.backward()
        optimizer.step()
        centre_optimizer.step()
    _assert_same(module, reference, {"sparse_center": centres})

