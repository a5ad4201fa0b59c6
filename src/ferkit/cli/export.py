"""``ferkit export``: write a checkpoint as a self-describing, verified ONNX file."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ferkit.cli._options import check_choice
from ferkit.errors import FerkitError


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        checkpoint: Annotated[str, typer.Argument(
            help="checkpoint directory (model.safetensors + config.json) or shipped name")],
        onnx: Annotated[str, typer.Option("--onnx", help="the .onnx file to write")],
        opset: Annotated[int | None, typer.Option(
            "--opset", help="ONNX opset (default: the exporter's, 18)")] = None,
        exporter: Annotated[str, typer.Option(
            "--exporter", help="auto (dynamo, else torchscript), dynamo or torchscript")] = "auto",
        static_batch: Annotated[bool, typer.Option(
            "--static-batch", help="fix the batch axis to 1 instead of dynamic")] = False,
        no_verify: Annotated[bool, typer.Option(
            "--no-verify", help="skip the ONNX Runtime vs PyTorch comparison")] = False,
        int8: Annotated[bool, typer.Option(
            "--int8", help="quantize the convolutions to int8 (about 2x faster on CPU), "
            "calibrated on --calibration faces and checked against fp32")] = False,
        calibration: Annotated[str | None, typer.Option(
            "--calibration", help="with --int8: a dataset file or folder of faces like the "
            "ones the model will see (any format ferkit reads, e.g. fer2013.csv)")] = None,
        calibration_split: Annotated[str, typer.Option(
            "--calibration-split", help="with --int8: the split of --calibration to use")
        ] = "train",
        calibration_samples: Annotated[int, typer.Option(
            "--calibration-samples", help="with --int8: faces that set the int8 ranges "
            "(as many again are used to check the result)")] = 512,
        format: Annotated[str, typer.Option(
            "--format", "-f", help="human, json, or quiet (path only)")] = "human",
    ) -> None:
        """Export CHECKPOINT to ONNX (dynamic batch; labels, mean, std, input size and
        architecture in the file's metadata) and report the max abs difference to PyTorch.

        With --int8, the convolutions run in int8 after calibration on real faces; the file
        is written only if its predictions agree with fp32 on at least 97% of held-out faces.

        Examples:

          ferkit export runs/dan/best --onnx dan.onnx

          ferkit export default --onnx ferkit.onnx --opset 17 --format json

          ferkit export default --onnx ferkit-int8.onnx --int8 --calibration fer2013.csv
        """
        check_choice(format)
        if int8:
            ignored = [name for name, used in (("--opset", opset is not None),
                                               ("--static-batch", static_batch),
                                               ("--no-verify", no_verify)) if used]
            if ignored:
                raise FerkitError(f"{', '.join(ignored)} cannot be combined with --int8 (the "
                                  "int8 file has a dynamic batch and is always checked)")
            _export_int8(checkpoint, onnx, calibration, calibration_split,
                         calibration_samples, exporter, format)
            return
        if calibration is not None:
            raise FerkitError("--calibration is for int8 export: add --int8, or drop it")
        from ferkit.export import export_onnx

        report = export_onnx(checkpoint, onnx, opset=opset, exporter=exporter,
                             dynamic_batch=not static_batch, verify=not no_verify)
        if format == "json":
            print(json.dumps(report.to_dict(), indent=2))
        elif format == "quiet":
            print(report.path)
        else:
            batch = "dynamic" if report.dynamic_batch else "1"
            batches = ", ".join(map(str, report.verified_batch_sizes))
            diff = ("not verified" if report.max_abs_diff is None else
                    f"{report.max_abs_diff:.3g} (batches {batches})")
            print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {report.architecture}, "
                  f"{report.exporter} exporter, opset {report.opset})")
            print(f"input  (batch={batch}, {', '.join(map(str, report.input_shape))}) float32")
            print(f"max abs diff vs PyTorch: {diff}")


def _export_int8(checkpoint: str, onnx: str, calibration: str | None, split: str,
                 samples: int, exporter: str, format: str) -> None:
    if calibration is None:
        raise FerkitError(
            "--int8 needs --calibration: a dataset of faces like the ones the model will see, "
            "e.g. --calibration fer2013.csv (the int8 ranges are measured on them)")
    from ferkit.quantize import quantize_onnx

    report = quantize_onnx(checkpoint, onnx, calibration, split=split, samples=samples,
                           check_samples=samples, exporter=exporter)
    if format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    elif format == "quiet":
        print(report.path)
    else:
        print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB int8, fp32 "
              f"{report.fp32_size_bytes / 1e6:.1f} MB; {report.architecture}, "
              f"{report.quantized_convs} of {report.total_convs} convolutions in int8)")
        print(f"calibrated on {report.calibration_samples} faces of {report.calibration}")
        print(f"agrees with fp32 on {report.top1_agreement:.2%} of {report.check_samples} "
              f"other faces; max probability difference {report.max_prob_diff:.3f}")
