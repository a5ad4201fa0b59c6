"""Registry behaviour and the safetensors + config.json checkpoint round trip."""

import json

import pytest
import torch

import ferkit
from ferkit.checkpoint import read_state_dict
from ferkit.errors import CheckpointError, FerkitError


def test_unknown_model_suggests_close_names():
    with pytest.raises(FerkitError, match="Did you mean 'baseline'"):
        ferkit.create_model("baselin")


def test_unknown_kwarg_lists_options():
    with pytest.raises(FerkitError, match="does not take colour"):
        ferkit.create_model("baseline_test", colour="red")


def test_label_names_and_num_classes_must_agree():
    model = ferkit.create_model("baseline_test", label_names=["happy", "Sadness", "neutral"])
    assert model.ferkit_config.label_names == ("happy", "sad", "neutral")
    assert model(torch.zeros(2, 3, 32, 32)).logits.shape == (2, 3)
    with pytest.raises(FerkitError, match="label_names has 3"):
        ferkit.create_model("baseline_test", num_classes=4, label_names=["happy", "sad", "fear"])


def test_grayscale_input_size_adapts_stats():
    model = ferkit.create_model("baseline_test", input_size=(1, 48, 48))
    cfg = model.ferkit_config.data
    assert cfg.input_size == (1, 48, 48)
    assert cfg.mean == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))
    assert model(torch.zeros(1, 1, 48, 48)).logits.shape == (1, 7)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = ferkit.create_model("baseline_test", num_classes=8).eval()
    x = torch.randn(3, 3, 32, 32)
    expected = model(x).logits
    ferkit.save_checkpoint(model, tmp_path / "ckpt", metrics={"acc": 0.5},
                           provenance={"dataset": "synthetic"})
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["architecture"] == "baseline_test"
    assert saved["num_classes"] == 8 and saved["label_names"][-1] == "contempt"
    assert saved["metrics"] == {"acc": 0.5}
    for path in (tmp_path / "ckpt", tmp_path / "ckpt" / "model.safetensors"):
        loaded = ferkit.load_checkpoint(path)
        assert not loaded.training
        torch.testing.assert_close(loaded(x).logits, expected, rtol=0, atol=0)
    again = ferkit.create_model(pretrained=tmp_path / "ckpt")
    assert again.ferkit_config == loaded.ferkit_config
    with pytest.raises(FerkitError, match="contradicts the checkpoint's 8 classes"):
        ferkit.create_model("baseline_test", pretrained=tmp_path / "ckpt", num_classes=7)


def test_half_precision_checkpoint_loads_as_fp32(tmp_path):
    model = ferkit.create_model("baseline_test").eval()
    ferkit.save_checkpoint(model, tmp_path, half=True)
    assert read_state_dict(tmp_path / "model.safetensors")["fc.weight"].dtype == torch.float16
    loaded = ferkit.load_checkpoint(tmp_path)
    assert loaded.fc.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.fc.weight, model.fc.weight, atol=1e-3, rtol=1e-3)


def test_missing_and_corrupt_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ferkit.load_checkpoint(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        ferkit.load_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    (tmp_path / "config.json").write_text(
        json.dumps({"architecture": "baseline_test", "label_names": ["happy", "sad"]}))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        ferkit.load_checkpoint(tmp_path)


def test_mismatched_weights_name_the_keys(tmp_path):
    small = ferkit.create_model("baseline_test", num_classes=7)
    ferkit.save_checkpoint(small, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["label_names"] = ["happy", "sad"]
    cfg["num_classes"] = 2
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"shape mismatches: fc.weight \(file \(7, 512\)"):
        ferkit.load_checkpoint(tmp_path)


def test_pth_loading_refuses_pickled_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_state_dict(path)
    good = tmp_path / "good.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}}, good)
    assert torch.equal(read_state_dict(good)["state_dict"]["w"], torch.ones(2))
