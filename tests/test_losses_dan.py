"""AffinityLoss, PartitionLoss and CenterLoss against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ferkit.errors import InputError
from ferkit.losses import AffinityLoss, CenterLoss, PartitionLoss
from ferkit.models.output import FEROutput

# Two classes in 2-D: centres (0, 0) and (2, 2); samples (1, 0) of class 0, (3, 3) of class 1.
CENTRES = [[0.0, 0.0], [2.0, 2.0]]
FEATURES = [[1.0, 0.0], [3.0, 3.0]]
LABELS = [0, 1]


def with_centres(loss):
    with torch.no_grad():
        loss.centers.copy_(torch.tensor(CENTRES))
    return loss


def test_affinity_loss_by_hand():
    loss = with_centres(AffinityLoss(num_classes=2, feat_dim=2))
    x = torch.tensor(FEATURES, requires_grad=True)
    # Unbiased variance of the centres per dimension: values 0 and 2 -> mean 1 ->
    # ((0-1)^2 + (2-1)^2) / (2-1) = 2; summed over the 2 dimensions: 4.
    # Squared distances to the own centre: 1^2 + 0^2 = 1 and 1^2 + 1^2 = 2.
    # loss = mean(1/4, 2/4) = 0.375
    value = loss(x, torch.tensor(LABELS))
    assert value.item() == pytest.approx(0.375)
    value.backward()
    # d/dx_i = 2 (x_i - c_{y_i}) / 4 / B(=2): (0.25, 0) and (0.25, 0.25)
    torch.testing.assert_close(x.grad, torch.tensor([[0.25, 0.0], [0.25, 0.25]]))


def test_affinity_loss_pools_a_feature_map_like_the_reference():
    loss = with_centres(AffinityLoss(num_classes=2, feat_dim=2))
    # 2x2 maps whose spatial means are FEATURES (+d and -d cancel out).
    base = torch.tensor(FEATURES)[:, :, None, None].expand(2, 2, 2, 2).clone()
    base[:, :, 0, 0] += 0.5
    base[:, :, 1, 1] -= 0.5
    assert loss(base, torch.tensor(LABELS)).item() == pytest.approx(0.375)
    out = FEROutput(logits=torch.zeros(2, 2), embedding=torch.tensor(FEATURES))
    assert loss.from_output(out, torch.tensor(LABELS)).item() == pytest.approx(0.375)


def test_affinity_loss_has_one_centre_per_class():
    loss = AffinityLoss(num_classes=7, feat_dim=512)
    assert loss.centers.shape == (7, 512)  # the reference kept 8 for 7-class RAF-DB
    with pytest.raises(InputError, match=r"labels must lie in \[0, 7\), got min 0 max 7"):
        loss(torch.randn(2, 512), torch.tensor([0, 7]))
    with pytest.raises(InputError, match="features have 256 dims"):
        loss(torch.randn(2, 256), torch.tensor([0, 1]))


def test_partition_loss_by_hand():
    # One sample, two heads, two channels.
    # Channel 0: head values 0 and ln 3 -> softmax (1/4, 3/4) -> log-softmax
    #   (ln 1/4, ln 3/4); their difference is ln 3, so the unbiased variance of two values
    #   is (ln 3)^2 / 2.
    # Channel 1: equal head values -> variance 0.
    # Mean over channels: (ln 3)^2 / 4; loss = log(1 + N / mean) with N = 2.
    heads = torch.tensor([[[0.0, 5.0], [math.log(3.0), 5.0]]])
    expected = math.log(1 + 2 / (math.log(3.0) ** 2 / 4))
    assert PartitionLoss(eps=0)(heads).item() == pytest.approx(expected, rel=1e-6)
    # The mean sits inside the log: averaging per-channel logs would give infinity here.
    # The reference passes heads already log-softmaxed: same value (log-softmax idempotent).
    normalised = torch.log_softmax(heads, dim=1)
    assert PartitionLoss(eps=0)(normalised).item() == pytest.approx(expected, rel=1e-6)


def test_partition_loss_edge_cases():
    identical = torch.ones(3, 4, 8)
    # var = 0: log(1 + 4 / eps) instead of infinity.
    assert PartitionLoss(eps=1e-8)(identical).item() == pytest.approx(math.log(1 + 4e8))
    single = PartitionLoss()(torch.randn(3, 1, 8, requires_grad=True))
    assert single.item() == 0.0
    heads = torch.randn(2, 4, 8, requires_grad=True)
    out = FEROutput(logits=torch.zeros(2, 7), attention={"heads": heads})
    value = PartitionLoss().from_output(out)
    value.backward()
    assert heads.grad.abs().sum() > 0
    with pytest.raises(InputError, match="attention heads"):
        PartitionLoss().from_output(FEROutput(logits=torch.zeros(2, 7)))
    with pytest.raises(InputError, match=r"\(B, N, C\)"):
        PartitionLoss()(torch.randn(2, 4))


def test_center_loss_by_hand():
    loss = with_centres(CenterLoss(num_classes=2, feat_dim=2))
    # 0.5 * squared distances 1 and 2 -> 0.5 and 1.0; mean over the batch: 0.75.
    value = loss(torch.tensor(FEATURES), torch.tensor(LABELS))
    assert value.item() == pytest.approx(0.75)
    value.backward()
    # d/dc_j = -sum_{i: y_i = j} (x_i - c_j) / B: (-0.5, 0) and (-0.5, -0.5)
    torch.testing.assert_close(loss.centers.grad, torch.tensor([[-0.5, 0.0], [-0.5, -0.5]]))
    with pytest.raises(InputError, match=r"labels must be \(2,\)"):
        loss(torch.tensor(FEATURES), torch.tensor([0, 1, 1]))


def test_center_loss_paper_update_is_wens_per_class_step():
    loss = with_centres(CenterLoss(num_classes=2, feat_dim=2, centre_update="paper"))
    x = torch.tensor([[1.0, 0.0], [3.0, 3.0], [1.0, 2.0]])
    value = loss(x, torch.tensor([0, 1, 0]))
    # Same value as the true gradient's loss: 0.5 * (1 + 2 + 5) / 3.
    assert value.item() == pytest.approx(4.0 / 3.0)
    value.backward()
    # Wen et al.: delta c_j = sum_{i: y_i = j} (c_j - x_i) / (1 + n_j):
    # class 0: ((0,0)-(1,0) + (0,0)-(1,2)) / 3 = (-2/3, -2/3); class 1: (-1, -1) / 2.
    torch.testing.assert_close(loss.centers.grad, torch.tensor([[-2 / 3, -2 / 3], [-0.5, -0.5]]))
    with pytest.raises(ValueError, match="centre_update"):
        CenterLoss(centre_update="wen")


def test_affinity_loss_with_more_centres_than_classes():
    # rafdb.py keeps AffinityLoss(num_class=8) for 7 classes: the extra centre only
    # enters the variance of the centres.
    loss = AffinityLoss(num_classes=2, feat_dim=2, num_centers=3)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [2.0, 2.0], [4.0, -2.0]]))
    # variance per dim: (0, 2, 4) -> 4, (0, 2, -2) -> 4: spread 8; distances 1 and 2.
    value = loss(torch.tensor(FEATURES), torch.tensor(LABELS))
    assert value.item() == pytest.approx((1 / 8 + 2 / 8) / 2)
    value.backward()
    assert loss.centers.grad[2].abs().sum() > 0  # pushed by the variance alone
    with pytest.raises(InputError, match=r"labels must lie in \[0, 2\)"):
        loss(torch.tensor(FEATURES), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="num_centers >= num_classes"):
        AffinityLoss(num_classes=3, feat_dim=2, num_centers=2)
