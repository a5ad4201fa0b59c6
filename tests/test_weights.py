"""The weights layer: shipped weights by architecture.tag name, their typed, checksummed
WeightsConfig, the public factory over names and paths, and one config_of for models."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

import ferkit
from ferkit.config import WeightsConfig, config_of
from ferkit.errors import CheckpointError, ConfigError, FerkitError
from ferkit.models import FERModel, list_models
from ferkit.weights import (
    DEFAULT_NAME,
    WEIGHTS,
    load_checkpoint,
    publish_weights,
    read_weights_config,
    shipped_weights_dir,
)
from ferkit.weights.shipped import verify_weights


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_shipped_weights_are_listed_by_architecture_tag():
    assert ferkit.list_models(pretrained=True) == ["dsan.fer2013"]
    assert ferkit.list_models("dsan*", pretrained=True) == ["dsan.fer2013"]
    assert ferkit.list_models("dan*", pretrained=True) == []
    assert "dsan" in ferkit.list_models() and "dsan.fer2013" not in ferkit.list_models()
    assert DEFAULT_NAME == "dsan.fer2013" and "dsan.fer2013" in WEIGHTS


def test_shipped_weights_config_is_typed_and_matches_the_file():
    directory = shipped_weights_dir("dsan.fer2013")
    card = read_weights_config(directory)
    assert (card.name, card.architecture, card.tag) == ("dsan.fer2013", "dsan", "fer2013")
    assert "research use" in card.licence and card.dataset.startswith("FER2013")
    assert card.recipe == "fer2013_dsan" and card.card == "docs/model-card.md"
    config = json.loads((directory / "config.json").read_text())
    assert card.metrics["fer2013_privatetest_accuracy"] == \
        config["metrics"]["fer2013_privatetest_accuracy"]
    assert config["architecture"] == card.architecture
    verify_weights(directory)  # the shipped file is what weights.json says


def test_create_model_by_weights_name_loads_them():
    by_name = ferkit.create_model("dsan.fer2013")
    assert not by_name.training and by_name.ferkit_config.architecture == "dsan"
    assert _same_weights(by_name, ferkit.create_model("default"))
    assert _same_weights(by_name, ferkit.create_model("dsan", pretrained=True))
    assert _same_weights(by_name, load_checkpoint("dsan.fer2013"))
    fresh = ferkit.create_model("dsan")  # the architecture alone: fresh weights
    assert fresh.training and not _same_weights(by_name, fresh)


def test_the_old_name_still_loads_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="'fer2013_dsan' is now 'dsan.fer2013'"):
        old = ferkit.create_model("fer2013_dsan")
    with pytest.warns(DeprecationWarning):
        assert shipped_weights_dir("fer2013_dsan") == shipped_weights_dir("dsan.fer2013")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names never warn
        new = ferkit.create_model("dsan.fer2013")
        ferkit.create_model("default")
    assert _same_weights(old, new)


def test_unknown_names_and_conflicts_are_one_line_errors():
    with pytest.raises(FerkitError, match=r"unknown model 'dsan\.fer2031'\. Did you mean "
                                          r"'dsan\.fer2013'"):
        ferkit.create_model("dsan.fer2031")
    with pytest.raises(FerkitError, match="'dan' is an architecture, not trained weights: "
                                          "ferkit ships weights only for dsan.fer2013"):
        ferkit.create_model("dan", pretrained=True)
    with pytest.raises(FerkitError, match="num_classes=8 contradicts the checkpoint's 7"):
        ferkit.create_model("dsan.fer2013", num_classes=8)
    with pytest.raises(FerkitError, match="drop_rate cannot change trained weights"):
        ferkit.create_model("dsan.fer2013", drop_rate=0.5)
    with pytest.raises(FerkitError, match="not an architecture, so pretrained= cannot apply"):
        ferkit.create_model("dsan.fer2013", pretrained="default")
    with pytest.raises(FerkitError, match="load trained ones with ferkit.create_model"):
        from ferkit.models import create_model as create_architecture

        create_architecture("dsan", pretrained="default")


@pytest.fixture
def published(tmp_path):
    """A copy of the shipped weights folder, to damage."""
    target = tmp_path / "published"
    shutil.copytree(shipped_weights_dir("default"), target)
    return target


def test_a_damaged_weights_file_fails_its_checksum_in_one_line(published):
    weights = published / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in a tensor: it would load silently without the check
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(published)
    message = str(err.value)
    assert "\n" not in message and "does not match its published checksum" in message
    assert "reinstall ferkit" in message


def test_publish_weights_writes_a_checksum_that_load_accepts(published, tiny_checkpoint):
    for name in ("model.safetensors", "config.json"):
        shutil.copy(tiny_checkpoint / name, published / name)
    with pytest.raises(CheckpointError, match="published checksum"):
        load_checkpoint(published)  # weights.json still describes the shipped file
    card = publish_weights(published, name="baseline.test", licence="MIT", dataset="none",
                           recipe="none", metrics={"acc": 0.5, "note": "text", "epoch": None})
    assert card.metrics == {"acc": 0.5} and read_weights_config(published) == card
    assert _same_weights(load_checkpoint(published), load_checkpoint(tiny_checkpoint))


def test_weights_config_validates_each_field_in_one_line(published):
    raw = json.loads((published / "weights.json").read_text())
    with pytest.raises(ConfigError, match=r"weights.json: field sha256 = \"abc\" is invalid: "
                                          r"must match"):
        WeightsConfig.from_dict({**raw, "sha256": "abc"}, source="weights.json")
    with pytest.raises(ConfigError, match="field name = \"dsan\" is invalid"):
        WeightsConfig.from_dict({**raw, "name": "dsan"}, source="weights.json")
    with pytest.raises(ConfigError, match="field licence is missing"):
        WeightsConfig.from_dict({k: v for k, v in raw.items() if k != "licence"},
                                source="weights.json")
    (published / "weights.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read .*weights.json"):
        load_checkpoint(published)


def test_every_architecture_is_a_fer_model():
    for name in list_models(include_test=True):
        if name in ("dan_convnext",):  # a ConvNeXt-Base: too slow to build in the CI suite
            continue
        model = ferkit.create_model(name)
        assert isinstance(model, FERModel), name
        assert config_of(model, "test") is model.ferkit_config
    assert not isinstance(torch.nn.Linear(2, 2), FERModel)


def test_config_of_says_what_needs_it_and_how_to_get_one():
    bare = torch.nn.Linear(4, 2)
    with pytest.raises(FerkitError) as err:
        ferkit.Recognizer(bare)
    assert str(err.value).startswith("Recognizer needs a ferkit model: Linear has no "
                                     "ferkit_config")
    assert "ferkit.create_model" in str(err.value)
    with pytest.raises(FerkitError, match="^save_checkpoint needs a ferkit model"):
        ferkit.save_checkpoint(bare, "unused")


def test_moved_checkpoint_names_still_work_with_a_deprecation_warning(tiny_checkpoint):
    import ferkit.checkpoint as checkpoint

    with pytest.warns(DeprecationWarning, match="moved to ferkit.weights.load_checkpoint"):
        load = checkpoint.load_checkpoint
    assert load is ferkit.load_checkpoint
    with pytest.warns(DeprecationWarning, match="ferkit.models.base.load_state_dict_strict"):
        from ferkit.checkpoint import load_state_dict_strict  # noqa: F401
    with pytest.raises(AttributeError):
        checkpoint.no_such_name  # noqa: B018


def test_published_name_must_match_the_architecture(published):
    card = read_weights_config(published)
    (published / "weights.json").write_text(card.replace(name="dan.fer2013").to_json())
    with pytest.raises(CheckpointError, match="weights.json names 'dan.fer2013' but config.json "
                                              "holds a 'dsan' model"):
        load_checkpoint(published)


def test_every_weights_folder_is_registered_and_published():
    from pathlib import Path

    import ferkit.weights

    root = Path(ferkit.weights.__file__).parent
    folders = {p.parent.name for p in root.glob("*/config.json")}
    registered = {entry.folder for _, entry in WEIGHTS.items()}
    assert folders == registered, (
        "every folder under src/ferkit/weights/ needs one register_shipped(NAME, FOLDER) line "
        "in weights/shipped.py, and every such line its folder (docs/architecture.md, "
        f"'Adding shipped weights'): folders {sorted(folders)}, registered {sorted(registered)}")
    for name, entry in WEIGHTS.items():
        assert entry.installed, f"{entry.directory} lacks weights.json: run publish_weights"
        assert verify_weights(entry.directory).name == name
