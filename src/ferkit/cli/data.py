"""``ferkit data check``: what a dataset holds, and what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ferkit.cli._options import DataDirOpt, TrainLabelOpt, ValLabelOpt, check_choice
from ferkit.errors import FerkitError


def _parse_options(pairs: list[str]) -> dict[str, object]:
    """``key=value`` strings → adapter options; values read as YAML scalars/lists."""
    import yaml

    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FerkitError(f"--option expects key=value, got {pair!r}")
        try:
            options[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            options[key.strip().replace("-", "_")] = value
    return options


def _output_format(format: str, output: str | None) -> str:
    """``--format`` (human/json), also spelt with the old ``--output``; a dataset format given
    to ``--format`` (its meaning before 0.1) gets a one-line pointer to ``--data-format``."""
    import sys

    if output is not None:
        print("note: `data check --output` is now --format (-f), as in every other command",
              file=sys.stderr)
        format = output
    if format not in ("human", "json"):
        from ferkit.data.registry import FORMATS

        if format in FORMATS:
            raise FerkitError(f"--format is the output format (human or json); give the dataset "
                              f"format with --data-format {format}")
    return check_choice(format, ("human", "json"))


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Inspect datasets (counts, duplicates, problems).",
                           no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @data_app.command("check")
    def check(
        path: Annotated[Path, typer.Argument(help="dataset file or folder")],
        data_format: Annotated[str | None, typer.Option(
            "--data-format",
            help="dataset format: fer2013, ferplus, rafdb, affectnet, folder, list "
                 "(default: detect from the path)")] = None,
        split: Annotated[list[str] | None, typer.Option(
            "--split", "-s", help="check only this split (repeatable)")] = None,
        label_order: Annotated[str | None, typer.Option(
            "--label-order",
            help="meaning of numeric labels/folders: a known order (dacl, rafdb, "
                 "rafdb_folders, fer2013, affectnet, ...) or comma-separated class names")] = None,
        data_dir: DataDirOpt = None,
        train_label: TrainLabelOpt = None,
        val_label: ValLabelOpt = None,
        option: Annotated[list[str] | None, typer.Option(
            "--option", "-O",
            help="adapter option key=value (repeatable), e.g. -O drop_train_duplicates=true, "
                 "-O label_mode=soft, -O classes=7")] = None,
        images: Annotated[bool, typer.Option(
            "--images/--no-images", help="decode every image file to find unreadable ones")
        ] = True,
        format: Annotated[str, typer.Option(
            "--format", "-f", help="output: human (table) or json")] = "human",
        output: Annotated[str | None, typer.Option(
            "--output", "-o", hidden=True, help="old name of --format")] = None,
    ) -> int:
        """Print counts per split and class, duplicates across splits, and problems found.

        Exit status: 0 when nothing is malformed, 1 when problems were found (unreadable
        images, unknown labels, bad lines), 2 when the dataset cannot be opened at all.

        Examples:

          ferkit data check ../shared/data/fer2013/fer2013.csv.gz

          ferkit data check data/raf-basic --data-format rafdb --format json

          ferkit data check data/dacl --data-format folder --label-order dacl

          ferkit data check data --train-label train.txt --val-label val.txt --label-order rafdb
        """
        from ferkit.data.check import check_dataset

        format = _output_format(format, output)
        options = _parse_options(option or [])
        if label_order is not None:
            options["label_order"] = (label_order if "," not in label_order
                                      else [n.strip() for n in label_order.split(",")])
        list_form = {"data_dir": data_dir, "train_label": train_label, "val_label": val_label}
        if any(v is not None for v in list_form.values()):
            data_format = data_format or "list"
            options.update({k: v for k, v in list_form.items() if v is not None})
        report = check_dataset(path, format=data_format, splits=split or None,
                               verify_images=images, **options)
        if format == "json":
            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(report.format_human())
        return 0 if report.ok else 1

    @data_app.command("cache")
    def cache(
        csv: Annotated[Path, typer.Argument(help="fer2013.csv[.gz], icml_face_data.csv or "
                                                 "train.csv")],
        out: Annotated[Path, typer.Argument(help="the .npz file to write")],
    ) -> None:
        """Write FER2013 as a compact uint8 .npz cache (opens in well under a second).

        The cache keeps every row in file order (FER+ labels still align) and opens with
        any FER2013 option: ferkit data check fer2013.npz.

        Examples:

          ferkit data cache ../shared/data/fer2013/fer2013.csv.gz fer2013.npz
        """
        from ferkit.data.fer2013 import fer2013_to_npz

        written = fer2013_to_npz(csv, out)
        print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
