"""``ferkit export``: write a checkpoint as a self-describing, verified ONNX file."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ferkit.cli._options import check_choice


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
        format: Annotated[str, typer.Option(
            "--format", "-f", help="human, json, or quiet (path only)")] = "human",
    ) -> None:
        """Export CHECKPOINT to ONNX (dynamic batch; labels, mean, std, input size and
        architecture in the file's metadata) and report the max abs difference to PyTorch.

        Examples:

          ferkit export runs/dan/best --onnx dan.onnx

          ferkit export default --onnx ferkit.onnx --opset 17 --format json
        """
        from ferkit.export import export_onnx

        check_choice(format)
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
