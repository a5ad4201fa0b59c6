"""Training engine: learns a synthetic task, resumes exactly after a kill, stops on NaN."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from ferkit.checkpoint import read_config, read_state_dict
from ferkit.data import FakeFER
from ferkit.errors import FerkitError
from ferkit.evaluation import evaluate
from ferkit.losses import LOSSES
from ferkit.training import NonFiniteLossError, train
from ferkit.weights import load_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"


def tiny_recipe(**trainer) -> dict:
    """A model and task small enough to learn in a few seconds on one CPU thread."""
    return {
        "name": "tiny",
        "model": {"name": "baseline", "kwargs": {"backbone": "test_convnext"},
                  "input_size": [1, 32, 32], "mean": [0.5], "std": [0.5]},
        "data": {"format": "fake", "options": {"size": 192, "image_size": 32},
                 "num_workers": 0},
        "optimizer": {"name": "adam", "lr": 0.003},
        "scheduler": {"name": "step", "step_size": 1, "gamma": 0.5},
        "trainer": {"epochs": 2, "batch_size": 32, "progress_bar": False,
                    "log_every_n_steps": 2, **trainer},
    }


pytestmark = pytest.mark.usefixtures("one_thread")


def test_trains_synthetic_task_above_chance(tmp_path):
    result = train(tiny_recipe(), out_dir=tmp_path / "run")
    assert result.metrics["val/acc"] >= 0.6  # chance is 1/7
    assert result.best_metrics["val/acc"] >= 0.6
    # ferkit checkpoints carry metrics and the recipe; the best one really is that good.
    cfg = read_config(result.best_dir)
    assert cfg.provenance["recipe"]["name"] == "tiny"
    assert cfg.metrics["val_acc"] == pytest.approx(result.best_metrics["val/acc"])
    model = load_checkpoint(result.best_dir)
    report = evaluate(model, FakeFER(96, image_size=32, seed=5), batch_size=32)
    assert report.accuracy >= 0.6
    assert (tmp_path / "run" / "recipe.yaml").is_file()
    assert "val/acc" in (tmp_path / "run" / "logs" / "metrics.csv").read_text()
    # The Lightning checkpoint alone rebuilds the module: the recipe is its hyperparameters.
    from ferkit.training import FERModule
    from ferkit.training.recipe import load_recipe

    rebuilt = FERModule.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt",
                                             map_location="cpu")
    assert rebuilt.recipe == load_recipe(tiny_recipe())
    last = load_checkpoint(result.last_dir)
    for key, value in last.state_dict().items():
        assert torch.equal(rebuilt.model.state_dict()[key], value), key
    # A second run into the same directory must not silently overwrite it.
    with pytest.raises(FerkitError, match="--resume"):
        train(tiny_recipe(), out_dir=tmp_path / "run")


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    import lightning as L
    from ferkit.training import train
    sys.path.insert(0, {tests!r})
    from test_training import tiny_recipe

    class KillMidEpoch(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash: no cleanup, no final save

    train(tiny_recipe(epochs=2), out_dir={out!r}, overrides={overrides!r},
          callbacks=[KillMidEpoch()])
""")

#: Two DataLoader workers (as the recipes use) and random augmentation: each sample's
#: randomness must come from (seed, epoch, sample), not from the worker that loads it.
_WORKERS = ["data.options.size=128", "data.num_workers=2", "augment.hflip=0.5",
            "augment.rotation=15", "augment.geometric_p=1.0", "augment.erasing_p=0.5"]


