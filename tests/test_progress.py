"""Progress bars on long commands: shown on a terminal, silent with -q and when stderr is
redirected; training output without Lightning's banners and advertisements."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

import ferkit
from ferkit import progress
from ferkit.cli import main

SRC = str(Path(ferkit.__file__).resolve().parents[1])


def test_track_is_silent_and_transparent_without_a_display(capsys):
    assert list(progress.track(iter(range(3)), description="x")) == [0, 1, 2]
    with progress.progress_display(enabled=True, quiet=True) as shown:
        assert not shown and list(progress.track([1, 2], description="x")) == [1, 2]
    assert capsys.readouterr().err == ""


def test_display_draws_bars_on_a_terminal(capsys):
    with progress.progress_display(enabled=True) as shown:
        assert shown
        assert sum(progress.track(range(5), description="counting sheep")) == 10
    err = capsys.readouterr().err
    assert "counting sheep" in err and "/5" in err


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    """A very small model (fast even on a loaded 2-core machine)."""
    import torch

    torch.manual_seed(0)
    model = ferkit.create_model("baseline", backbone="test_convnext", input_size=(1, 32, 32),
                                mean=(0.5,), std=(0.5,))
    return ferkit.save_checkpoint(model, tmp_path_factory.mktemp("small"))


@pytest.mark.parametrize("argv_extra, terminal, expect_bar", [
    ([], True, True), (["-q"], True, False), ([], False, False)])
def test_evaluate_shows_a_bar_only_on_a_terminal_without_q(small_checkpoint, monkeypatch,
                                                          capsys, argv_extra, terminal,
                                                          expect_bar):
    monkeypatch.setattr(progress, "terminal", lambda: terminal)
    code = main(["evaluate", str(small_checkpoint), "--data", "fake", "--option", "size=32",
                 "--option", "image_size=32", "-b", "8", "--format", "quiet", *argv_extra])
    out, err = capsys.readouterr()
    assert code == 0 and 0.0 <= float(out) <= 1.0  # stdout holds only the result
    assert ("evaluating (batches)" in err) is expect_bar
    assert ("/4" in err) is expect_bar  # 32 samples in batches of 8


def test_predict_folder_bar_on_a_real_terminal(small_checkpoint, tmp_path):
    """`ferkit predict` under a pseudo-terminal draws a bar on stderr; stdout piped stays
    clean JSON."""
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (64, 64), (40 * i, 90, 120)).save(tmp_path / f"{i}.png")
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "100"}
    chunks: list[bytes] = []

    def drain() -> None:  # a full pty buffer would block the child's writes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run(
        [sys.executable, "-m", "ferkit", "predict", str(tmp_path), "--no-detect", "--json",
         "--model", str(small_checkpoint), "--backend", "torch"],
        stdout=subprocess.PIPE, stderr=slave, env=env, timeout=120)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, err
    import json

    assert len(json.loads(proc.stdout)) == 3  # no bar fragments in the piped output
    assert "images" in err and "/3" in err


def test_training_prints_no_lightning_banners_or_ads(tmp_path, capfd):
    recipe = {
        "name": "tiny",
        "model": {"name": "baseline", "kwargs": {"backbone": "test_convnext"},
                  "input_size": [1, 32, 32], "mean": [0.5], "std": [0.5]},
        "data": {"format": "fake", "options": {"size": 32, "image_size": 32},
                 "num_workers": 0},
        "optimizer": {"name": "adam", "lr": 0.003},
        "trainer": {"epochs": 1, "batch_size": 32, "log_every_n_steps": 1},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", "-r", str(tmp_path / "tiny.yaml"), "--out",
                 str(tmp_path / "run")]) == 0
    out, err = capfd.readouterr()
    for noise in ("GPU available", "TPU available", "Tip:", "litlogger", "litmodels",
                  "limit_val_batches", "Trainable params", "Epoch 0"):
        assert noise not in out + err, (noise, out, err)
    assert out.startswith("run directory: ")
