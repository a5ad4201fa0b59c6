"""One typed validation of a model's config: every loader names the first bad field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ferkit
from ferkit.checkpoint import read_config
from ferkit.cli import main
from ferkit.config import GRAY48_DATA, DataConfig, ModelConfig
from ferkit.errors import CheckpointError, ConfigError
from ferkit.weights import load_checkpoint, shipped_weights_dir

#: (how config.json is damaged, the field the error must name, words it must say)
DEFECTS = [
    (("data", "std", [0, 0.2, 0.2]), "data.std[0] = 0", "greater than 0"),
    (("data", "interpolation", "magic"), 'data.interpolation = "magic"', "bilinear"),
    (("data", "input_size", [1, 0, 0]), "data.input_size[1] = 0", "at least 1"),
    (("data", "input_size", [2, 64, 64]), "data.input_size", "must be 1 or 3"),
    (("data", "face_margin", "lots"), 'data.face_margin = "lots"', "must be a number"),
    (("data", "face_margin", -5), "data.face_margin = -5", "at least 0"),
    (("data", "mean", [0.5, "x", 0.5]), "data.mean[1]", "must be a number"),
    ((None, "label_names", "abcdefg"), 'label_names = "abcdefg"', "must be a list"),
    ((None, "label_names", ["happy", "happy"]), "label_names", "duplicates"),
    ((None, "architecture", ""), "architecture", "must not be empty"),
    ((None, "num_classes", 3), "num_classes = 3", "label_names has 7"),
    (("data", "face_margn", 0.1), "data.face_margn", "not a ferkit config field"),
]


def _damaged(tiny_checkpoint: Path, tmp_path: Path, change) -> Path:
    section, key, value = change
    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, copy)
    raw = json.loads((copy / "config.json").read_text())
    (raw[section] if section else raw)[key] = value
    (copy / "config.json").write_text(json.dumps(raw))
    return copy


@pytest.mark.parametrize(("change", "field", "words"), DEFECTS,
                         ids=[f"{d[0][1]}={d[0][2]}" for d in DEFECTS])
def test_every_loader_names_the_bad_field(tiny_checkpoint, tmp_path, change, field, words):
    directory = _damaged(tiny_checkpoint, tmp_path, change)
    expected = f"{directory / 'config.json'}: field {field}"
    for load in (read_config, load_checkpoint,
                 lambda d: ferkit.Recognizer.from_pretrained(d, detector="haar")):
        with pytest.raises(ConfigError) as info:
            load(directory)
        message = str(info.value)
        assert message.startswith(expected), message
        assert words in message and "\n" not in message


def test_cli_prints_one_line_and_refuses_to_add(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path / "home"))
    directory = _damaged(tiny_checkpoint, tmp_path, ("data", "std", [0, 0.2, 0.2]))
    for args in (["models", "info", str(directory)], ["models", "add", "bad", str(directory)]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "field data.std[0] = 0" in err, err
    assert not (tmp_path / "home" / "models" / "bad").exists()
    # A user model broken after it was added is listed as unreadable, not a crash.
    broken = tmp_path / "home" / "models" / "broken"
    shutil.copytree(directory, broken)
    assert main(["models", "list"]) == 0
    assert "broken" in capsys.readouterr().out.split("unreadable")[0].splitlines()[-1]


def test_onnx_metadata_goes_through_the_same_validation(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from ferkit.export import METADATA_PREFIX, read_onnx_config

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7])])
    cfg = ModelConfig(architecture="baseline", label_names=ferkit.labels.SEVEN).to_dict()
    cfg["data"]["face_margin"] = -5
    for text, words in ((json.dumps(cfg), "field data.face_margin = -5"),
                        ("{not json", "not valid JSON")):
        proto = helper.make_model(graph)
        helper.set_model_props(proto, {METADATA_PREFIX + "config": text})
        onnx.save(proto, tmp_path / "m.onnx")
        with pytest.raises(CheckpointError, match="m.onnx metadata") as info:
            read_onnx_config(tmp_path / "m.onnx")
        assert words in str(info.value)


def test_shipped_config_round_trips_byte_for_byte():
    path = shipped_weights_dir("default") / "config.json"
    cfg = read_config(path.parent)
    assert cfg.to_json() == path.read_text()  # ONNX cache keys hash this text
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.data == GRAY48_DATA and cfg.num_classes == 7


def test_configs_are_frozen_and_replace_validates():
    data = DataConfig(input_size=(1, 32, 32), mean=(0.5,), std=(0.5,))
    with pytest.raises(Exception, match="frozen"):
        data.face_margin = 1.0
    assert data.replace(face_margin=0.5).face_margin == 0.5
    assert hash(data) == hash(data.replace())  # usable as a cache key
    with pytest.raises(ConfigError, match=r"DataConfig: field std\[0\] = 0 .*greater than 0"):
        data.replace(std=(0,))
    with pytest.raises(ConfigError, match="mean needs 3 value"):
        data.replace(input_size=(3, 32, 32))
    cfg = ModelConfig(architecture="dan", label_names=("Happy", "angry"))
    assert cfg.label_names == ("happy", "anger")  # canonical spellings
    assert cfg.replace(metrics={"acc": 0.5}).metrics == {"acc": 0.5} and cfg.metrics == {}


def test_crop_pct_is_written_only_where_it_crops():
    plain = ModelConfig(architecture="baseline", label_names=("happy", "sad"))
    assert "crop_pct" not in plain.to_dict()["data"]
    cropped = plain.replace(data=plain.data.replace(crop_pct=0.875))
    assert cropped.to_dict()["data"]["crop_pct"] == 0.875
    assert ModelConfig.from_dict(cropped.to_dict()) == cropped
    with pytest.raises(ConfigError, match=r"crop_pct"):
        plain.data.replace(crop_pct=0)
