"""Evaluation metrics against hand-computed values; evaluate/compare/train CLIs on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferkit
from ferkit.cli import main
from ferkit.data import FakeFER
from ferkit.evaluation import compute_metrics, evaluate

NAMES = ("neutral", "happy", "sad")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_metrics_equal_hand_computed_values():
    # true:  0 0 0 0 1 1 1 2 2 2      pred: 0 0 1 2 1 1 0 2 2 1
    y_true = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
    r = compute_metrics(y_true, y_pred, label_names=NAMES)
    assert r.confusion == ((2, 1, 1), (1, 2, 0), (0, 1, 2))
    assert r.accuracy == pytest.approx(6 / 10)
    recall = [2 / 4, 2 / 3, 2 / 3]
    precision = [2 / 3, 2 / 4, 2 / 3]
    f1 = [2 * p * q / (p + q) for p, q in zip(precision, recall, strict=True)]
    assert r.mean_class_accuracy == pytest.approx(np.mean(recall))
    assert r.f1_macro == pytest.approx(np.mean(f1))
    assert r.per_class["happy"].precision == pytest.approx(0.5)
    assert r.per_class["neutral"].support == 4
    # cross-check with scikit-learn
    from sklearn.metrics import balanced_accuracy_score, f1_score

    assert r.f1_macro == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert r.mean_class_accuracy == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    table = r.to_table()
    assert "accuracy 0.6000" in table and "happy" in table
    assert json.loads(r.to_json())["confusion"][0] == [2, 1, 1]


def test_evaluate_maps_by_name_and_counts_excluded():
    torch.manual_seed(0)
    model = ferkit.create_model("baseline", label_names=["happy", "neutral"],
                                backbone="test_convnext", input_size=(1, 32, 32))
    data = FakeFER(40, image_size=32, seed=2)
    report = evaluate(model, data, batch_size=16)
    kept = int(np.isin(data.targets, [0, 1]).sum())
    assert (report.num_samples, report.excluded) == (kept, 40 - kept)
    # output 0 is "happy" = canonical 1: the confusion rows follow the model's order
    assert sum(report.confusion[0]) == int((data.targets == 1).sum())
    flip = evaluate(model, data, batch_size=16, tta="flip")
    assert flip.tta == "flip" and flip.num_samples == kept


def test_evaluate_cli_writes_json_and_png(tiny_checkpoint, tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "cm.png"
    code = main(["evaluate", str(tiny_checkpoint), "--data", "fake", "--option", "size=24",
                 "--option", "image_size=64", "--split", "test", "--json", str(out_json),
                 "--confusion", str(out_png)])
    assert code == 0
    assert "mean class accuracy" in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert report["num_samples"] == 24
    assert sum(map(sum, report["confusion"])) == 24
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_cli_one_table(tiny_checkpoint, tmp_path, capsys):
    torch.manual_seed(1)
    other = ferkit.save_checkpoint(
        ferkit.create_model("baseline", backbone="test_convnext", input_size=(3, 32, 32)),
        tmp_path / "other")
    code = main(["compare", str(tiny_checkpoint), str(other), "--data", "fake",
                 "--option", "size=16", "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["num_samples"] for r in rows] == [16, 16]
    assert rows[1]["meta"]["checkpoint"] == str(other)


def test_train_cli_smoke_and_errors(tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        "# tiny smoke recipe\nsource: test\n"
        "model: {name: baseline, kwargs: {backbone: test_convnext}, input_size: [1, 32, 32],"
        " mean: [0.5], std: [0.5]}\n"
        "data: {format: fake, options: {size: 32, image_size: 32}, num_workers: 0}\n"
        "optimizer: {name: adam, lr: 0.003}\n"
        "trainer: {epochs: 1, batch_size: 16, progress_bar: false}\n")
    assert main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"best checkpoint: {tmp_path / 'run' / 'best'}" in out
    assert ferkit.load_checkpoint(tmp_path / "run" / "best").ferkit_config.data.input_size == \
        (1, 32, 32)
    assert main(["train", "--recipe", str(recipe), "--set", "trainer.epoch=2"]) == 2
    assert "Did you mean 'epochs'?" in capsys.readouterr().err
    assert main(["train", "--recipe", "fer2013_resnet18", "--print-recipe",
                 "--set", "trainer.epochs=1"]) == 0
    assert "epochs: 1" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.shared_data
def test_evaluate_cli_on_fer2013_private_test(tiny_checkpoint, tmp_path):
    from conftest import shared_path

    csv = shared_path("fer2013", "fer2013.csv.gz")
    out = tmp_path / "r.json"
    assert main(["evaluate", str(tiny_checkpoint), "--data", str(csv), "--split", "test",
                 "--batch-size", "256", "--json", str(out), "--format", "quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["num_samples"] == 3589  # PrivateTest
    assert report["per_class"]["happy"]["support"] == 879
