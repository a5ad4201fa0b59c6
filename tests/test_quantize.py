"""int8 ONNX export: calibrated on real faces, checked against fp32, usable everywhere a
model name is (Recognizer, predict, evaluate), with clear errors for what cannot work."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

import ferkit
from conftest import shared_path
from ferkit.cli import main
from ferkit.data.base import ArrayFERDataset
from ferkit.errors import FerkitError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from ferkit.export import export_onnx, read_onnx_config  # noqa: E402
from ferkit.quantize import QuantizeReport, quantization_record, quantize_onnx  # noqa: E402


@pytest.fixture(scope="module")
def fer2013_int8(tmp_path_factory):
    """The shipped default quantized by `ferkit export --int8` with 256 FER2013 training
    faces (checked on 256 others): the JSON report as a QuantizeReport."""
    csv = shared_path("fer2013", "fer2013.csv.gz")
    out = tmp_path_factory.mktemp("int8") / "default-int8.onnx"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["export", "default", "--onnx", str(out), "--int8", "--calibration",
                       str(csv), "--calibration-samples", "256", "--exporter", "torchscript",
                       "--format", "json"])
    assert status == 0, stdout.getvalue()
    fields = json.loads(stdout.getvalue())
    assert fields["path"] == str(out)
    return QuantizeReport(**{**fields, "path": out}), csv


def _tiny():
    torch.manual_seed(0)
    return ferkit.create_model("baseline", backbone="resnet10t", input_size=(1, 48, 48),
                               mean=(0.5,), std=(0.5,)).eval()


def test_default_model_int8_matches_fp32_on_fer2013_and_keeps_the_first_conv_float(
        fer2013_int8):
    report, csv = fer2013_int8
    assert report.top1_agreement >= 0.97
    assert report.check_samples == report.calibration_samples == 256
    assert report.quantized_convs == report.total_convs - 1  # the input layer stays fp32
    assert report.size_bytes < 0.4 * report.fp32_size_bytes  # int8 weights
    # Everything a user of the file needs travels with it, plus how it was quantized.
    assert read_onnx_config(report.path) == ferkit.load_checkpoint("default").ferkit_config
    record = quantization_record(report.path)
    assert record["calibration"].endswith("fer2013.csv.gz (train)")
    assert record["top1_agreement"] == pytest.approx(report.top1_agreement, abs=1e-5)
    graph = onnx.load_model(str(report.path)).graph
    inputs = {i.name for i in graph.input}
    producers = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    dequantized = [c for c in convs
                   if producers.get(c.input[0]) is not None
                   and producers[c.input[0]].op_type == "DequantizeLinear"]
    assert len(dequantized) == report.quantized_convs
    assert [c.input[0] for c in convs if c not in dequantized] == [next(iter(inputs))]

    # Accuracy on 1,000 PrivateTest faces, measured by `ferkit evaluate` on both files.
    from ferkit.data.fer2013 import open_fer2013
    from ferkit.evaluation import evaluate
    from ferkit.inference.backends import OnnxModule

    test = open_fer2013(csv, split="test")
    first = ArrayFERDataset(test.images[:1000], test.targets[:1000], split="test")
    fp32 = evaluate(ferkit.load_checkpoint("default"), first, batch_size=250)
    int8 = evaluate(OnnxModule(report.path), first, batch_size=250)
    assert int8.accuracy == pytest.approx(fp32.accuracy, abs=0.01)
    assert int8.calibration["ece"] == pytest.approx(fp32.calibration["ece"], abs=0.01)


def test_int8_file_predicts_real_photos_like_the_checkpoint(fer2013_int8, capsys):
    report, _ = fer2013_int8
    photo = shared_path("face_photos", "dlib", "examples", "faces", "2007_007763.jpg")
    fp32 = ferkit.Recognizer.from_pretrained("default", backend="onnx")(str(photo))
    rec = ferkit.Recognizer.from_pretrained(str(report.path))
    assert rec.model is None and rec.backend.name == "onnx"
    int8 = rec(str(photo))
    assert len(int8.faces) == len(fp32.faces) >= 5
    for a, b in zip(int8.faces, fp32.faces, strict=True):
        assert a.box == pytest.approx(b.box)
        assert a.label == b.label
        assert max(abs(a.probs[k] - b.probs[k]) for k in a.probs) < 0.1
    # The CLI takes the file as --model.
    status = main(["predict", str(photo), "--model", str(report.path), "--format", "json"])
    out = capsys.readouterr().out
    assert status == 0
    labels = [face["label"] for face in json.loads(out)[0]["faces"]]
    assert labels == [f.label for f in int8.faces]
    # Explaining needs the PyTorch model: one clear error.
    from ferkit.explain import explain

    with pytest.raises(FerkitError, match="explanations need the PyTorch model"):
        explain(rec, str(photo))


def test_evaluate_reads_an_onnx_file_exactly_like_its_checkpoint(tmp_path, capsys):
    """`ferkit evaluate FILE.onnx`: same predictions as the checkpoint, and the temperature
    inside the graph is undone then reapplied, so the calibration figures match too."""
    path = export_onnx("default", tmp_path / "m.onnx", exporter="torchscript").path
    reports = []
    for model in ("default", str(path)):
        status = main(["evaluate", model, "--data", "fake", "--option", "size=48",
                       "--format", "json", "-q"])
        assert status == 0
        reports.append(json.loads(capsys.readouterr().out))
    checkpoint, onnx_file = reports
    assert onnx_file["confusion"] == checkpoint["confusion"]
    assert onnx_file["accuracy"] == checkpoint["accuracy"]
    for key in ("ece", "nll", "temperature"):
        assert onnx_file["calibration"][key] == pytest.approx(checkpoint["calibration"][key],
                                                              abs=1e-4)


def test_quantize_from_an_array(tmp_path):
    inputs = np.random.default_rng(0).standard_normal((96, 1, 48, 48)).astype(np.float32)
    report = quantize_onnx(_tiny(), tmp_path / "ok.onnx", inputs, samples=64, check_samples=32,
                           exporter="torchscript")
    assert report.calibration == "array of 96 inputs"
    assert report.calibration_samples == 64 and report.check_samples == 32
    assert quantization_record(report.path)["quantized_convs"] == report.quantized_convs > 0


def test_int8_that_disagrees_with_fp32_is_refused_and_nothing_written(tmp_path):
    """Calibration faces half of which are 50x too bright: the int8 ranges fit those, the
    ordinary faces lose their detail, and the default model's int8 graph agrees with fp32
    on about half of the check faces."""
    inputs = np.random.default_rng(0).uniform(-1, 1, (96, 1, 48, 48)).astype(np.float32)
    inputs[::2] *= 50
    target = tmp_path / "refused.onnx"
    with pytest.raises(FerkitError, match=r"agrees with fp32 on only 5\d\.\d% of 32 check "
                                          r"faces .* \(needs 97%\); nothing was written"):
        quantize_onnx("default", target, inputs, samples=64, check_samples=32,
                      exporter="torchscript")
    assert not target.exists()


@pytest.mark.parametrize("shape, samples, message", [
    ((40, 3, 48, 48), 16, r"has shape \(40, 3, 48, 48\); the model takes \(N, 1, 48, 48\)"),
    ((16, 1, 48, 48), 16, "has 16 faces: quantizing needs 16 to calibrate and at least 1 more"),
    ((40, 1, 48, 48), 8, "at least 16 calibration faces"),
])
def test_quantize_bad_calibration_is_one_clear_error(tmp_path, shape, samples, message):
    with pytest.raises(FerkitError, match=message):
        quantize_onnx(_tiny(), tmp_path / "x.onnx", np.zeros(shape, np.float32),
                      samples=samples, check_samples=8)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("argv, message", [
    (["--int8"], "--int8 needs --calibration"),
    (["--calibration", "faces/"], "--calibration is for int8 export"),
    (["--int8", "--calibration", "faces/", "--opset", "17"], "--opset cannot be combined"),
    (["--int8", "--calibration", "/nonexistent/fer2013.csv"], "does not exist"),
])
def test_export_int8_option_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "m.onnx"
    status = main(["export", "default", "--onnx", str(out), *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_recognizer_refuses_what_is_neither_model_nor_backend():
    with pytest.raises(FerkitError, match="needs a ferkit model or a classifier backend"):
        ferkit.Recognizer(object())
