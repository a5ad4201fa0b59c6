"""DSAN's options for the next default model: a 6x6 map for 48 px faces, and GFE-AN's
bounded sparsemax input, which cannot collapse onto a couple of elements."""

from __future__ import annotations

import torch

import ferkit
from ferkit.models.dsan import SparseElementAttention

GRAY48 = {"input_size": (1, 48, 48), "mean": (0.5,), "std": (0.5,)}


def test_stem_options_set_the_final_map_and_keep_the_state_dict():
    x = torch.randn(2, 1, 48, 48)
    sizes = {}
    for name, kwargs in (("default", {}), ("no pool", {"stem_pool": False}),
                         ("full res", {"stem_pool": False, "stem_stride": 1}),
                         ("os16", {"output_stride": 16}), ("os8", {"output_stride": 8})):
        model = ferkit.create_model("dsan", **GRAY48, **kwargs).eval()
        with torch.no_grad():
            sizes[name] = tuple(model(x).feature_map.shape[-2:])
        if name == "default":
            keys = {k: v.shape for k, v in model.state_dict().items()}
        else:  # same weights, so the shipped checkpoint format is unchanged
            assert {k: v.shape for k, v in model.state_dict().items()} == keys
    assert sizes == {"default": (2, 2), "no pool": (3, 3), "full res": (6, 6),
                     "os16": (3, 3), "os8": (6, 6)}


def test_dilated_trunk_is_the_strided_trunk_sampled_densely():
    # output_stride 8 swaps layer3/4's strides for dilation: the same weights compute the
    # same function, evaluated at 4x the positions, so every 4th cell is the 2x2 model's map.
    # This is why the shipped weights are a fine start for the 6x6 model.
    torch.manual_seed(0)
    strided = ferkit.create_model("dsan", **GRAY48).eval()
    dilated = ferkit.create_model("dsan", **GRAY48, output_stride=8).eval()
    for module in strided.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    dilated.load_state_dict(strided.state_dict())
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        coarse = strided(x).feature_map
        dense = dilated(x).feature_map
    assert coarse.shape[-2:] == (2, 2) and dense.shape[-2:] == (6, 6)
    torch.testing.assert_close(dense[..., ::4, ::4], coarse, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(dense[..., 1::4, 1::4], coarse, atol=1e-2)  # new cells differ


def _support_after_pushing_one_element(min_support: int) -> float:
    """Train the attention alone to put all weight on element 0 (the pull that collapsed
    the shipped model's GFE-AN); return the median support afterwards."""
    torch.manual_seed(0)
    block = SparseElementAttention(512, 16, min_support=min_support)
    features = torch.randn(32, 512).relu()
    optimiser = torch.optim.Adam(block.parameters(), lr=0.05)
    for _ in range(40):
        weights = block(features)
        loss = -weights[:, 0].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    block.eval()
    with torch.no_grad():
        return float((block(features) > 0).sum(dim=1).float().median())


def test_bounded_scores_start_uniform_and_resist_collapse():
    block = SparseElementAttention(512, 64, min_support=32).eval()
    weights = block(torch.randn(8, 512).relu())
    assert torch.allclose(weights, torch.full_like(weights, 1 / 512))
    assert _support_after_pushing_one_element(min_support=0) <= 2
    assert _support_after_pushing_one_element(min_support=32) >= 32


def test_dsan_with_bounded_gfe_trains_a_step():
    model = ferkit.create_model("dsan", **GRAY48, gfe_min_support=32,
                                stem_pool=False, stem_stride=1)
    out = model(torch.randn(4, 1, 48, 48))
    assert out.attention["gfe_weights"].shape == (4, 512)
    out.logits.sum().backward()
    assert model.gfe.score[-1].weight.grad.abs().sum() > 0


def test_compiled_training_keeps_the_checkpoint_keys():
    from ferkit.training import FERModule
    from ferkit.training.recipe import load_recipe

    recipe = load_recipe("fer2013_dsan", overrides=["trainer.compile=true"]).to_dict()
    module = FERModule(recipe)
    before = set(module.state_dict())
    module.__dict__["_compiled_model"] = torch.compile(module.model)  # what a step creates
    assert set(module.state_dict()) == before and set(module.model.state_dict()) == {
        k.removeprefix("model.") for k in before if k.startswith("model.")}
