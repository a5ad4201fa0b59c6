"""DACL, Deep-Emotion and DSAN: parameter counts, behaviour, and reference checkpoint import.

The reference-shaped state dicts here are built from the references' key names and
shapes (DACL: torchvision ResNet-18 names + ``attention.*``/``attention_heads.*``, saved
through DataParallel inside ``{"model_state_dict": …}``; Deep-Emotion: its plain
``state_dict``), never from our own model, and outputs are compared with an independent
functional re-computation of the reference's forward.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18

import ferkit
from ferkit.errors import CheckpointError, FerkitError
from ferkit.models.convert import import_upstream
from ferkit.models.dsan import sparsemax

DACL_PARAMS_7 = 103_042_311
DEEP_EMOTION_PARAMS_7 = 66_877
DSAN_PARAMS_7 = 11_322_578


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def dacl_full():
    """The full 103M-parameter DACL, built once for the module."""
    torch.manual_seed(0)
    return ferkit.create_model("dacl")


@pytest.fixture(scope="module")
def dsan_model():
    torch.manual_seed(0)
    return ferkit.create_model("dsan")


# ----------------------------------------------------------------------------- DACL


def test_dacl_classifier_keeps_pytorchs_default_init():
    # The reference's init loop (models/resnet.py:167-175) runs before fc exists (:178), and
    # main.py:100 replaces fc by a fresh nn.Linear: PyTorch's default, |w| <= 1/sqrt(512),
    # a non-zero uniform bias.  The attention layers get Kaiming + zero bias.
    torch.manual_seed(0)
    model = ferkit.create_model("dacl", input_size=(3, 32, 32))
    bound = 1 / 512 ** 0.5
    fc_weight, fc_bias = model.fc.weight.detach(), model.fc.bias.detach()
    assert fc_weight.abs().max() <= bound and fc_weight.std() > 0.5 * bound / 3**0.5
    assert fc_bias.abs().max() <= bound and fc_bias.abs().min() > 0
    assert model.attention[0].bias.abs().max() == 0
    heads_std = float(model.attention_heads.weight.detach().std())
    assert heads_std == pytest.approx((2 / 64) ** 0.5, rel=0.1)


def test_dacl_full_size_matches_reference(dacl_full):
    assert n_params(dacl_full) == DACL_PARAMS_7
    assert dacl_full.attention[0].in_features == 512 * 7 * 7
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = dacl_full.eval()(x)
    weights = out.attention["element_weights"]
    assert out.logits.shape == (2, 7) and out.embedding.shape == (2, 512)
    assert out.feature_map.shape == (2, 512, 7, 7)
    assert weights.shape == (2, 512) and bool(((weights > 0) & (weights < 1)).all())


@pytest.mark.slow
def test_dacl_full_size_trains(dacl_full):
    dacl_full.train()
    out = dacl_full(torch.randn(2, 3, 224, 224))
    (out.logits.sum() + out.attention["element_weights"].sum()).backward()
    assert dacl_full.features[0].weight.grad.abs().sum() > 0
    assert dacl_full.attention[0].weight.grad.abs().sum() > 0
    dacl_full.zero_grad(set_to_none=True)


@pytest.fixture(scope="module")
def dacl_small():
    """DACL at 64x64 input: the same layers, a 2x2 map, a 2048-wide attention input."""
    torch.manual_seed(0)
    return ferkit.create_model("dacl", input_size=(3, 64, 64))


def test_dacl_small_trains_attention_through_its_weights(dacl_small):
    model = dacl_small.train()
    out = model(torch.randn(2, 3, 64, 64))
    assert n_params(model) == DACL_PARAMS_7 - 512 * (7 * 7 - 2 * 2) * 3584
    F.cross_entropy(out.logits, torch.tensor([0, 3])).backward(retain_graph=True)
    assert model.features[0].weight.grad.abs().sum() > 0
    assert model.attention[0].weight.grad is None  # logits never see the attention
    out.attention["element_weights"].sum().backward()
    assert model.attention[0].weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_dacl_attention_weights_the_loss_not_the_logits(dacl_small):
    model = dacl_small.eval()
    x = torch.randn(2, 3, 64, 64)
    before = model(x)
    # element weight = second entry of a softmax over each (ignore, keep) logit pair
    pairs = model.attention_heads(model.attention(before.feature_map.flatten(1))).view(2, 512, 2)
    expected = torch.sigmoid(pairs[..., 1] - pairs[..., 0])
    torch.testing.assert_close(before.attention["element_weights"], expected)
    with torch.no_grad():
        model.attention_heads.bias.add_(3.0)
        model.attention[0].weight.mul_(-2.0)
        after = model(x)
        model.attention_heads.bias.sub_(3.0)
        model.attention[0].weight.div_(-2.0)
    torch.testing.assert_close(after.logits, before.logits, rtol=0, atol=0)
    assert not torch.allclose(after.attention["element_weights"],
                              before.attention["element_weights"])
    # logits = fc(avgpool(map)), exactly
    torch.testing.assert_close(before.logits, model.fc(before.feature_map.mean(dim=(2, 3))))


def test_dacl_wrong_input_size_is_explained(dacl_small):
    model = dacl_small.eval()
    with pytest.raises(FerkitError, match="built for a 2x2 feature map"):
        model(torch.zeros(1, 3, 96, 96))


def _dacl_reference_state(num_classes: int, input_side: int, seed: int = 0) -> dict:
    """A state dict shaped like amirhfarzaneh/dacl's ResNet (torchvision names)."""
    gen = torch.Generator().manual_seed(seed)
    tv = resnet18(num_classes=num_classes)
    state = {}
    for key, value in tv.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=gen) * 0.05
    side = {224: 7, 64: 2}[input_side]
    widths = [(512 * side * side, 3584), (3584, 512), (512, 64)]
    for (fan_in, fan_out), (lin, bn) in zip(widths, [(0, 1), (3, 4), (6, 7)], strict=True):
        state[f"attention.{lin}.weight"] = torch.randn(fan_out, fan_in, generator=gen) * 0.02
        state[f"attention.{lin}.bias"] = torch.randn(fan_out, generator=gen) * 0.02
        state[f"attention.{bn}.weight"] = torch.rand(fan_out, generator=gen) + 0.5
        state[f"attention.{bn}.bias"] = torch.randn(fan_out, generator=gen) * 0.1
        state[f"attention.{bn}.running_mean"] = torch.randn(fan_out, generator=gen) * 0.1
        state[f"attention.{bn}.running_var"] = torch.rand(fan_out, generator=gen) + 0.5
        state[f"attention.{bn}.num_batches_tracked"] = torch.tensor(7)
    state["attention_heads.weight"] = torch.randn(1024, 64, generator=gen) * 0.2
    state["attention_heads.bias"] = torch.randn(1024, generator=gen) * 0.2
    return state


