"""``ferkit evaluate`` and ``ferkit compare`` (wrap :mod:`ferkit.evaluation`)."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated

import typer

from ferkit.cli._options import DeviceOpt, QuietOpt, check_choice

DataOpt = Annotated[str, typer.Option("--data", "-d", help="dataset path (or 'fake' for a "
                                      "synthetic smoke-test set)")]
DataFormatOpt = Annotated[str | None, typer.Option(
    "--data-format", help="dataset format when it cannot be detected (fer2013, rafdb, …)")]
SplitOpt = Annotated[str, typer.Option("--split", help="split to evaluate: train, val, test")]
TtaOpt = Annotated[str | None, typer.Option("--tta", help="test-time augmentation: flip")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="human, json or quiet")]
OptionOpt = Annotated[list[str] | None, typer.Option(
    "--option", help="dataset adapter option key=value (repeatable)")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b")]


@dataclass(frozen=True)
class EvaluationData:
    """Which data to evaluate on, and how: the options ``evaluate`` and ``compare`` share."""

    data: str
    data_format: str | None
    split: str
    tta: str | None
    batch_size: int
    device: str


#: EvaluationData's command-line declaration (same order), default values last.
_EVALUATION_OPTIONS = (("data", DataOpt, inspect.Parameter.empty),
                       ("data_format", DataFormatOpt, None), ("split", SplitOpt, "test"),
                       ("tta", TtaOpt, None), ("batch_size", BatchSizeOpt, 64),
                       ("device", DeviceOpt, "auto"))


def with_evaluation_data(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with the :class:`EvaluationData` options declared once: they follow its
    positional argument on the command line and reach it as its ``evaluation`` argument."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
           if p.name != "evaluation"]
    shared = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=annotation, default=default)
              for name, annotation, default in _EVALUATION_OPTIONS]
    names = [f.name for f in fields(EvaluationData)]

    @functools.wraps(command)
    def run(**kwargs):
        evaluation = EvaluationData(**{name: kwargs.pop(name) for name in names})
        return command(evaluation=evaluation, **kwargs)

    run.__signature__ = inspect.Signature([*own[:1], *shared, *own[1:]])
    return run


def _open(data: str, data_format: str | None, split: str, options: list[str] | None):
    import yaml

    from ferkit.data.spec import open_split
    from ferkit.errors import FerkitError

    parsed = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FerkitError(f"--option expects key=value, got {item!r}")
        parsed[key] = yaml.safe_load(value)
    from ferkit.progress import task

    with task(f"reading {data} ({split})"):
        if data == "fake":
            return open_split({"format": "fake", "options": parsed}, split)
        return open_split({"format": data_format, "source": data, "options": parsed}, split)


def _load(checkpoint: str, device):
    """A checkpoint, or an ``.onnx`` file from ``ferkit export`` (fp32 or int8) run on ONNX
    Runtime, measured by the same evaluation code."""
    if checkpoint.lower().endswith(".onnx"):
        from ferkit.inference.backends import OnnxModule

        return OnnxModule(checkpoint)
    from ferkit.weights import load_checkpoint

    return load_checkpoint(checkpoint, map_location=device)


def _check_temperature(temperature: float | None) -> None:
    from ferkit.errors import FerkitError

    if temperature is not None and not 0 < temperature < 1e3:
        raise FerkitError(f"--temperature must be a positive number below 1000, got "
                          f"{temperature}")


def register(app: typer.Typer) -> None:
    @app.command()
    @with_evaluation_data
    def evaluate(
        checkpoint: Annotated[str, typer.Argument(
            help="checkpoint dir (RUN/best), 'default', or an .onnx file from `ferkit export` "
            "(e.g. --int8; runs on ONNX Runtime)")],
        evaluation: EvaluationData,
        json_out: Annotated[Path | None, typer.Option(
            "--json", help="write the JSON report")] = None,
        confusion: Annotated[Path | None, typer.Option(
            "--confusion", help="write the confusion matrix: .png (plot) or .json")] = None,
        reliability: Annotated[Path | None, typer.Option(
            "--reliability", help="write the reliability diagram (calibration) as a .png")
        ] = None,
        temperature: Annotated[float | None, typer.Option(
            "--temperature", help="softmax temperature instead of the checkpoint's "
            "calibrated one (1 = uncalibrated)")] = None,
        option: OptionOpt = None,
        format: FormatOpt = "human",
        quiet: QuietOpt = False,
    ) -> None:
        """Accuracy, mean class accuracy, macro F1, per-class metrics, the confusion matrix
        and calibration (ECE over 15 bins, NLL; also at temperature 1 for a calibrated model).

        Examples:

          ferkit evaluate runs/fer/best --data fer2013.csv.gz --split test

          ferkit evaluate runs/fer/best --data fer2013.csv.gz --tta flip \\
            --json report.json --confusion cm.png

          ferkit evaluate default --data RAF-DB/basic --data-format rafdb --format json

          ferkit evaluate default --data ../shared/data/expw_dev --reliability rel.png
        """
        from ferkit import atomic
        from ferkit.devices import resolve_device
        from ferkit.evaluation import evaluate as run_evaluation
        from ferkit.progress import progress_display

        check_choice(format)
        _check_temperature(temperature)
        # An unavailable device fails before the model loads.
        device = resolve_device(evaluation.device)
        with progress_display(quiet=quiet):
            model = _load(checkpoint, device)
            dataset = _open(evaluation.data, evaluation.data_format, evaluation.split, option)
            report = run_evaluation(model, dataset, batch_size=evaluation.batch_size,
                                    tta=evaluation.tta, device=device,
                                    meta={"checkpoint": checkpoint},
                                    temperature=temperature)
        if json_out is not None:
            atomic.write_text(json_out, report.to_json())
        if confusion is not None:
            if confusion.suffix.lower() == ".json":
                atomic.write_text(confusion, json.dumps({"label_names": list(report.label_names),
                                                 "confusion": [list(r) for r in
                                                               report.confusion]}, indent=2))
            else:
                report.save_confusion_png(confusion)
        if reliability is not None:
            report.save_reliability_png(reliability)
        if format == "json":
            print(report.to_json(), end="")
        elif format == "quiet":
            print(f"{report.accuracy:.4f}")
        else:
            print(report.to_table())

    @app.command()
    def calibrate(
        checkpoint: Annotated[str, typer.Argument(help="checkpoint dir (RUN/best)")],
        data: DataOpt,
        data_format: DataFormatOpt = None,
        split: Annotated[str, typer.Option(
            "--split", help="held-out split to fit on (never the one you report)")] = "val",
        batch_size: BatchSizeOpt = 64,
        device: DeviceOpt = "auto",
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="fit and print, but leave config.json as it is")] = False,
        option: OptionOpt = None,
        format: FormatOpt = "human",
        quiet: QuietOpt = False,
    ) -> None:
        """Fit the softmax temperature on a held-out split and store it in config.json.

        Temperature scaling (Guo et al., ICML 2017) makes the probabilities that predict,
        serve, the ONNX export and evaluate report honest; the argmax, and so accuracy,
        does not change.  config.json is replaced atomically; the weights are not touched.

        Examples:

          ferkit calibrate runs/fer/best --data fer2013.csv.gz --split val

          ferkit calibrate runs/fer/best --data ferplus/fer2013new.csv --dry-run
        """
        from ferkit.evaluation import fit_checkpoint_temperature
        from ferkit.progress import progress_display

        check_choice(format)
        with progress_display(quiet=quiet):
            dataset = _open(data, data_format, split, option)
            result = fit_checkpoint_temperature(checkpoint, dataset, batch_size=batch_size,
                                                device=device, write=not dry_run)
        if format == "json":
            print(json.dumps(result, indent=2))
        elif format == "quiet":
            print(f"{result['temperature']:.6g}")
        else:
            print(f"temperature {result['temperature']:.4g} (was {result['previous']:.4g}) "
                  f"fitted on {result['samples']} {result['dataset']} {result['split']} faces: "
                  f"ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f}, NLL "
                  f"{result['nll_before']:.4f} -> {result['nll_after']:.4f}"
                  + ("" if dry_run else f"; written to {result['config']}"))

    @app.command()
    @with_evaluation_data
    def compare(
        checkpoints: Annotated[list[str], typer.Argument(help="two or more checkpoint dirs")],
        evaluation: EvaluationData,
        option: OptionOpt = None,
        format: FormatOpt = "human",
        quiet: QuietOpt = False,
    ) -> None:
        """Evaluate several checkpoints on the same data and print one table.

        Examples:

          ferkit compare runs/a/best runs/b/best --data fer2013.csv.gz --split test

          ferkit compare runs/*/best --data RAF-DB/basic --format json
        """
        from ferkit.devices import resolve_device
        from ferkit.evaluation import compare as run_compare
        from ferkit.evaluation import comparison_table
        from ferkit.progress import progress_display

        check_choice(format)
        device = resolve_device(evaluation.device)
        with progress_display(quiet=quiet):
            dataset = _open(evaluation.data, evaluation.data_format, evaluation.split, option)
            reports = run_compare(checkpoints, dataset, batch_size=evaluation.batch_size,
                                  tta=evaluation.tta, device=device)
        if format == "json":
            print(json.dumps([r.to_dict() for r in reports], indent=2))
        elif format == "quiet":
            print("\n".join(f"{r.accuracy:.4f}" for r in reports))
        else:
            print(comparison_table(reports))
