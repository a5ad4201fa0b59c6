"""ONNX export: every registered architecture exports, matches PyTorch, carries its config."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferkit
from ferkit.errors import FerkitError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from ferkit.export import export_onnx, onnx_metadata, read_onnx_config  # noqa: E402

# Architectures whose export is known not to work yet, with the reason (kept honest: an
# entry here that starts passing makes the xfail strict test fail, so it gets removed).
KNOWN_EXPORT_FAILURES: dict[str, str] = {}


def _small_variant(name: str) -> str:
    """The tiny CI variant ``<name>_test`` when the architecture registers one."""
    test_name = f"{name}_test"
    return test_name if test_name in ferkit.list_models(include_test=True) else name


@pytest.mark.parametrize("name", ferkit.list_models())
def test_every_registered_model_exports_and_matches_pytorch(name, tmp_path):
    if name in KNOWN_EXPORT_FAILURES:
        pytest.xfail(KNOWN_EXPORT_FAILURES[name])
    torch.manual_seed(0)
    model = ferkit.create_model(_small_variant(name)).eval()
    report = export_onnx(model, tmp_path / "m.onnx")
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    assert report.verified_batch_sizes == (1, 3)
    # Dynamic batch: a batch size never seen at export time runs and matches PyTorch.
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    x = torch.randn(5, *model.ferkit_config.data.input_size)
    got = session.run(["logits"], {"input": x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).logits.numpy()
    assert got.shape == (5, model.ferkit_config.num_classes)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_metadata_round_trip_and_flat_keys(tiny_checkpoint, tmp_path):
    model = ferkit.load_checkpoint(tiny_checkpoint)
    cfg = model.ferkit_config
    report = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", exporter="torchscript")
    assert report.architecture == "baseline" and report.input_shape == (3, 64, 64)
    assert read_onnx_config(report.path) == cfg

    # A plain ONNX user reads labels and preprocessing without ferkit.
    meta = {p.key: p.value for p in onnx.load(str(report.path)).metadata_props}
    assert json.loads(meta["ferkit.label_names"]) == list(cfg.label_names)
    assert json.loads(meta["ferkit.label_names"])[:2] == ["neutral", "happy"]
    assert json.loads(meta["ferkit.input_size"]) == [3, 64, 64]
    assert json.loads(meta["ferkit.mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(meta["ferkit.std"]) == pytest.approx([0.229, 0.224, 0.225])
    assert meta["ferkit.architecture"] == "baseline"
    assert meta["ferkit.alignment"] == "five_point"
    assert set(onnx_metadata(cfg)) <= set(meta)


def test_static_batch_and_torchscript_exporter(tmp_path):
    torch.manual_seed(1)
    model = ferkit.create_model("baseline_test").eval()
    report = export_onnx(model, tmp_path / "s.onnx", dynamic_batch=False,
                         exporter="torchscript", opset=17)
    assert report.exporter == "torchscript" and report.opset == 17
    assert report.verified_batch_sizes == (1,) and report.max_abs_diff < 1e-4
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 32, 32]


def test_read_onnx_config_without_metadata_says_how_to_fix(tmp_path):
    model = torch.nn.Linear(4, 2)
    path = tmp_path / "plain.onnx"
    with pytest.warns(DeprecationWarning):
        torch.onnx.export(model, (torch.zeros(1, 4),), str(path), dynamo=False)
    with pytest.raises(FerkitError, match="no ferkit metadata.*ferkit export"):
        read_onnx_config(path)
    with pytest.raises(FerkitError, match="not found"):
        read_onnx_config(tmp_path / "missing.onnx")


def test_export_rejects_unknown_exporter_and_plain_modules(tmp_path):
    with pytest.raises(FerkitError, match="exporter must be"):
        export_onnx(ferkit.create_model("baseline_test"), tmp_path / "x.onnx", exporter="tf")
    with pytest.raises(FerkitError, match="create_model"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")


def test_cli_export_prints_max_abs_diff(tiny_checkpoint, tmp_path, capsys):
    from ferkit.cli import main

    out = tmp_path / "cli.onnx"
    assert main(["export", str(tiny_checkpoint), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    diff = float(printed.split("max abs diff vs PyTorch: ")[1].split()[0])
    assert 0 <= diff < 1e-4 and "dynamo exporter" in printed and out.is_file()
    assert main(["export", str(tiny_checkpoint), "--onnx", str(out), "--format", "json",
                 "--exporter", "torchscript", "--opset", "17"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] < 1e-4 and report["path"] == str(out)
    assert report["opset"] == 17 and report["exporter"] == "torchscript"
    assert main(["export", str(tmp_path / "nope"), "--onnx", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