@pytest.mark.parametrize("overrides", [
    pytest.param(["data.options.size=128"], id="0-workers"),
    pytest.param(_WORKERS, id="2-workers-augmented", marks=pytest.mark.slow),
])
def test_resume_after_kill_equals_uninterrupted(tmp_path, overrides):
    reference = train(tiny_recipe(epochs=2), out_dir=tmp_path / "ref", overrides=overrides)

    run = tmp_path / "killed"
    script = _KILLED_RUN.format(tests=str(Path(__file__).parent), out=str(run),
                                overrides=overrides)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert read_config(run / "last").metrics["epoch"] == 0  # stopped inside epoch 1

    resumed = train("", out_dir=run, resume=True)
    ref_state = read_state_dict(reference.last_dir / "model.safetensors")
    new_state = read_state_dict(resumed.last_dir / "model.safetensors")
    assert ref_state.keys() == new_state.keys()
    for key, value in ref_state.items():
        torch.testing.assert_close(new_state[key], value, rtol=0, atol=0, msg=key)
    assert resumed.metrics["val/acc"] == reference.metrics["val/acc"]
    assert resumed.metrics["val/loss"] == pytest.approx(reference.metrics["val/loss"], abs=0)
    # logs/metrics.csv holds the whole history, as the uninterrupted run's does.
    assert _metrics_rows(run) == _metrics_rows(tmp_path / "ref")


def _metrics_rows(run: Path) -> list[dict[str, str]]:
    import csv

    with (run / "logs" / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["epoch"] for r in rows} == {"0", "1"}
    return rows


def test_workers_load_the_same_samples_after_a_restart():
    """What resume needs from the loader, bounded: with the recipes' 2 persistent workers
    and random augmentation, epoch 2 loads the same tensors whether the loader ran epochs 0
    and 1 first or was created fresh at epoch 2 (as after --resume)."""
    import random

    import numpy as np
    from lightning.fabric.utilities.data import _set_sampler_epoch

    from ferkit.config import DataConfig
    from ferkit.training.datamodule import FERDataModule

    def loader():
        dm = FERDataModule(
            data_config=DataConfig(input_size=(1, 32, 32), mean=(0.5,), std=(0.5,)),
            label_names=ferkit_labels(), spec={"num_workers": 2}, batch_size=8, seed=7,
            augment={"hflip": 0.5, "rotation": 20, "geometric_p": 1.0, "erasing_p": 0.5},
            datasets={"train": FakeFER(24, image_size=32, seed=3),
                      "val": FakeFER(8, image_size=32, seed=4)})
        dm.setup("fit")
        return dm.train_dataloader()

    def epoch(dl, number):
        # What Lightning and FERModule.on_train_epoch_start do before each epoch.
        _set_sampler_epoch(dl, number)
        random.seed(number)
        np.random.seed(number)
        torch.manual_seed(number)
        return [(x.clone(), y.clone()) for x, y in dl]

    running = loader()
    first, _, third = (epoch(running, e) for e in range(3))
    restarted = epoch(loader(), 2)
    for (x, y), (x2, y2) in zip(third, restarted, strict=True):
        assert torch.equal(y, y2)
        assert torch.equal(x, x2)
    # ... and the epochs really differ (order and augmentation are drawn per epoch).
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, third, strict=True))


def ferkit_labels() -> tuple[str, ...]:
    from ferkit.labels import SEVEN

    return SEVEN


class ToyCenterLoss(nn.Module):
    """A centre loss like Wen et al.'s: mean squared distance to the class centre."""

    def __init__(self, num_classes: int, feat_dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(num_classes, feat_dim))
        self.scale = scale

    def forward(self, embedding, target):
        return self.scale * (embedding - self.centers[target]).pow(2).sum(1).mean() / 2

    def from_output(self, output, target):
        return self(output.embedding, target)


class ExplodingLoss(nn.Module):
    def __init__(self, at_call: int = 3) -> None:
        super().__init__()
        self.calls = 0
        self.at_call = at_call

    def forward(self, embedding, target):
        self.calls += 1
        return embedding.sum() * (float("nan") if self.calls == self.at_call else 0.0)

    def from_output(self, output, target):
        return self(output.embedding, target)


LOSSES.register("toy_center", ToyCenterLoss)
LOSSES.register("exploding", ExplodingLoss)


