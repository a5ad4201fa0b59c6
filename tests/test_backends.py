"""Classifier backends: ONNX Runtime equals PyTorch, the export cache, and "auto"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ferkit
from ferkit.errors import FerkitError
from ferkit.inference import backends
from ferkit.inference.backends import OnnxBackend, TorchBackend, create_backend, weights_hash

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def _module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ferkit-cache")


@pytest.fixture
def cache(_module_cache, monkeypatch):
    """$FERKIT_CACHE shared by this module's tests, so the tiny model is exported once."""
    monkeypatch.setenv("FERKIT_CACHE", str(_module_cache))
    return _module_cache


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    return ferkit.load_checkpoint(tiny_checkpoint)


def _batch(n: int, shape=(3, 64, 64)) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, *shape)).astype(np.float32)


def test_onnx_backend_equals_torch_backend_and_caches_the_export(tiny_model, cache,
                                                                 monkeypatch):
    onnx_backend = OnnxBackend(tiny_model)
    torch_backend = TorchBackend(tiny_model)
    assert onnx_backend.path.is_file()
    assert onnx_backend.path.parent == cache / "onnx"
    assert onnx_backend.path.name == f"baseline-{weights_hash(tiny_model)[:20]}.onnx"
    assert onnx_backend.config == tiny_model.ferkit_config
    assert onnx_backend.threads == backends.available_cores()
    for n in (1, 4):
        x = _batch(n)
        got, want = onnx_backend(x), torch_backend(x)
        assert got.shape == (n, 7)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)

    # A second backend for the same weights reuses the cached file without exporting.
    def no_export(*args, **kwargs):
        raise AssertionError("export ran although the cache holds this model")

    monkeypatch.setattr("ferkit.export.export_onnx", no_export)
    again = OnnxBackend(tiny_model)
    assert again.path == onnx_backend.path
    np.testing.assert_array_equal(again(_batch(2)), onnx_backend(_batch(2)))


def test_onnx_backend_from_exported_file(tiny_model, cache):
    path = backends.cached_onnx_export(tiny_model)
    backend = OnnxBackend(path, threads=1)
    assert backend.threads == 1
    assert backend.config.label_names == tiny_model.ferkit_config.label_names
    np.testing.assert_allclose(backend(_batch(3)), TorchBackend(tiny_model)(_batch(3)),
                               atol=1e-4, rtol=0)


def test_weights_hash_tracks_weights_and_config():
    torch.manual_seed(0)
    a = ferkit.create_model("baseline_test")
    torch.manual_seed(0)
    b = ferkit.create_model("baseline_test")
    assert weights_hash(a) == weights_hash(b)
    with torch.no_grad():
        b.fc.bias[0] += 1e-3
    assert weights_hash(a) != weights_hash(b)
    torch.manual_seed(0)
    c = ferkit.create_model("baseline_test", num_classes=8)
    assert weights_hash(c) != weights_hash(a)


def test_create_backend_kinds(tiny_model, cache, monkeypatch):
    assert isinstance(create_backend(tiny_model, kind="torch"), TorchBackend)
    assert isinstance(create_backend(tiny_model, kind="onnx"), OnnxBackend)
    with pytest.raises(FerkitError, match="unknown backend 'tf'.*auto, torch, onnx"):
        create_backend(tiny_model, kind="tf")
    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    assert isinstance(create_backend(tiny_model, kind="auto"), TorchBackend)


def test_auto_measures_once_and_follows_the_measurement(tiny_model, cache, monkeypatch):
    chosen = create_backend(tiny_model, kind="auto")
    records = list((cache / "onnx").glob("*.speed-*cores.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["choice"] == chosen.name
    assert record["choice"] == ("onnx" if record["onnx_s"] <= record["torch_s"] else "torch")

    # The cached decision is reused (no new measurement) and obeyed either way.
    monkeypatch.setattr(backends, "measure_backend",
                        lambda *a, **k: pytest.fail("measured again"))
    for choice, cls in (("torch", TorchBackend), ("onnx", OnnxBackend)):
        records[0].write_text(json.dumps({"choice": choice}))
        assert isinstance(create_backend(tiny_model, kind="auto"), cls)


def test_auto_falls_back_to_torch_when_export_fails(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path))  # empty: nothing cached to fall back on
    def broken(*args, **kwargs):
        raise FerkitError("cannot export (test)")

    monkeypatch.setattr("ferkit.export.export_onnx", broken)
    with pytest.warns(UserWarning, match="ONNX Runtime backend unavailable.*cannot export"):
        backend = create_backend(tiny_model, kind="auto")
    assert isinstance(backend, TorchBackend)
    with pytest.raises(FerkitError, match="cannot export"):
        create_backend(tiny_model, kind="onnx")


def test_onnx_on_cuda_without_gpu_runtime_says_what_to_install(tiny_model, cache):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(FerkitError, match="onnxruntime-gpu"):
        OnnxBackend(tiny_model, device="cuda")


def test_unwritable_cache_is_a_clear_error(tiny_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(FerkitError, match="cannot create the ONNX cache.*FERKIT_CACHE"):
        OnnxBackend(tiny_model, cache_dir=blocker)


def _write_invalid_graph(path, model) -> None:
    """An .onnx file with the model's ferkit metadata but a graph ONNX Runtime rejects."""
    import onnx
    from onnx import TensorProto, helper

    from ferkit.export import INPUT_NAME, OUTPUT_NAME, onnx_metadata

    graph = helper.make_graph(
        [helper.make_node("NoSuchOperator", [INPUT_NAME], [OUTPUT_NAME])], "broken",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, 3, 64, 64])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None, 7])])
    proto = helper.make_model(graph)
    helper.set_model_props(proto, onnx_metadata(model.ferkit_config))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def test_invalid_cached_export_is_evicted_and_exported_again(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path))
    target = tmp_path / "onnx" / f"baseline-{weights_hash(tiny_model)[:20]}.onnx"
    _write_invalid_graph(target, tiny_model)
    (target.parent / f"{target.stem}.speed-2cores.json").write_text('{"choice": "onnx"}')
    backend = create_backend(tiny_model, kind="onnx")
    assert backend.path == target and b"NoSuchOperator" not in target.read_bytes()
    np.testing.assert_allclose(backend(_batch(2)), TorchBackend(tiny_model)(_batch(2)),
                               atol=1e-4, rtol=0)
    assert not list(target.parent.glob("*.speed-*.json"))  # its stale measurement went too


def test_export_that_never_loads_falls_back_in_auto_and_is_one_line_in_onnx(
        tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FERKIT_CACHE", str(tmp_path))
    target = tmp_path / "onnx" / f"baseline-{weights_hash(tiny_model)[:20]}.onnx"
    monkeypatch.setattr("ferkit.export.export_onnx",
                        lambda model, path, **kw: _write_invalid_graph(Path(path), model))
    _write_invalid_graph(target, tiny_model)
    with pytest.warns(UserWarning, match="ONNX Runtime backend unavailable.*not a usable ONNX"):
        backend = create_backend(tiny_model, kind="auto")
    assert isinstance(backend, TorchBackend) and not target.exists()  # evicted, not kept
    with pytest.raises(FerkitError, match="not a usable ONNX model.*removed from the cache") \
            as info:
        create_backend(tiny_model, kind="onnx")
    assert "\n" not in str(info.value) and not target.exists()