def _bn_eval(x, state, prefix):
    return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                        state[f"{prefix}.weight"], state[f"{prefix}.bias"], training=False)


def test_dacl_imports_reference_checkpoint_with_identical_outputs(tmp_path):
    # 64x64 input keeps the attention MLP small; the key layout is the reference's.
    state = _dacl_reference_state(7, 64)
    path = tmp_path / "best_valid_acc.pth"
    torch.save({"epoch": 12, "model_state_dict": {f"module.{k}": v for k, v in state.items()}},
               path)
    model = import_upstream(path, format="dacl_rafdb", input_size=(3, 64, 64))
    assert not model.training
    assert model.ferkit_config.label_names[0] == "surprise"  # train/00 = RAF-DB's 1
    # The reference's evaluation preprocessing travels with the weights (main.py:59-60, 82-83).
    assert model.ferkit_config.data.crop_pct == 0.875
    assert model.ferkit_config.data.mean == (0.5752, 0.4495, 0.4012)
    assert model.ferkit_config.provenance["imported_from"] == "best_valid_acc.pth"

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    out = model(x)
    reference_trunk = resnet18(num_classes=7)
    reference_trunk.load_state_dict({k: v for k, v in state.items()
                                     if not k.startswith("attention")})
    torch.testing.assert_close(out.logits, reference_trunk.eval()(x))

    hidden = out.feature_map.flatten(1)
    for lin, bn, act in [(0, 1, F.relu), (3, 4, F.relu), (6, 7, torch.tanh)]:
        hidden = F.linear(hidden, state[f"attention.{lin}.weight"], state[f"attention.{lin}.bias"])
        hidden = act(_bn_eval(hidden, state, f"attention.{bn}"))
    pairs = F.linear(hidden, state["attention_heads.weight"], state["attention_heads.bias"])
    expected = pairs.reshape(-1, 512, 2).softmax(dim=-1)[:, :, 1]
    torch.testing.assert_close(out.attention["element_weights"], expected)


