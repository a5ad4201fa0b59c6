"""Run a recipe with Lightning's ``Trainer``: ``ferkit train`` wraps :func:`train`.

A run directory holds::

    RUN_DIR/recipe.yaml          the resolved recipe (every default filled in)
    RUN_DIR/best/, RUN_DIR/last/ ferkit checkpoints (model.safetensors + config.json with
                                 metrics and provenance, recipe included)
    RUN_DIR/checkpoints/last.ckpt  Lightning's full state, for --resume
    RUN_DIR/logs/                CSV (metrics.csv) and TensorBoard logs

``--resume`` continues from ``checkpoints/last.ckpt`` and ends with the same weights, bit
for bit, as a run that was never interrupted, also with DataLoader workers
(:mod:`ferkit.training.seeding`); ``metrics.csv`` keeps the rows logged up to that
checkpoint (the killed epoch's rows are logged again as it is replayed).  Every file is
written atomically, and an OS failure (disk full, no permission) ends the run with one line.

Example:
    >>> from ferkit.training import train                      # doctest: +SKIP
    >>> result = train("fer2013_resnet18", out_dir="runs/fer", data="fer2013.csv.gz")
    >>> result.best_dir                                         # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import importlib.util
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

import ferkit
from ferkit import atomic
from ferkit.atomic import make_dirs, os_error_message
from ferkit.data.base import FERDataset
from ferkit.errors import FerkitError
from ferkit.training.datamodule import FERDataModule
from ferkit.training.distributed import resolve_topology
from ferkit.training.module import FERModule
from ferkit.training.recipe import (
    Recipe,
    RecipeWarning,
    load_recipe,
    recipe_from_dict,
    run_warnings,
)

RECIPE_FILE = "recipe.yaml"
LIGHTNING_LAST = Path("checkpoints") / "last.ckpt"


@dataclass
class TrainResult:
    """Where a finished run left its files and what it measured."""

    run_dir: Path
    best_dir: Path | None
    last_dir: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)


class FerkitCheckpoint(Callback):
    """After each validation, write ``RUN_DIR/last`` and, when ``monitor`` improved,
    ``RUN_DIR/best`` in ferkit's format (usable by ``ferkit evaluate`` / ``Recognizer``)."""

    def __init__(self, run_dir: Path, recipe: Recipe, *, monitor: str = "val/acc") -> None:
        self.run_dir = Path(run_dir)
        self.recipe = recipe
        self.run_warnings = run_warnings(recipe)
        self.monitor = monitor
        self.mode = "min" if monitor.endswith("loss") else "max"
        self.best_score: float | None = None
        self.best_metrics: dict[str, float] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_metrics": self.best_metrics}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_metrics = dict(state_dict.get("best_metrics", {}))

    def on_validation_end(self, trainer: L.Trainer, pl_module: FERModule) -> None:
        if trainer.sanity_checking:
            return
        # Flush the logs with every checkpoint: a resumed run keeps the rows up to it.
        for logger in trainer.loggers:
            logger.save()
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("val/")}
        metrics.update(epoch=trainer.current_epoch, global_step=trainer.global_step)
        if trainer.is_global_zero:
            self._save(pl_module, self.run_dir / "last", metrics)
        score = metrics.get(self.monitor)
        if score is None:
            return
        better = (self.best_score is None
                  or (score > self.best_score if self.mode == "max" else score < self.best_score))
        if better:
            self.best_score = score
            self.best_metrics = metrics
            if trainer.is_global_zero:
                self._save(pl_module, self.run_dir / "best", metrics)

    def _save(self, pl_module: FERModule, directory: Path, metrics: dict[str, float]) -> None:
        data = self.recipe.data
        provenance = {
            "recipe": self.recipe.to_dict(),
            "dataset": {"format": data.format, "source": data.source,
                        "train_split": data.train_split, "val_split": data.val_split},
            "trained_with": f"ferkit {ferkit.__version__}, torch {torch.__version__}",
            **({"warnings": list(self.run_warnings)} if self.run_warnings else {}),
            "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
        }
        ferkit.save_checkpoint(pl_module.model, directory,
                               metrics={(f"{data.val_split}_{k[4:]}" if k.startswith("val/")
                                         else k): v for k, v in metrics.items()},
                               provenance=provenance)


def resolve_precision(recipe: Recipe) -> str:
    """``auto`` → ``bf16-mixed`` on a CUDA device that supports it, else ``32-true``."""
    if recipe.trainer.precision != "auto":
        return recipe.trainer.precision
    on_gpu = torch.cuda.is_available() and recipe.trainer.accelerator in ("auto", "gpu", "cuda")
    if on_gpu and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed" if on_gpu else "32-true"


