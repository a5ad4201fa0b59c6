"""DAN / dan_convnext: parameter counts, the reference's maths and checkpoints, MS-Celeb init."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torchvision.models import resnet18

import ferkit
from ferkit.errors import CheckpointError, FerkitError
from ferkit.losses import AffinityLoss, PartitionLoss
from ferkit.models.backbones import load_resnet18_trunk_weights, resnet18_trunk
from ferkit.models.convert import import_upstream
from ferkit.models.dan import DAN, checkpoint_filter

TRUNK_CHILD = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3",
               "7": "layer4"}


def head_params(c: int) -> int:
    """One cross-attention head at width c, counted by hand from the paper's layer list."""
    h, r = c // 2, c // 16
    conv1x1 = c * h + h + 2 * h                      # conv + bias, BN weight + bias
    expansions = (9 + 3 + 3) * h * c + 3 * (c + 2 * c)  # 3x3, 1x3, 3x1 kernels; biases; BNs
    mlp = (c * r + r) + 2 * r + (r * c + c)           # Linear, BN1d, Linear
    return conv1x1 + expansions + mlp


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial weights *and* BN statistics, so eval-mode comparisons mean something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            if name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=gen) * 0.1)


def reference_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our state dict under yaoing/DAN's key names (``cat_head{i}.`` instead of ``heads.{i}.``)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("heads."):
            _, index, rest = key.split(".", 2)
            key = f"cat_head{index}.{rest}"
        out[key] = value.clone()
    return out


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, num_head: int) -> torch.Tensor:
    """The reference network in eval mode, written out with functional ops on its key names."""
    trunk = resnet18()
    trunk.load_state_dict(
        {f"{TRUNK_CHILD[k.split('.')[1]]}.{k.split('.', 2)[2]}": v for k, v in sd.items()
         if k.startswith("features.")} | {k: v for k, v in resnet18().state_dict().items()
                                          if k.startswith("fc.")})
    trunk.eval()
    f = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))
    f = trunk.layer4(trunk.layer3(trunk.layer2(trunk.layer1(f))))

    def bn(y, p):
        return F.batch_norm(y, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"],
                            sd[p + "bias"], False, 0.0, 1e-5)

    def conv_bn(y, p, pad):
        return bn(F.conv2d(y, sd[p + "0.weight"], sd[p + "0.bias"], padding=pad), p + "1.")

    heads = []
    for i in range(num_head):
        p = f"cat_head{i}."
        y = conv_bn(f, p + "sa.conv1x1.", 0)
        y = F.relu(conv_bn(y, p + "sa.conv_3x3.", 1) + conv_bn(y, p + "sa.conv_1x3.", (0, 1))
                   + conv_bn(y, p + "sa.conv_3x1.", (1, 0)))
        g = (f * y.sum(dim=1, keepdim=True)).mean(dim=(2, 3))
        a = p + "ca.attention."
        w = F.relu(bn(F.linear(g, sd[a + "0.weight"], sd[a + "0.bias"]), a + "1."))
        w = torch.sigmoid(F.linear(w, sd[a + "3.weight"], sd[a + "3.bias"]))
        heads.append(g * w)
    fused = F.log_softmax(torch.stack(heads, 1), dim=1).sum(1)
    return bn(F.linear(fused, sd["fc.weight"], sd["fc.bias"]), "bn.")


@pytest.fixture(scope="module")
def dan_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = ferkit.create_model("dan")
    randomise(model)
    return model.eval()


def test_dan_has_the_reference_parameter_count():
    model = ferkit.create_model("dan", num_classes=7, num_head=4)
    trunk = 11_689_512 - (512 * 1000 + 1000)  # torchvision resnet18 without its fc
    assert head_params(512) == 2_135_904
    assert trunk + 4 * head_params(512) + (512 * 7 + 7) + 2 * 7 == 19_723_733
    assert sum(p.numel() for p in model.parameters()) == 19_723_733
    eight = ferkit.create_model("dan", num_classes=8, num_head=2)
    assert sum(p.numel() for p in eight.parameters()) == trunk + 2 * 2_135_904 + 512 * 8 + 8 + 16


def test_dan_convnext_heads_scale_with_width():
    model = ferkit.create_model("dan_convnext")
    assert model.num_features == 768
    trunk = sum(p.numel() for p in model.features.parameters())
    assert trunk == 27_818_592  # timm convnext_tiny without its classifier head (norm + fc)
    assert sum(p.numel() for p in model.parameters()) == (
        trunk + 4 * head_params(768) + 768 * 7 + 7 + 2 * 7) == 47_029_173
    assert model.heads[0].sa.conv1x1[0].out_channels == 384
    assert model.heads[0].ca.attention[0].out_features == 48
    out = model.eval()(torch.randn(1, 3, 32, 32))
    assert out.attention["heads"].shape == (1, 4, 768) and torch.isfinite(out.logits).all()
    assert out.feature_map.shape == (1, 768, 1, 1)
    assert model.default_cam_layer() is model.features.body.stages[3]