def test_dacl_broken_reference_checkpoint_names_the_keys(tmp_path):
    state = _dacl_reference_state(7, 64)
    del state["attention.3.weight"]
    state["attention_extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    with pytest.raises(CheckpointError) as err:
        import_upstream(path, format="dacl_rafdb", input_size=(3, 64, 64))
    assert "attention.3.weight" in str(err.value) and "attention_extra.weight" in str(err.value)
    assert "broken.pth" in str(err.value)


def test_dacl_reference_checkpoint_for_wrong_input_size_reports_shapes(tmp_path):
    path = tmp_path / "ref224.pth"
    state = _dacl_reference_state(7, 64)
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"attention.0.weight \(file \(3584, 2048\)"):
        import_upstream(path, format="dacl_rafdb", input_size=(3, 96, 96))


# ----------------------------------------------------------------------- Deep-Emotion

_DEEP_EMOTION_SHAPES = {
    "conv1.weight": (10, 1, 3, 3), "conv1.bias": (10,),
    "conv2.weight": (10, 10, 3, 3), "conv2.bias": (10,),
    "conv3.weight": (10, 10, 3, 3), "conv3.bias": (10,),
    "conv4.weight": (10, 10, 3, 3), "conv4.bias": (10,),
    "norm.weight": (10,), "norm.bias": (10,), "norm.running_mean": (10,),
    "norm.running_var": (10,), "norm.num_batches_tracked": (),
    "fc1.weight": (50, 810), "fc1.bias": (50,), "fc2.weight": (7, 50), "fc2.bias": (7,),
    "localization.0.weight": (8, 1, 7, 7), "localization.0.bias": (8,),
    "localization.3.weight": (10, 8, 5, 5), "localization.3.bias": (10,),
    "fc_loc.0.weight": (32, 640), "fc_loc.0.bias": (32,),
    "fc_loc.2.weight": (6, 32), "fc_loc.2.bias": (6,),
}