def test_center_loss_gets_its_own_unscheduled_param_group(tmp_path):
    from ferkit.training import FERModule

    recipe = tiny_recipe(epochs=2)
    recipe["losses"] = [
        {"name": "cross_entropy"},
        {"name": "toy_center", "weight": 0.01, "kwargs": {"scale": 2.0},
         "optimizer": {"lr": 0.5, "momentum": 0.0, "weight_decay": 0.0}},
    ]
    seen = {}

    class Record(__import__("lightning").Callback):
        def on_train_end(self, trainer, module):
            seen["groups"] = [(g["name"], g["lr"]) for g in trainer.optimizers[0].param_groups]
            seen["centers"] = module.criterion.terms["toy_center"].centers.detach().clone()

    result = train(recipe, out_dir=tmp_path / "run", callbacks=[Record()])
    # Main group decays ×0.5 per epoch (2 epochs -> 0.003*0.25); the centres keep lr 0.5,
    # as DACL's separate SGD for the centres does.
    assert seen["groups"] == [("main", pytest.approx(0.003 * 0.25)),
                              ("loss/toy_center", 0.5)]
    assert seen["centers"].abs().sum() > 0  # the centres were trained
    assert "train/toy_center" in (result.run_dir / "logs" / "metrics.csv").read_text()
    module = FERModule(recipe)
    assert module.criterion.terms["toy_center"].centers.shape == (7, 64)  # feat_dim inferred


def test_nan_loss_stops_with_step_and_term(tmp_path):
    recipe = tiny_recipe(epochs=1)
    recipe["losses"] = [{"name": "cross_entropy"}, {"name": "exploding", "weight": 1.0}]
    with pytest.raises(NonFiniteLossError,
                       match=r"global step 2 \(epoch 0\): exploding=nan\. Lower optimizer.lr"):
        train(recipe, out_dir=tmp_path / "run")


def test_unknown_or_missing_aux_loss_is_a_clear_error(tmp_path):
    from ferkit.training import FERModule

    recipe = tiny_recipe()
    recipe["losses"] = [{"name": "cross_entropy"}, {"name": "centre"}]
    with pytest.raises(FerkitError, match=r"unknown loss 'centre'\. Did you mean 'center'.*"
                                          r"Available: affinity, center, cross_entropy, "):
        FERModule(recipe)
    recipe["losses"] = [{"name": "center", "kwargs": {"centre_update": "sideways"}}]
    with pytest.raises(FerkitError, match="loss 'center': bad options .*centre_update must be"):
        FERModule(recipe)
    LOSSES.register("no_from_output", nn.Identity)
    recipe["losses"] = [{"name": "no_from_output"}]
    with pytest.raises(FerkitError, match=r"Identity\) has no from_output\(output, target\)"):
        FERModule(recipe)


def test_deprecated_register_aux_loss_still_trains_a_term():
    from ferkit.training import FERModule
    from ferkit.training.losses import AuxLoss, register_aux_loss

    class Plain(nn.Module):  # an old-style loss: forward only, inputs said beside it
        def __init__(self, num_classes: int, feat_dim: int) -> None:
            super().__init__()
            self.centers = nn.Parameter(torch.ones(num_classes, feat_dim))

        def forward(self, embedding, target):
            return (embedding - self.centers[target]).pow(2).sum(1).mean()

    with pytest.warns(DeprecationWarning, match="LOSSES.register"):
        register_aux_loss("old_style", AuxLoss(Plain, lambda out, target: (out.embedding,
                                                                           target)))
    recipe = tiny_recipe()
    recipe["losses"] = [{"name": "cross_entropy"}, {"name": "old_style", "weight": 0.5}]
    module = FERModule(recipe)
    term = module.criterion.terms["old_style"]
    out = module.model(torch.zeros(2, 1, 32, 32))
    target = torch.tensor([0, 3])
    _, terms = module.criterion(out, target)
    expected = 0.5 * (out.embedding - 1).pow(2).sum(1).mean()
    assert torch.allclose(terms["old_style"], expected)
    assert term.loss.centers.shape == (7, 64)  # num_classes and feat_dim filled in