def test_dan_matches_the_reference_forward(dan_model):
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = dan_model(x)
        expected = reference_forward(reference_state(dan_model), x, num_head=4)
    assert ours.logits.abs().max() > 0.1  # the comparison is not between zeros
    torch.testing.assert_close(ours.logits, expected, rtol=1e-4, atol=1e-4)


def test_dan_output_fields(dan_model):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = dan_model(x)
        again = dan_model(x)
        alone = dan_model(x[:1])
    torch.testing.assert_close(out.logits, again.logits, rtol=0, atol=0)
    torch.testing.assert_close(alone.logits, out.logits[:1], rtol=1e-5, atol=1e-5)
    assert out.feature_map.shape == (2, 512, 2, 2)
    torch.testing.assert_close(out.embedding, out.feature_map.mean(dim=(2, 3)))
    heads, spatial, channel = (out.attention[k] for k in ("heads", "spatial", "channel"))
    assert heads.shape == (2, 4, 512) and spatial.shape == (2, 4, 2, 2)
    assert channel.shape == (2, 4, 512)
    assert channel.min() > 0 and channel.max() < 1 and spatial.min() >= 0
    # A head's output is the spatially attended map, pooled, times its channel weights.
    expected0 = (out.feature_map * spatial[:, :1]).mean(dim=(2, 3)) * channel[:, 0]
    torch.testing.assert_close(heads[:, 0], expected0, rtol=1e-5, atol=1e-6)
    fused = dan_model.forward_head(out.feature_map, pre_logits=True)
    torch.testing.assert_close(fused, F.log_softmax(heads, dim=1).sum(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dan_model.forward_head(out.feature_map), out.logits)
    assert dan_model.default_cam_layer() is dan_model.features[7]


def test_dan_trains_on_cpu_with_its_losses():
    torch.manual_seed(0)
    model = ferkit.create_model("dan").train()
    affinity, partition = AffinityLoss(7, 512), PartitionLoss()
    x, labels = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 6])
    out = model(x)
    assert torch.isfinite(out.logits).all()
    loss = (F.cross_entropy(out.logits, labels) + affinity.from_output(out, labels)
            + partition.from_output(out))
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    for name in ("heads.0.sa.conv_3x3.0.weight", "heads.3.ca.attention.3.weight",
                 "features.0.weight", "fc.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert affinity.centers.grad.abs().sum() > 0


def test_single_head_skips_the_log_softmax():
    torch.manual_seed(0)
    model = ferkit.create_model("dan_test", num_head=1).eval()
    out = model(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(model.fuse(out.attention["heads"]), out.attention["heads"][:, 0])


def test_dan_test_variant_and_reset_classifier():
    torch.manual_seed(0)
    model = ferkit.create_model("dan_test")
    assert "dan_test" in ferkit.list_models(include_test=True)
    assert "dan_test" not in ferkit.list_models()
    out = model(torch.randn(2, 3, 64, 64))
    out.logits.sum().backward()
    assert model.heads[1].sa.conv1x1[0].weight.grad.abs().sum() > 0
    # Every parameter is used (timm's unused classifier head.norm is dropped): DDP-safe.
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.reset_classifier(3)
    assert model.eval()(torch.randn(1, 3, 64, 64)).logits.shape == (1, 3)


def test_dan_rejects_bad_options():
    with pytest.raises(FerkitError, match="num_head"):
        ferkit.create_model("dan", num_head=0)
    with pytest.raises(FerkitError, match="does not take"):
        ferkit.create_model("dan", bogus=1)


@pytest.fixture(scope="module")
def reference_file(dan_model, tmp_path_factory):
    """A checkpoint laid out as yaoing/DAN's training scripts save it."""
    path = tmp_path_factory.mktemp("ref") / "rafdb_epoch21_acc0.897_bacc0.8275.pth"
    torch.save({"iter": 21, "model_state_dict": reference_state(dan_model),
                "optimizer_state_dict": {}}, path)
    return path


def test_import_reference_checkpoint(dan_model, reference_file):
    model = import_upstream(reference_file, format="dan_rafdb")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, dan_model(x).logits, rtol=0, atol=0)
    cfg = model.ferkit_config
    assert cfg.provenance["imported_from"] == reference_file.name
    assert cfg.provenance["upstream_format"] == "dan_rafdb"
    # rafdb.py's labels: the list file's 1..7 minus one = surprise, fear, …, neutral.
    assert cfg.label_names == ("surprise", "fear", "disgust", "happy", "sad", "anger",
                               "neutral")
    assert cfg.architecture == "dan" and cfg.model_kwargs["num_head"] == 4
    assert not model.training


def test_import_without_label_order_warns_and_formats_are_checked(dan_model, reference_file):
    with pytest.warns(UserWarning, match="without format= or label_names=.*format='dan_rafdb'"):
        plain = import_upstream(reference_file, "dan")
    assert plain.ferkit_config.label_names[0] == "neutral"  # canonical: mislabelled
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = import_upstream(reference_file, "dan", label_names=[
            "surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"])
    assert named.ferkit_config.label_names[0] == "surprise"
    with pytest.raises(FerkitError, match="unknown upstream format 'dan_raf'. Did you mean "
                                          "'dan_rafdb'"):
        import_upstream(reference_file, format="dan_raf")
    with pytest.raises(FerkitError, match="format 'dan_rafdb' is a dan checkpoint, but "
                                          "architecture 'dacl'"):
        import_upstream(reference_file, "dacl", format="dan_rafdb")
    with pytest.raises(FerkitError, match="fixes the label order"):
        import_upstream(reference_file, format="dan_rafdb", label_names=list(
            ferkit.labels.SEVEN))
    with pytest.raises(FerkitError, match="has 7 classes, not num_classes=8"):
        import_upstream(reference_file, format="dan_rafdb", num_classes=8)
    with pytest.raises(CheckpointError, match=r"fc\.weight \(file \(7, 512\) vs model "
                                              r"\(8, 512\)"):
        import_upstream(reference_file, format="dan_affectnet8")


def test_upstream_formats_name_each_references_order():
    from ferkit.models.convert import UPSTREAM_FORMATS

    assert UPSTREAM_FORMATS["dan_affectnet8"].label_names == ferkit.labels.CANONICAL
    assert UPSTREAM_FORMATS["dan_affectnet7"].label_names == ferkit.labels.SEVEN
    assert UPSTREAM_FORMATS["deep_emotion_fer2013"].label_names == (
        "anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    for name, fmt in UPSTREAM_FORMATS.items():
        assert ferkit.models.registry.get_model_entry(fmt.architecture).checkpoint_filter, name


def test_checkpoint_filter_layouts(dan_model):
    ours = dan_model.state_dict()
    ref = reference_state(dan_model)
    for raw in ({"model_state_dict": ref}, {"state_dict": ref}, ref,
                {"model_state_dict": {"module." + k: v for k, v in ref.items()}}):
        filtered = checkpoint_filter(raw)
        assert filtered.keys() == ours.keys()
        assert filtered["heads.3.sa.conv_1x3.1.running_var"] is ref[
            "cat_head3.sa.conv_1x3.1.running_var"]


def test_import_broken_reference_checkpoint_names_the_key(dan_model, tmp_path):
    state = reference_state(dan_model)
    del state["cat_head2.ca.attention.3.weight"]
    state["fc.weight"] = torch.zeros(8, 512)
    path = tmp_path / "broken.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        import_upstream(path, format="dan_rafdb")
    assert "missing 1 keys: heads.2.ca.attention.3.weight" in str(info.value)
    assert "fc.weight (file (8, 512) vs model (7, 512))" in str(info.value)

    state = reference_state(dan_model)
    state.update({k.replace("cat_head0", "cat_head4"): v for k, v in state.items()
                  if k.startswith("cat_head0.")})
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"unexpected \d+ keys: heads\.4\."):
        import_upstream(path, format="dan_rafdb")  # a 5-head file needs num_head=5


def msceleb_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = resnet18(num_classes=12)  # the face-ID classifier: a different fc, ignored
    randomise(net, seed)
    return net.state_dict()


def test_msceleb_weights_initialise_the_trunk(tmp_path):
    state = msceleb_state()
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save({"epoch": 30, "state_dict": state}, path)
    model = ferkit.create_model("dan", backbone_weights=str(path))
    torch.testing.assert_close(model.features[0].weight, state["conv1.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.features[7][1].bn2.running_var,
                               state["layer4.1.bn2.running_var"], rtol=0, atol=0)
    cfg = model.ferkit_config
    assert "backbone_weights" not in cfg.model_kwargs
    assert cfg.provenance["backbone_weights"] == "resnet18_msceleb.pth"  # the name only
    # The saved checkpoint does not need the MS-Celeb file any more.
    saved = ferkit.save_checkpoint(model, tmp_path / "ckpt")
    path.unlink()
    loaded = ferkit.load_checkpoint(saved)
    torch.testing.assert_close(loaded.features[0].weight, state["conv1.weight"], rtol=0, atol=0)


def test_msceleb_loader_layouts_and_errors():
    state = msceleb_state(1)
    old_save = {"module." + k: v for k, v in state.items() if "num_batches_tracked" not in k}
    trunk = load_resnet18_trunk_weights(resnet18_trunk(), old_save)
    torch.testing.assert_close(trunk[6][0].downsample[0].weight,
                               state["layer3.0.downsample.0.weight"], rtol=0, atol=0)

    broken = dict(state)
    del broken["layer4.1.conv2.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys 1: layer4\.1\.conv2\.weight"):
        load_resnet18_trunk_weights(resnet18_trunk(), {"state_dict": broken})
    with pytest.raises(CheckpointError, match=r"conv1\.weight \(file \(64, 3, 7, 7\) vs model "
                                              r"\(64, 1, 7, 7\)\)"):
        load_resnet18_trunk_weights(resnet18_trunk(in_chans=1), state)
    with pytest.raises(CheckpointError, match=r"unexpected keys 1: layer5\.weight"):
        load_resnet18_trunk_weights(resnet18_trunk(), state | {"layer5.weight": torch.zeros(1)})
    with pytest.raises(FerkitError, match="does not apply"):
        DAN(backbone="test_convnext", backbone_weights="x.pth")