def build_trainer(recipe: Recipe, run_dir: Path, *, callbacks: Sequence[Callback] = (),
                  resume_step: int | None = None, verbose: bool = False,
                  ) -> tuple[L.Trainer, FerkitCheckpoint]:
    """A Lightning ``Trainer`` configured from ``recipe.trainer``: strategy as-is, devices
    and nodes completed from a torchrun/SLURM launcher
    (:func:`~ferkit.training.distributed.resolve_topology`).  ``resume_step``: the global
    step of the checkpoint a resumed run continues from (``metrics.csv`` keeps rows up to it).

    The progress bar (rich, on stderr) shows when ``trainer.progress_bar`` is set and the
    command line allows it (:func:`ferkit.progress.wanted`: not ``-q``, stderr a terminal);
    the model summary only with ``verbose``.
    """
    from ferkit.progress import wanted

    t = recipe.trainer
    show_bar = wanted(t.progress_bar)
    loggers: list[Any] = [_ResumableCSVLogger(run_dir, name="logs", version="",
                                              keep_until_step=resume_step)]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(L.pytorch.loggers.TensorBoardLogger(run_dir, name="logs", version=""))
    ferkit_ckpt = FerkitCheckpoint(run_dir, recipe, monitor=t.monitor)
    # Under torchrun/SLURM, the launcher's layout (docs/scale.md: training on many nodes).
    devices, num_nodes = resolve_topology(t.devices, t.num_nodes)
    # One rolling file, rewritten after every validation: the state --resume continues from.
    lightning_ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last",
                                     monitor=None, save_top_k=1, enable_version_counter=False,
                                     save_on_train_epoch_end=False)
    all_callbacks: list[Callback] = [ferkit_ckpt, lightning_ckpt, *callbacks]
    if show_bar:
        all_callbacks.append(L.pytorch.callbacks.RichProgressBar(
            refresh_rate=10, console_kwargs={"stderr": True}))
    trainer = L.Trainer(
        max_epochs=t.epochs,
        accelerator=t.accelerator,
        devices=devices,
        strategy=t.strategy,
        num_nodes=num_nodes,
        precision=resolve_precision(recipe),
        deterministic=t.deterministic,
        gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        log_every_n_steps=t.log_every_n_steps,
        logger=loggers,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=show_bar,
        enable_model_summary=verbose,
        # The sanity check would consume RNG before epoch 0 but not on resume.
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )
    return trainer, ferkit_ckpt


def train(
    recipe: str | Path | Recipe | Mapping[str, Any],
    *,
    out_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    data: str | Path | None = None,
    resume: bool = False,
    datasets: Mapping[str, FERDataset] | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = False,
) -> TrainResult:
    """Train a model from a recipe; returns the run's checkpoints and final metrics.

    Args:
        recipe: a shipped recipe name, a YAML path, a :class:`Recipe` or its dict.
            With ``resume=True`` it may be ``None``-like (``""``): the run's saved
            ``recipe.yaml`` is used.
        out_dir: the run directory (default ``runs/<recipe name>``).
        overrides: ``key=value`` dotted overrides (``trainer.epochs=5``).
        data: dataset path, shorthand for ``data.source=PATH``.
        resume: continue the run in ``out_dir`` from its last epoch checkpoint.
        datasets: ready datasets by stage (``train``/``val``) instead of ``recipe.data``.
        callbacks: extra Lightning callbacks.
        verbose: keep Lightning's own info lines (accelerator banners, tips, "fit
            stopped") and its model summary; off by default, they say nothing ferkit's
            summary does not.
    """
    run_dir, resolved = _resolve(recipe, out_dir, overrides, data, resume)
    ckpt_path = None
    if resume:
        ckpt_path = run_dir / LIGHTNING_LAST
        if not ckpt_path.is_file():
            raise FerkitError(
                f"cannot resume: {ckpt_path} does not exist (the run stopped before its first "
                "epoch ended, or --out points elsewhere); start it again without --resume"
            )
    make_dirs(run_dir)
    notes = run_warnings(resolved)
    for note in notes:
        # Loud on purpose: such a run cannot reach the numbers its recipe cites.
        warnings.warn(note, RecipeWarning, stacklevel=2)
    atomic.write_text(run_dir / RECIPE_FILE,
                      f"# resolved recipe of this run (ferkit {ferkit.__version__})\n"
                      + "".join(f"# WARNING: {note}\n" for note in notes) + resolved.to_yaml())
    L.seed_everything(resolved.trainer.seed, workers=True, verbose=False)
    module = FERModule(resolved)
    cfg = module.model.ferkit_config
    datamodule = FERDataModule(
        data_config=cfg.data, label_names=cfg.label_names,
        spec=resolved.data, augment=resolved.augment,
        batch_size=resolved.trainer.batch_size, seed=resolved.trainer.seed, datasets=datasets,
    )
    with _lightning_info(verbose):
        trainer, ferkit_ckpt = build_trainer(
            resolved, run_dir, callbacks=callbacks,
            resume_step=_checkpoint_step(ckpt_path) if ckpt_path is not None else None,
            verbose=verbose)
    with warnings.catch_warnings(), _lightning_info(verbose):
        # Lightning's advice about num_workers on 2-core machines is noise in a CLI run.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning vs torch 2.14
        # FERModule's own batch hook (channels_last) is the intended one: not news.
        warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except OSError as exc:  # a full disk or a folder gone read-only while training
            where = exc.filename or run_dir
            raise FerkitError(f"training stopped: {os_error_message(exc, where)}; "
                              f"then continue with `ferkit train --resume --out {run_dir}`"
                              ) from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = run_dir / "best"
    last = run_dir / "last"
    return TrainResult(run_dir=run_dir, best_dir=best if best.is_dir() else None,
                       last_dir=last if last.is_dir() else None, metrics=metrics,
                       best_metrics=dict(ferkit_ckpt.best_metrics))


