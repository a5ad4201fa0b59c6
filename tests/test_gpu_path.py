"""The GPU path (scripts/gpu_data.py + scripts/gpu_train.sh) on CPU, on a tiny synthetic
FER2013 + FER+: what travels to the device and back is exact where it must be, and the whole
train -> calibrate -> evaluate -> split script runs end to end (slow)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ferkit
from conftest import REPO
from ferkit.checkpoint import read_config

SCRIPT = REPO / "scripts" / "gpu_data.py"
USAGE_ROWS = {"Training": 48, "PublicTest": 16, "PrivateTest": 16}
FERPLUS_HEADER = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                  "contempt,unknown,NF")


@pytest.fixture(scope="module")
def tiny_fer(tmp_path_factory):
    """fer2013/fer2013.csv.gz + ferplus/fer2013new.csv with the same 80 rows."""
    root = tmp_path_factory.mktemp("tinyfer")
    rng = np.random.default_rng(0)
    rows, votes = ["emotion,pixels,Usage"], [FERPLUS_HEADER]
    y, x = np.mgrid[0:48, 0:48]
    for usage, count in USAGE_ROWS.items():
        for i in range(count):
            emotion = i % 7
            face = (60 + 2 * x + (emotion + 1) * 10 * np.sin(y / (3 + emotion)) +
                    rng.normal(0, 8, (48, 48))).clip(0, 255).astype(np.uint8)
            rows.append(f"{emotion},{' '.join(map(str, face.ravel()))},{usage}")
            counts = [0] * 10
            counts[[6, 4, 5, 2, 1, 0, 3][emotion]] = 8  # FER2013 index -> FER+ column
            counts[(emotion + 3) % 8] += 2
            votes.append(f"{usage},fer{len(votes):07d}.png," + ",".join(map(str, counts)))
    (root / "fer2013").mkdir()
    (root / "ferplus").mkdir()
    with gzip.open(root / "fer2013" / "fer2013.csv.gz", "wt") as handle:
        handle.write("\n".join(rows) + "\n")
    (root / "ferplus" / "fer2013new.csv").write_text("\n".join(votes) + "\n")
    return root


def _script(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def packed(tiny_fer, tmp_path_factory):
    out = tmp_path_factory.mktemp("pack") / "gpu_data"
    report = _script("pack", str(out), "--fer2013", str(tiny_fer / "fer2013" / "fer2013.csv.gz"),
                     "--ferplus", str(tiny_fer / "ferplus" / "fer2013new.csv"))
    assert "Training as JPEG 95" in report  # tiny data: the best quality fits
    return out


def test_pack_and_unpack_keep_evaluation_pixels_exact(tiny_fer, packed, tmp_path):
    from ferkit.data import open_dataset

    _script("unpack", str(packed), str(tmp_path))
    original = tiny_fer / "fer2013" / "fer2013.csv.gz"
    for split in ("val", "test"):  # what models are selected, calibrated and scored on
        a = open_dataset(original, split=split)
        b = open_dataset(tmp_path / "fer2013" / "fer2013.npz", split=split)
        assert np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)
    a, b = (open_dataset(p, split="train") for p in
            (original, tmp_path / "fer2013" / "fer2013.npz"))
    assert np.array_equal(a.targets, b.targets)
    error = np.abs(a.images.astype(int) - b.images.astype(int)).mean()
    assert 0 < error < 3  # JPEG: close, not equal
    # FER+ finds the unpacked pixels beside it and gives vote distributions.
    plus = open_dataset(tmp_path / "ferplus" / "fer2013new.csv", split="train",
                        label_mode="soft")
    assert len(plus) == 48 and plus.soft_targets.shape == (48, 8)
    assert np.allclose(plus.soft_targets.sum(axis=1), 1.0)


def test_split_and_join_return_the_checkpoint_byte_for_byte(tiny_checkpoint, tmp_path):
    _script("split", str(tiny_checkpoint), str(tmp_path / "parts"))
    parts = sorted((tmp_path / "parts").iterdir())
    assert all(p.stat().st_size <= 15 * 2**20 for p in parts)
    _script("join", str(tmp_path / "parts"), str(tmp_path / "back"))
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "back" / name).read_bytes() == (tiny_checkpoint / name).read_bytes()


def test_next_default_recipe_builds_the_6x6_model():
    from ferkit.training.module import build_model
    from ferkit.training.recipe import load_recipe

    recipe = load_recipe("ferplus_dsan_photo")
    assert recipe.data.options["label_mode"] == "soft" and recipe.augment["preset"] == "photo"
    model = build_model(recipe.model).eval()
    import torch

    with torch.no_grad():
        out = model(torch.zeros(1, 1, 48, 48))
    assert tuple(out.feature_map.shape[-2:]) == (6, 6) and out.logits.shape == (1, 7)


@pytest.mark.slow
def test_gpu_train_script_runs_end_to_end_on_cpu(packed, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PACK": str(packed), "DATA": str(tmp_path / "data"),
           "RUN": str(tmp_path / "run"), "OUT": str(out), "EPOCHS": "1", "WORKERS": "0",
           "DEVICE": "cpu", "PYTHON": sys.executable,
           "EXTRA_SET": "--set trainer.batch_size=16 --set trainer.precision=32-true"}
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_train.sh")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["fer2013_privatetest"]["num_samples"] == 16
    assert metrics["ferplus_privatetest_majority"]["num_samples"] > 0
    assert metrics["calibration"]["samples"] == 16
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert len(files) <= 8 and "train_log.txt" in files
    subprocess.run([sys.executable, str(SCRIPT), "join", str(out / "ckpt"),
                    str(tmp_path / "back")], check=True, timeout=120)
    cfg = read_config(tmp_path / "back")
    assert cfg.temperature == pytest.approx(metrics["calibration"]["temperature"])
    assert cfg.provenance["recipe"]["name"] == "ferplus_dsan_photo"
    assert ferkit.load_checkpoint(tmp_path / "back").ferkit_config.num_classes == 7
