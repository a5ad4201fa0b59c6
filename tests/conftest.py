"""Shared test setup: offline, deterministic, and a pointer to ../shared/data when present."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# backend="auto" exports models to ONNX and caches them: keep that out of the home directory.
os.environ.setdefault("FERKIT_CACHE", tempfile.mkdtemp(prefix="ferkit-test-cache-"))
# `ferkit models add` writes under FERKIT_HOME: never the developer's own ~/.ferkit.
os.environ["FERKIT_HOME"] = tempfile.mkdtemp(prefix="ferkit-test-home-")

import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FERKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; the calling test is skipped when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data beside the project)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 7-class checkpoint (baseline resnet10t, 3x64x64, 5-point
    alignment): real files in ferkit's format, small and fast; the shipped model has its
    own tests (test_default_model.py)."""
    import ferkit

    torch.manual_seed(0)
    model = ferkit.create_model("baseline", backbone="resnet10t", input_size=(3, 64, 64))
    return ferkit.save_checkpoint(model, tmp_path_factory.mktemp("tiny-ckpt"),
                                  provenance={"dataset": "none (random weights, tests only)"})


@pytest.fixture
def one_thread():
    """One intra-op thread: on a loaded 2-core machine two threads spin against each other
    (measured ~10x slower per training step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray runtime (2 CPUs, like the CI machine) shared by every Ray test: starting
    Ray costs 10-30 s on 2 busy cores."""
    ray = pytest.importorskip("ray", reason="needs Ray Data: pip install 'ferkit[ray]'")
    from ferkit.batch import ensure_ray

    ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def install_stand_in_explain(monkeypatch, explain_aligned, overlay_on_image) -> None:
    """Replace ``ferkit.explain`` (and its ``visualize``) with a stand-in offering the two
    functions the HTTP service calls, for serve tests that control explanation time/output."""
    import sys
    import types

    module = types.ModuleType("ferkit.explain")
    module.explain_aligned = explain_aligned
    visualize = types.ModuleType("ferkit.explain.visualize")
    visualize.overlay_on_image = overlay_on_image
    module.visualize = visualize
    monkeypatch.setitem(sys.modules, "ferkit.explain", module)
    monkeypatch.setitem(sys.modules, "ferkit.explain.visualize", visualize)
