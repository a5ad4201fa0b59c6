"""``ferkit evaluate`` and ``ferkit compare`` (wrap :mod:`ferkit.evaluation`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ferkit.cli._options import check_choice

DataOpt = Annotated[str, typer.Option("--data", "-d", help="dataset path (or 'fake' for a "
                                      "synthetic smoke-test set)")]
DataFormatOpt = Annotated[str | None, typer.Option(
    "--data-format", help="dataset format when it cannot be detected (fer2013, rafdb, …)")]
SplitOpt = Annotated[str, typer.Option("--split", help="split to evaluate: train, val, test")]
TtaOpt = Annotated[str | None, typer.Option("--tta", help="test-time augmentation: flip")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="human, json or quiet")]
OptionOpt = Annotated[list[str] | None, typer.Option(
    "--option", help="dataset adapter option key=value (repeatable)")]


def _open(data: str, data_format: str | None, split: str, options: list[str] | None):
    import yaml

    from ferkit.errors import FerkitError
    from ferkit.training.dataspec import open_split

    parsed = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FerkitError(f"--option expects key=value, got {item!r}")
        parsed[key] = yaml.safe_load(value)
    if data == "fake":
        return open_split({"format": "fake", "options": parsed}, split)
    return open_split({"format": data_format, "source": data, "options": parsed}, split)



def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        checkpoint: Annotated[str, typer.Argument(help="checkpoint dir (RUN/best) or 'default'")],
        data: DataOpt,
        data_format: DataFormatOpt = None,
        split: SplitOpt = "test",
        tta: TtaOpt = None,
        batch_size: Annotated[int, typer.Option("--batch-size", "-b")] = 64,
        device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1 …")] = "cpu",
        json_out: Annotated[Path | None, typer.Option(
            "--json", help="write the JSON report")] = None,
        confusion: Annotated[Path | None, typer.Option(
            "--confusion", help="write the confusion matrix: .png (plot) or .json")] = None,
        option: OptionOpt = None,
        format: FormatOpt = "human",
    ) -> None:
        """Accuracy, mean class accuracy, macro F1, per-class metrics and the confusion matrix.

        Examples:

          ferkit evaluate runs/fer/best --data fer2013.csv.gz --split test

          ferkit evaluate runs/fer/best --data fer2013.csv.gz --tta flip \\
            --json report.json --confusion cm.png

          ferkit evaluate default --data RAF-DB/basic --data-format rafdb --format json
        """
        from ferkit import atomic
        from ferkit.checkpoint import load_checkpoint
        from ferkit.evaluation import evaluate as run_evaluation

        check_choice(format)
        model = load_checkpoint(checkpoint, map_location=device)
        dataset = _open(data, data_format, split, option)
        report = run_evaluation(model, dataset, batch_size=batch_size, tta=tta, device=device,
                                meta={"checkpoint": checkpoint})
        if json_out is not None:
            atomic.write_text(json_out, report.to_json())
        if confusion is not None:
            if confusion.suffix.lower() == ".json":
                atomic.write_text(confusion, json.dumps({"label_names": list(report.label_names),
                                                 "confusion": [list(r) for r in
                                                               report.confusion]}, indent=2))
            else:
                report.save_confusion_png(confusion)
        if format == "json":
            print(report.to_json(), end="")
        elif format == "quiet":
            print(f"{report.accuracy:.4f}")
        else:
            print(report.to_table())

    @app.command()
    def compare(
        checkpoints: Annotated[list[str], typer.Argument(help="two or more checkpoint dirs")],
        data: DataOpt,
        data_format: DataFormatOpt = None,
        split: SplitOpt = "test",
        tta: TtaOpt = None,
        batch_size: Annotated[int, typer.Option("--batch-size", "-b")] = 64,
        device: Annotated[str, typer.Option("--device")] = "cpu",
        option: OptionOpt = None,
        format: FormatOpt = "human",
    ) -> None:
        """Evaluate several checkpoints on the same data and print one table.

        Examples:

          ferkit compare runs/a/best runs/b/best --data fer2013.csv.gz --split test

          ferkit compare runs/*/best --data RAF-DB/basic --format json
        """
        from ferkit.evaluation import compare as run_compare
        from ferkit.evaluation import comparison_table

        check_choice(format)
        dataset = _open(data, data_format, split, option)
        reports = run_compare(checkpoints, dataset, batch_size=batch_size, tta=tta,
                              device=device)
        if format == "json":
            print(json.dumps([r.to_dict() for r in reports], indent=2))
        elif format == "quiet":
            print("\n".join(f"{r.accuracy:.4f}" for r in reports))
        else:
            print(comparison_table(reports))