@contextlib.contextmanager
def _lightning_info(verbose: bool):
    """Lightning's INFO lines ("GPU available: …", "💡 Tip: … try installing litlogger",
    "limit_val_batches=1.0 was configured …") muted for the block unless ``verbose``;
    its warnings still show."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _resolve(recipe, out_dir, overrides, data, resume) -> tuple[Path, Recipe]:
    overrides = list(overrides)
    if data is not None:
        overrides.append(f"data.source={os.fspath(data)}")
    if resume and not recipe:
        if out_dir is None:
            raise FerkitError("--resume needs --out RUN_DIR (the directory of the run)")
        saved = Path(out_dir) / RECIPE_FILE
        if not saved.is_file():
            raise FerkitError(f"cannot resume: {saved} not found; is {out_dir} a ferkit run?")
        resolved = load_recipe(saved, overrides)
    elif isinstance(recipe, Recipe):
        resolved = load_recipe(recipe.to_dict(), overrides) if overrides else recipe
    elif isinstance(recipe, Mapping):
        resolved = load_recipe(dict(recipe), overrides)
    else:
        resolved = load_recipe(recipe, overrides)
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / resolved.name
    if resume and recipe and (run_dir / RECIPE_FILE).is_file():
        saved = recipe_from_dict(_strip_comment(run_dir / RECIPE_FILE))
        if saved.to_dict() != resolved.to_dict():
            raise FerkitError(
                f"--resume: the recipe differs from the one {run_dir} was started with; "
                f"omit --recipe to continue with {run_dir / RECIPE_FILE}"
            )
    if not resume and (run_dir / LIGHTNING_LAST).exists():
        raise FerkitError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    return run_dir, resolved


def _strip_comment(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _checkpoint_step(path: Path) -> int | None:
    """The global step a Lightning checkpoint was saved at (``None`` if unreadable)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                   ["global_step"])
    except Exception:  # Lightning itself reports an unreadable checkpoint
        return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """``last.ckpt`` through :func:`ferkit.atomic.atomic_path`: the temporary sits beside the
    file (Lightning's own goes through the system temp folder, perhaps another disk, and
    is copied over the target), and a full disk is a one-line error."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("ferkit's checkpoint writer takes no storage_options")
        with atomic.atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class _HistoryWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv``; on resume this one keeps
    its rows up to ``keep_until_step`` and appends after them."""

    def __init__(self, log_dir: str, keep_until_step: int | None) -> None:
        self._keep_until_step = keep_until_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self._keep_until_step is None or not path.is_file():
            super()._check_log_dir_exists()
            return
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if _step(r) <= self._keep_until_step]
        self.metrics_keys = sorted(keys)
        with atomic.atomic_open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return float("inf")


class _ResumableCSVLogger(L.pytorch.loggers.CSVLogger):
    def __init__(self, *args: Any, keep_until_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_until_step = keep_until_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HistoryWriter(self.log_dir, self._keep_until_step)
        return self._experiment
