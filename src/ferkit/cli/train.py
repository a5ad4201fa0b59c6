"""``ferkit train``: run a recipe with Lightning (wraps :func:`ferkit.training.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ferkit.cli._options import DataDirOpt, QuietOpt, TrainLabelOpt, ValLabelOpt


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        recipe: Annotated[str | None, typer.Option(
            "--recipe", "-r", help="shipped recipe name (see --list) or a .yaml file")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", "-s", help="override a recipe key: trainer.epochs=5 (repeatable)")] = None,
        data: Annotated[str | None, typer.Option(
            "--data", "-d", help="dataset path (same as --set data.source=PATH)")] = None,
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="run directory (default runs/<recipe name>)")] = None,
        resume: Annotated[bool, typer.Option(
            "--resume", help="continue the run in --out from its last epoch checkpoint")] = False,
        print_recipe: Annotated[bool, typer.Option(
            "--print-recipe", help="print the resolved recipe and exit")] = False,
        list_: Annotated[bool, typer.Option(
            "--list", help="list shipped recipes and exit")] = False,
        data_dir: DataDirOpt = None,
        train_label: TrainLabelOpt = None,
        val_label: ValLabelOpt = None,
        devices: Annotated[str | None, typer.Option(
            help="devices per node: a count (2), a list (0,1) or auto (same as --set "
                 "trainer.devices=...; under torchrun/SLURM: the launcher's)")] = None,
        num_nodes: Annotated[int | None, typer.Option(
            "--num-nodes", min=1, help="nodes (same as --set trainer.num_nodes=N; under "
                                       "torchrun/SLURM: the launcher's)")] = None,
        quiet: QuietOpt = False,
        verbose: Annotated[bool, typer.Option(
            "--verbose", "-v", help="also Lightning's own messages and model summary")
        ] = False,
    ) -> None:
        """Train a model from a recipe; writes best/ and last/ checkpoints into the run dir.

        Examples:

          ferkit train --list

          ferkit train --recipe fer2013_dsan --data fer2013.csv.gz --out runs/fer

          ferkit train -r dan_rafdb -d RAF-DB/basic --devices 2

          torchrun --nnodes 2 --nproc-per-node 4 … -m ferkit train -r dan_rafdb -d RAF-DB/basic

          ferkit train --out runs/fer --resume

          ferkit train -r dsan_rafdb --data-dir data --train-label train.txt --val-label val.txt
        """
        from ferkit.errors import FerkitError
        from ferkit.training.recipe import list_recipes, load_recipe, recipe_path

        if list_:
            for name in list_recipes():
                first = recipe_path(name).read_text().splitlines()[0].lstrip("# ")
                print(f"{name:<24} {first}")
            return
        overrides = list(set_ or [])
        if devices is not None:
            overrides.append(f"trainer.devices={_devices_value(devices)}")
        if num_nodes is not None:
            overrides.append(f"trainer.num_nodes={num_nodes}")
        if data_dir or train_label or val_label:
            overrides += label_list_overrides(data_dir or data, train_label, val_label)
            data = None
        if print_recipe:
            if recipe is None:
                raise FerkitError("--print-recipe needs --recipe")
            if data:
                overrides.append(f"data.source={data}")
            print(load_recipe(recipe, overrides).to_yaml(), end="")
            return
        if recipe is None and not resume:
            raise FerkitError("give --recipe NAME|file.yaml (or --out RUN_DIR --resume); "
                              "`ferkit train --list` shows the shipped recipes")
        from ferkit.progress import progress_display
        from ferkit.training.engine import train as run_training

        with progress_display(quiet=quiet):
            result = run_training(recipe or "", out_dir=out, overrides=overrides, data=data,
                                  resume=resume, verbose=verbose)
        print(f"run directory: {result.run_dir}")
        if result.best_dir is not None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in result.best_metrics.items()
                              if k.startswith("val/"))
            print(f"best checkpoint: {result.best_dir}  ({shown})")
        if result.last_dir is not None:
            print(f"last checkpoint: {result.last_dir}")


def label_list_overrides(data_dir: str | None, train_label: str | None,
                         val_label: str | None) -> list[str]:
    """Recipe overrides for the label-list form (``--data-dir D --train-label T --val-label V``)."""
    from ferkit.errors import FerkitError

    if not data_dir or not train_label:
        raise FerkitError("the label-list form needs --data-dir DIR and --train-label FILE "
                          "(and usually --val-label FILE); lines read 'relative/path label'")
    overrides = ["data.format=list", f"data.source={data_dir}",
                 f"data.options.train_label={train_label}"]
    if val_label:
        overrides.append(f"data.options.val_label={val_label}")
    return overrides


def _devices_value(text: str) -> str:
    """``--devices`` as a recipe value: ``2`` (a count), ``[0, 1]`` (ids) or ``auto``."""
    from ferkit.errors import FerkitError

    text = text.strip()
    if text == "auto" or text.isdigit() or text == "-1":
        return text
    ids = [part.strip() for part in text.strip("[]").split(",")]
    if not all(part.isdigit() for part in ids):
        raise FerkitError(f"--devices must be a count (2), device ids (0,1) or auto, "
                          f"not {text!r}")
    return "[" + ", ".join(ids) + "]"
