"""DACL's SparseCenterLoss and DSAN's FeatureRecalibrationLoss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

import ferkit
from ferkit.errors import InputError
from ferkit.losses import FeatureRecalibrationLoss, SparseCenterLoss

# Three samples, two feature elements, three classes (class 2 absent from the batch).
FEATURES = [[1.0, 2.0], [3.0, 0.0], [0.0, -1.0]]
WEIGHTS = [[0.5, 1.0], [1.0, 0.25], [0.2, 0.8]]
TARGETS = [0, 0, 1]
CENTRES = [[1.0, 1.0], [0.0, 1.0], [5.0, 5.0]]


def _sparse_centre(centre_update="paper", size_average=True):
    loss = SparseCenterLoss(3, 2, centre_update=centre_update, size_average=size_average)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor(CENTRES))
    x = torch.tensor(FEATURES, requires_grad=True)
    a = torch.tensor(WEIGHTS, requires_grad=True)
    value = loss(x, a, torch.tensor(TARGETS))
    value.backward()
    return value, x.grad, a.grad, loss.centers.grad


def test_sparse_centre_loss_value_by_hand():
    # diffs x - c_y: (0, 1), (2, -1), (0, -2)
    # a * diff^2:    (0, 1), (4, 0.25), (0, 3.2)  -> sum 8.45;  / 2 / B(=3)
    value, *_ = _sparse_centre()
    assert value.item() == pytest.approx(8.45 / 6)
    value, *_ = _sparse_centre(size_average=False)
    assert value.item() == pytest.approx(8.45 / 2)


def test_sparse_centre_loss_gradients_equal_the_papers_updates():
    _, grad_x, grad_a, grad_c = _sparse_centre("paper")
    # dL/dx_i = a_i * (x_i - c_yi) / B
    torch.testing.assert_close(grad_x, torch.tensor([[0.0, 1.0], [2.0, -0.25], [0.0, -1.6]]) / 3)
    # dL/da_i = (x_i - c_yi)^2 / (2B)
    torch.testing.assert_close(grad_a, torch.tensor([[0.0, 1.0], [4.0, 1.0], [0.0, 4.0]]) / 6)
    # delta c_k = sum_{y_i = k} a_i * (c_k - x_i) / (1 + n_k):
    #   class 0 (n=2): -[(0, 1) + (2, -0.25)] / 3 = (-2/3, -0.25)
    #   class 1 (n=1): -(0, -1.6) / 2 = (0, 0.8);  class 2 (absent): 0
    torch.testing.assert_close(grad_c, torch.tensor([[-2 / 3, -0.25], [0.0, 0.8], [0.0, 0.0]]))


def test_sparse_centre_loss_matches_the_reference_centre_step_for_any_batch():
    # Random batch: autograd's centre gradient == the reference's hand-written backward.
    gen = torch.Generator().manual_seed(0)
    x, a = torch.randn(16, 8, generator=gen), torch.rand(16, 8, generator=gen)
    y = torch.randint(0, 5, (16,), generator=gen)
    loss = SparseCenterLoss(5, 8)
    loss(x, a, y).backward()
    diff = x - loss.centers.detach()[y]
    counts = torch.ones(5).scatter_add_(0, y, torch.ones(16))
    expected = torch.zeros(5, 8).index_add_(0, y, -a * diff) / counts[:, None]
    torch.testing.assert_close(loss.centers.grad, expected)


def test_sparse_centre_loss_true_gradient_mode():
    _, grad_x, _, grad_c = _sparse_centre("gradient")
    torch.testing.assert_close(grad_x, torch.tensor([[0.0, 1.0], [2.0, -0.25], [0.0, -1.6]]) / 3)
    # the loss's own gradient divides by B = 3, not by 1 + n_k
    torch.testing.assert_close(grad_c, torch.tensor([[-2.0, -0.75], [0.0, 1.6], [0.0, 0.0]]) / 3)


def test_sparse_centre_loss_rejects_bad_shapes():
    loss = SparseCenterLoss(3, 2)
    with pytest.raises(InputError, match=r"shape \(B, 2\).*features \(3, 4\)"):
        loss(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(InputError, match="targets must have shape"):
        loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="centre_update"):
        SparseCenterLoss(3, 2, centre_update="wen")


def test_sparse_centre_loss_trains_dacl_attention():
    torch.manual_seed(0)
    model = ferkit.create_model("dacl", input_size=(3, 32, 32)).train()
    out = model(torch.randn(2, 3, 32, 32))
    loss = SparseCenterLoss(7, 512)
    loss(out.embedding, out.attention["element_weights"], torch.tensor([1, 4])).backward()
    assert model.attention_heads.weight.grad.abs().sum() > 0
    assert model.fc.weight.grad is None  # the centre loss never touches the classifier
    assert loss.centers.grad[[1, 4]].abs().sum() > 0 and loss.centers.grad[0].abs().sum() == 0


def test_recalibration_loss_by_hand():
    loss = FeatureRecalibrationLoss(margin=0.1)
    plain = torch.zeros(2, 2, requires_grad=True)  # p = (0.5, 0.5)
    recal = torch.tensor([[math.log(3.0), 0.0]] * 2, requires_grad=True)  # p = (0.75, 0.25)
    targets = torch.tensor([0, 1])
    value = loss(recal, plain, targets)
    # sample 0: gain 0.75 - 0.5 = 0.25 >= 0.1 -> 0;  sample 1: gain -0.25 -> 0.1 + 0.25
    assert value.item() == pytest.approx(0.35 / 2)
    value.backward()
    # only sample 1 is active: d(-p_1)/dz = (p_0 p_1, -p_1 (1 - p_1)) = (0.1875, -0.1875), / B
    torch.testing.assert_close(recal.grad, torch.tensor([[0.0, 0.0], [0.09375, -0.09375]]))
    assert plain.grad is None  # the plain side is a fixed reference


def test_recalibration_loss_at_dsan_identity_start_equals_margin():
    torch.manual_seed(0)
    model = ferkit.create_model("dsan", input_size=(3, 64, 64)).train()
    out = model(torch.randn(2, 3, 64, 64))
    loss = FeatureRecalibrationLoss(margin=0.05)
    value = loss(out.attention["gfe_logits"], out.attention["gfe_plain_logits"],
                 torch.tensor([0, 6]))
    assert value.item() == pytest.approx(0.05, abs=1e-6)  # g' == g at initialisation
    value.backward()
    assert model.gfe.score[-1].weight.grad.abs().sum() > 0


def test_recalibration_loss_rejects_bad_input():
    with pytest.raises(InputError, match="same shape"):
        FeatureRecalibrationLoss()(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="margin"):
        FeatureRecalibrationLoss(margin=2.0)


def test_every_recipe_loss_reads_the_output_through_from_output_with_soft_targets():
    # One mechanism: the composition calls from_output(output, target) on every term; soft
    # targets (FER+) reach the centre losses as their most likely class, and half-precision
    # outputs are read in float32.
    from ferkit.losses import LOSSES
    from ferkit.models.output import FEROutput
    from ferkit.training.losses import LossComposition
    from ferkit.training.recipe import LossSpec

    assert {"affinity", "center", "cross_entropy", "partition", "recalibration",
            "sparse_center"} <= set(LOSSES.names())
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.5, 0.4]])
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 2.0, 1.0]])
    out = FEROutput(logits=logits.bfloat16(),
                    embedding=torch.tensor(FEATURES).bfloat16(),
                    attention={"element_weights": torch.tensor(WEIGHTS),
                               "gfe_logits": logits, "gfe_plain_logits": torch.zeros(3, 3)})
    criterion = LossComposition(
        [LossSpec(name="cross_entropy"), LossSpec(name="sparse_center", weight=0.5),
         LossSpec(name="recalibration", kwargs={"margin": 0.2})], num_classes=3, feat_dim=2)
    with torch.no_grad():
        criterion.terms["sparse_center"].centers.copy_(torch.tensor(CENTRES))
    total, terms = criterion(out, soft)
    expected_ce = -(soft * torch.log_softmax(logits.bfloat16().float(), dim=1)).sum(1).mean()
    assert terms["cross_entropy"].dtype == torch.float32
    assert terms["cross_entropy"].item() == pytest.approx(expected_ce.item(), rel=1e-6)
    # argmax of the soft targets = TARGETS: the hand-computed 8.45 / 6 of the test above.
    assert terms["sparse_center"].dtype == torch.float32  # bf16 embedding read in float32
    assert terms["sparse_center"].item() == pytest.approx(0.5 * 8.45 / 6)
    gain = (logits.softmax(1) - 1 / 3).gather(1, torch.tensor([[0], [0], [1]])).squeeze(1)
    assert terms["recalibration"].item() == pytest.approx((0.2 - gain).clamp(min=0).mean())
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()))
    with pytest.raises(InputError, match=r"attention\['element_weights'\] \(DACL's\)"):
        criterion.terms["sparse_center"].from_output(FEROutput(logits=logits), soft)
    with pytest.raises(InputError, match="reads attention \\['gfe_logits', 'gfe_plain_logits'\\]"):
        criterion.terms["recalibration"].from_output(FEROutput(logits=logits), soft)