def _deep_emotion_reference_state(seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in _DEEP_EMOTION_SHAPES.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var") or key == "norm.weight":
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
    # a mild, non-identity warp so the STN path is exercised
    state["fc_loc.2.bias"] = torch.tensor([0.9, 0.1, 0.05, -0.1, 1.1, 0.0])
    return state


def _deep_emotion_reference_forward(s: dict, x: torch.Tensor) -> torch.Tensor:
    """The reference's forward without its dropout (eval semantics), in functional ops."""
    xs = F.relu(F.max_pool2d(F.conv2d(x, s["localization.0.weight"], s["localization.0.bias"]),
                             2, 2))
    xs = F.relu(F.max_pool2d(F.conv2d(xs, s["localization.3.weight"], s["localization.3.bias"]),
                             2, 2))
    theta = F.linear(F.relu(F.linear(xs.view(-1, 640), s["fc_loc.0.weight"], s["fc_loc.0.bias"])),
                     s["fc_loc.2.weight"], s["fc_loc.2.bias"]).view(-1, 2, 3)
    grid = F.affine_grid(theta, list(x.size()), align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False)
    out = F.relu(F.conv2d(out, s["conv1.weight"], s["conv1.bias"]))
    out = F.relu(F.max_pool2d(F.conv2d(out, s["conv2.weight"], s["conv2.bias"]), 2, 2))
    out = F.relu(F.conv2d(out, s["conv3.weight"], s["conv3.bias"]))
    out = _bn_eval(F.conv2d(out, s["conv4.weight"], s["conv4.bias"]), s, "norm")
    out = F.relu(F.max_pool2d(out, 2, 2))
    out = F.relu(F.linear(out.view(-1, 810), s["fc1.weight"], s["fc1.bias"]))
    return F.linear(out, s["fc2.weight"], s["fc2.bias"])


def test_deep_emotion_matches_reference_parameter_count_and_keys():
    model = ferkit.create_model("deep_emotion")
    assert n_params(model) == DEEP_EMOTION_PARAMS_7
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == _DEEP_EMOTION_SHAPES
    assert model.ferkit_config.data.input_size == (1, 48, 48)
    eight = ferkit.create_model("deep_emotion", num_classes=8)
    assert n_params(eight) == DEEP_EMOTION_PARAMS_7 + 51


def test_deep_emotion_starts_with_identity_warp_and_trains():
    torch.manual_seed(0)
    model = ferkit.create_model("deep_emotion").train()
    x = torch.randn(4, 1, 48, 48)
    out = model(x)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(4, 2, 3)
    torch.testing.assert_close(out.attention["theta"], identity, rtol=0, atol=0)
    torch.testing.assert_close(out.attention["warped"], x, rtol=0, atol=1e-4)
    assert out.logits.shape == (4, 7) and out.embedding.shape == (4, 50)
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    # theta's last layer starts at zero weight but receives gradient: the STN learns
    assert model.fc_loc[2].weight.grad.abs().sum() > 0


def test_deep_emotion_eval_is_deterministic_train_is_not():
    torch.manual_seed(0)
    model = ferkit.create_model("deep_emotion")
    x = torch.randn(3, 1, 48, 48)
    model.train()
    assert not torch.equal(model(x).logits, model(x).logits)  # dropout active
    model.eval()
    first = model(x).logits
    torch.testing.assert_close(model(x).logits, first, rtol=0, atol=0)


def test_deep_emotion_rejects_other_inputs():
    with pytest.raises(FerkitError, match="fixed to 1x48x48"):
        ferkit.create_model("deep_emotion", input_size=(3, 48, 48))
    with pytest.raises(FerkitError, match="fixed to 1x48x48"):
        ferkit.create_model("deep_emotion", input_size=(1, 64, 64))
    model = ferkit.create_model("deep_emotion").eval()
    with pytest.raises(FerkitError, match=r"got \(1, 3, 48, 48\)"):
        model(torch.zeros(1, 3, 48, 48))


def test_deep_emotion_imports_reference_state_dict_with_identical_outputs(tmp_path):
    state = _deep_emotion_reference_state()
    path = tmp_path / "deep_emotion-100-128-0.005.pt"
    torch.save(state, path)
    model = import_upstream(path, format="deep_emotion_fer2013")
    assert model.ferkit_config.label_names[0] == "anger"  # the CSV's emotion 0
    x = torch.randn(3, 1, 48, 48, generator=torch.Generator().manual_seed(5))
    out = model(x)
    expected = _deep_emotion_reference_forward(state, x)
    torch.testing.assert_close(out.logits, expected)
    assert not torch.allclose(out.attention["warped"], x, atol=1e-3)  # the STN did warp
    # a DataParallel save inside a wrapper imports the same
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "dp.pt")
    wrapped = import_upstream(tmp_path / "dp.pt", "deep_emotion",
                              label_names=ferkit.labels.native_order("fer2013"))
    torch.testing.assert_close(wrapped(x).logits, expected)


def test_deep_emotion_broken_state_dict_names_the_keys(tmp_path):
    state = _deep_emotion_reference_state()
    del state["fc_loc.0.bias"]
    state["fc3.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"missing 1 keys: fc_loc.0.bias.*unexpected 1 "
                                              r"keys: fc3.weight"):
        import_upstream(tmp_path / "broken.pt", format="deep_emotion_fer2013")