def test_model_with_class_subset_trains_on_mapped_labels(tmp_path):
    recipe = tiny_recipe(epochs=1)
    recipe["model"]["label_names"] = ["happy", "sad", "anger"]
    result = train(recipe, out_dir=tmp_path / "run")
    cfg = read_config(result.best_dir)
    assert cfg.label_names == ("happy", "sad", "anger")
    # Validation saw only the three classes: FakeFER draws 7 classes uniformly.
    model = load_checkpoint(result.best_dir)
    report = evaluate(model, FakeFER(70, image_size=32, seed=3))
    assert report.num_samples + report.excluded == 70
    assert report.excluded > 30


class LoggedFakeFER(FakeFER):
    """FakeFER that appends every index it loads to ``<folder>/rank<R>-epoch<E>.txt``."""

    def __init__(self, *args, folder: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder = folder
        self.epoch = 0

    def __getitem__(self, index):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        with (self.folder / f"rank{rank}-epoch{self.epoch}.txt").open("a") as log:
            log.write(f"{index}\n")
        return super().__getitem__(index)


class RecordRanks(L.Callback):
    """Per rank: tells the logged dataset the epoch; saves the final weights."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_epoch_start(self, trainer, module):
        trainer.datamodule.splits["train"].epoch = trainer.current_epoch

    def on_train_end(self, trainer, module):
        torch.save(module.model.state_dict(), self.folder / f"rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    """Multi-process DDP needs nothing ferkit-specific (trainer.devices/strategy); each rank
    trains on its own half of every epoch and both end with the same weights."""
    logs = tmp_path / "logs"
    logs.mkdir()
    datasets = {"train": LoggedFakeFER(192, image_size=32, seed=0, folder=logs),
                "val": FakeFER(96, image_size=32, seed=5)}
    result = train(tiny_recipe(epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn"),
                   out_dir=tmp_path / "run", datasets=datasets, callbacks=[RecordRanks(logs)])
    assert read_config(result.best_dir).metrics["val_acc"] >= 0.6
    for epoch in (0, 1):
        seen = [[int(i) for i in (logs / f"rank{r}-epoch{epoch}.txt").read_text().split()]
                for r in (0, 1)]
        assert len(seen[0]) == len(seen[1]) == 96  # 192 samples split evenly
        assert not set(seen[0]) & set(seen[1])  # disjoint: no sample trained on twice
        assert set(seen[0]) | set(seen[1]) == set(range(192))
    final = [torch.load(logs / f"rank{r}.pt") for r in (0, 1)]
    assert final[0].keys() == final[1].keys()
    for key in final[0]:
        assert torch.equal(final[0][key], final[1][key]), key
    # The checkpoint rank 0 wrote holds those weights.
    saved = read_state_dict(result.last_dir / "model.safetensors")
    assert all(torch.equal(saved[k], final[0][k]) for k in saved)


@pytest.mark.slow
def test_torchrun_launch_takes_the_launcher_layout(tmp_path):
    """`torchrun --nproc-per-node 2 -m ferkit train` with no --devices: both processes join
    one DDP run (Lightning logs MEMBER: 2/2) and rank 0 writes the checkpoints."""
    import yaml

    recipe = tiny_recipe(epochs=2, accelerator="cpu")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "ferkit", "train", "-r", str(tmp_path / "tiny.yaml"), "--out",
         str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log
    assert read_config(tmp_path / "run" / "best").metrics["val_acc"] > 1 / 7
    assert log.count("best checkpoint:") == 2  # each rank reports the same run directory


def test_launcher_layout_fills_devices_and_nodes():
    from ferkit.training.distributed import launcher_topology, resolve_topology

    assert launcher_topology({}) is None
    assert resolve_topology("auto", 1, {}) == ("auto", 1)
    torchrun = {"TORCHELASTIC_RUN_ID": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}
    assert resolve_topology("auto", 1, torchrun) == (4, 2)
    assert resolve_topology(4, 2, torchrun) == (4, 2)
    with pytest.raises(FerkitError, match="torchrun started 4 process"):
        resolve_topology(2, 1, torchrun)
    slurm = {"SLURM_NTASKS": "6", "SLURM_NNODES": "3", "SLURM_NTASKS_PER_NODE": "2(x3)",
             "SLURM_JOB_NAME": "train"}
    assert resolve_topology("auto", 1, slurm) == (2, 3)
    assert resolve_topology([0, 1], 3, slurm) == ([0, 1], 3)
    interactive = {**slurm, "SLURM_JOB_NAME": "bash"}
    assert resolve_topology("auto", 1, interactive) == ("auto", 1)


def test_cli_trains_from_dsan_style_label_lists(tmp_path, capsys):
    """`ferkit train --data-dir D --train-label T --val-label V`, as DSAN's train.py takes them."""
    import yaml

    from ferkit.cli import main

    data = tmp_path / "data"
    source = FakeFER(96, image_size=32, seed=3)
    val = FakeFER(48, image_size=32, seed=4)
    for name, dataset in (("train", source), ("val", val)):
        (data / name).mkdir(parents=True)
        lines = []
        for i in range(len(dataset)):
            dataset.load_image(i).save(data / name / f"{i}.png")
            lines.append(f"{name}/{i}.png {dataset.classes[dataset._local[i]]}")
        (data / f"{name}.txt").write_text("\n".join(lines) + "\n")
    recipe = tiny_recipe(epochs=1)
    recipe["data"] = {"num_workers": 0}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    argv = ["train", "-r", str(tmp_path / "tiny.yaml"), "--data-dir", str(data),
            "--train-label", "train.txt", "--val-label", "val.txt"]
    assert main([*argv, "--print-recipe"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)["data"]
    assert printed["format"] == "list" and printed["source"] == str(data)
    assert printed["options"] == {"train_label": "train.txt", "val_label": "val.txt"}
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    cfg = read_config(tmp_path / "run" / "best")
    assert cfg.provenance["recipe"]["data"]["format"] == "list"
    assert main(["train", "-r", str(tmp_path / "tiny.yaml"), "--train-label", "t.txt"]) == 2
    assert "needs --data-dir DIR" in capsys.readouterr().err


def test_os_failures_while_training_are_one_line(tmp_path):
    import errno

    import lightning as L

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(FerkitError, match=f"cannot create the folder {blocker}/run"):
        train(tiny_recipe(epochs=1), out_dir=blocker / "run")

    class DiskFull(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.ckpt"))

    with pytest.raises(FerkitError) as info:
        train(tiny_recipe(epochs=1), out_dir=tmp_path / "run", callbacks=[DiskFull()],
              overrides=["data.options.size=32"])
    message = str(info.value)
    assert message.startswith(f"training stopped: cannot write {tmp_path / 'x.ckpt'}: No space")
    assert "free some disk space" in message and "--resume" in message
    assert "\n" not in message


def test_run_without_expected_pretrained_weights_warns_and_records_it(tmp_path):
    from ferkit.training.recipe import RecipeWarning

    recipe = tiny_recipe(epochs=1)
    recipe["model"]["expected_weights"] = "MS-Celeb-1M ResNet-18 (resnet18_msceleb.pth)"
    with pytest.warns(RecipeWarning, match=r"expects pretrained weights \(MS-Celeb-1M"):
        result = train(recipe, out_dir=tmp_path / "run", overrides=["data.options.size=64"])
    header = (tmp_path / "run" / "recipe.yaml").read_text().splitlines()[1]
    assert header.startswith("# WARNING: recipe 'tiny' expects pretrained weights")
    (note,) = read_config(result.last_dir).provenance["warnings"]
    assert "starts from random weights" in note