# ------------------------------------------------------------------------------- DSAN


def test_sparsemax_values_and_gradient():
    # z = (0.5, 0.3, -1): support {0, 1}, tau = (0.8 - 1) / 2 = -0.1 -> (0.6, 0.4, 0)
    z = torch.tensor([[0.5, 0.3, -1.0], [1.0, 1.0, 1.0]], requires_grad=True)
    p = sparsemax(z)
    torch.testing.assert_close(p, torch.tensor([[0.6, 0.4, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    # Jacobian on the support S: I - 1 1^T / |S|; zero outside
    (p[0] * torch.tensor([1.0, 0.0, 5.0])).sum().backward()
    torch.testing.assert_close(z.grad[0], torch.tensor([0.5, -0.5, 0.0]))
    assert torch.equal(sparsemax(torch.tensor([3.0, 1.0, 0.0])), torch.tensor([1.0, 0.0, 0.0]))


def test_dsan_parameter_count_and_streams(dsan_model):
    assert n_params(dsan_model) == DSAN_PARAMS_7
    model = dsan_model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(x)
    weights, maps = out.attention["gfe_weights"], out.attention["mff_maps"]
    assert weights.shape == (2, 512) and maps.shape == (2, 4, 7, 7)
    # Identity start: uniform sparsemax weights, recalibrated == plain global feature.
    torch.testing.assert_close(weights, torch.full((2, 512), 1 / 512))
    torch.testing.assert_close(out.attention["gfe_logits"], out.attention["gfe_plain_logits"])
    torch.testing.assert_close(out.embedding[:, :512], out.feature_map.mean(dim=(2, 3)))
    assert bool(((maps > 0) & (maps < 1)).all())
    mff_logits = model.mff_fc(out.embedding[:, 512:])
    torch.testing.assert_close(out.logits, (out.attention["gfe_logits"] + mff_logits) / 2)


def test_dsan_sparse_attention_zeroes_elements_once_trained(dsan_model):
    model = dsan_model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        model.gfe.score[-1].weight.normal_(std=1.0)
        out = model(torch.randn(2, 3, 64, 64))
        model.gfe.score[-1].weight.zero_()
    weights = out.attention["gfe_weights"]
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    zero_fraction = (weights == 0).float().mean().item()
    assert zero_fraction > 0.5, zero_fraction
    plain = out.feature_map.mean(dim=(2, 3))
    torch.testing.assert_close(out.embedding[:, :512], plain * weights * 512)


def test_dsan_trains(dsan_model):
    model = dsan_model.train()
    out = model(torch.randn(2, 3, 64, 64))
    F.cross_entropy(out.logits, torch.tensor([1, 2])).backward()
    for module in (model.features[0], model.gfe.score[-1], model.mff.score, model.mff_fc):
        assert module.weight.grad.abs().sum() > 0
    # The zero-initialised last layer (identity start) blocks gradient to the first layer
    # for the first step only; after one update it flows.
    assert model.gfe.score[0].weight.grad.abs().sum() == 0
    with torch.no_grad():
        model.gfe.score[-1].weight.add_(-1e-2 * model.gfe.score[-1].weight.grad.sign())
    model.zero_grad(set_to_none=True)
    out = model(torch.randn(2, 3, 64, 64))
    F.cross_entropy(out.logits, torch.tensor([1, 2])).backward()
    assert model.gfe.score[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.gfe.score[-1].weight.zero_()
    model.zero_grad(set_to_none=True)


def test_dsan_without_stem_pool_keeps_twice_the_resolution(tmp_path, dsan_model):
    # FER2013's 48x48 faces: a 3x3 final map instead of 2x2, same weights and key names.
    gray48 = {"input_size": (1, 48, 48), "mean": (0.5,), "std": (0.5,)}
    small = ferkit.create_model("dsan", stem_pool=False, **gray48).eval()
    assert small.state_dict().keys() == dsan_model.state_dict().keys()
    x = torch.randn(2, 1, 48, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = small(x)
        pooled = ferkit.create_model("dsan", **gray48).eval()
        pooled.load_state_dict(small.state_dict())
        assert pooled(x).feature_map.shape == (2, 512, 2, 2)
    assert out.feature_map.shape == (2, 512, 3, 3)
    assert out.attention["mff_maps"].shape == (2, 4, 3, 3)
    # The option travels with the checkpoint: reloading rebuilds the pool-free trunk.
    ferkit.save_checkpoint(small, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(ferkit.load_checkpoint(tmp_path)(x).logits, out.logits,
                                   rtol=0, atol=0)


def test_dsan_checkpoint_round_trip(tmp_path, dsan_model):
    model = dsan_model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
    ferkit.save_checkpoint(model, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(ferkit.load_checkpoint(tmp_path)(x).logits, expected,
                                   rtol=0, atol=0)


# ------------------------------------------------------------------------ all three


@pytest.mark.parametrize("name,kwargs", [("dacl", {"input_size": (3, 32, 32)}),
                                         ("deep_emotion", {}),
                                         ("dsan", {"input_size": (3, 64, 64)})])
def test_common_model_interface(name, kwargs):
    torch.manual_seed(0)
    model = ferkit.create_model(name, **kwargs).eval()
    x = torch.randn(2, *model.ferkit_config.data.input_size)
    with torch.no_grad():
        out = model(x)
        feature_map = model.forward_features(x)
        torch.testing.assert_close(feature_map, out.feature_map)
        torch.testing.assert_close(model.forward_head(feature_map), out.logits)
        torch.testing.assert_close(model.forward_head(feature_map, pre_logits=True),
                                   out.embedding)
    captured = []
    handle = model.default_cam_layer().register_forward_hook(
        lambda _m, _i, output: captured.append(output))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert captured and captured[0].shape[0] == 2 and captured[0].ndim == 4
    model.reset_classifier(3)
    with torch.no_grad():
        assert model(x).logits.shape == (2, 3)


def test_registered_with_reference_and_data_config():
    names = ferkit.list_models()
    assert {"dacl", "deep_emotion", "dsan"} <= set(names)
    from ferkit.models import get_model_entry

    assert get_model_entry("dacl").checkpoint_filter is not None
    assert get_model_entry("deep_emotion").data.input_size == (1, 48, 48)
    assert get_model_entry("dsan").data.mean == (0.485, 0.456, 0.406)
    assert "no public code" in get_model_entry("dsan").reference


@pytest.mark.parametrize("name", ["dacl", "dsan"])
def test_backbone_weights_load_msceleb_layout_once(name, tmp_path):
    """backbone_weights loads a torchvision-keyed ResNet-18 (the MS-Celeb-1M release's
    ``{"state_dict": …}`` layout, its own fc ignored) into the trunk, and never travels in
    config.json: the saved model loads after the file is gone."""
    torch.manual_seed(3)
    source_net = resnet18(num_classes=10).eval()
    source = tmp_path / "resnet18_msceleb.pth"
    torch.save({"state_dict": source_net.state_dict()}, source)
    kwargs = {"input_size": (3, 32, 32)} if name == "dacl" else {}
    model = ferkit.create_model(name, backbone_weights=source, **kwargs).eval()
    x = torch.randn(1, 3, 64, 64) if name == "dsan" else torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(source_net.children())[:-2])(x)
        torch.testing.assert_close(model.forward_features(x), expected)
    cfg = model.ferkit_config
    assert "backbone_weights" not in cfg.model_kwargs
    assert cfg.provenance["backbone_weights"] == "resnet18_msceleb.pth"
    ferkit.save_checkpoint(model, tmp_path / "ckpt")
    source.unlink()
    loaded = ferkit.load_checkpoint(tmp_path / "ckpt")
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_features(x), expected)
    assert loaded.ferkit_config.provenance["backbone_weights"] == "resnet18_msceleb.pth"


def test_backbone_weights_of_the_wrong_network_fail_clearly(tmp_path):
    path = tmp_path / "not_resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"not_resnet18.pth.*missing.*bn1.weight"):
        ferkit.create_model("dsan", backbone_weights=path)
