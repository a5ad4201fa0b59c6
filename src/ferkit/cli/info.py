"""``ferkit version``, ``ferkit env`` and ``ferkit models list``."""

from __future__ import annotations

import fnmatch
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
                     "opencv-python-headless", "fastapi", "streamlit"):
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
        """List registered architectures, the weights shipped with ferkit and your models.

        Shipped weights are named architecture.tag (dsan.fer2013); `ferkit models info NAME`
        shows their licence, dataset, recipe, metrics and checksum.

        Examples:

          ferkit models list

          ferkit models list 'dan*' --format json
        """
        from ferkit.models.registry import get_model_entry, list_models
        from ferkit.weights import DEFAULT_NAME, list_shipped, list_user_models

        check_choice(format)
        names = list_models(pattern)
        weights = [_weights_row(n, "shipped") for n in list_shipped()]
        weights += [_weights_row(n, "user") for n in list_user_models()]
        if pattern:
            weights = [w for w in weights if fnmatch.fnmatch(w["name"], pattern)]
        if format == "json":
            rows = [{"name": n, "kind": "architecture", "summary": get_model_entry(n).summary}
                    for n in names]
            rows += [{**w, "kind": f"{w['kind']} weights"} for w in weights]
            print(json.dumps(rows, indent=2))
            return
        if format == "quiet":
            print("\n".join(names + [w["name"] for w in weights]))
            return
        print("Architectures (ferkit.create_model):")
        for n in names:
            print(f"  {n:<14} {get_model_entry(n).summary}")
        for kind, title in (("shipped", "Shipped weights"),
                            ("user", f"Your models ({_user_dir()})")):
            print(f"{title} (ferkit predict --model NAME):")
            rows = [w for w in weights if w["kind"] == kind]
            if not rows:
                print("  (none" + (": add one with `ferkit models add NAME RUN/best`)"
                                   if kind == "user" else ")"))
            for w in rows:
                mark = " (default)" if w["name"] == DEFAULT_NAME else ""
                print(f"  {w['name'] + mark:<28} {w['summary']}")
                if "licence" in w:
                    print(f"  {'':<28} licence: {w['licence']}")

    @models_app.command("info")
    def models_info(
        name: Annotated[str, typer.Argument(help="'default', a shipped or user model name, "
                                                 "or a checkpoint directory")] = "default",
        format: Annotated[str, typer.Option("--format", "-f", help="human or json")] = "human",
    ) -> None:
        """Show a model's card: classes, input pipeline, metrics, data and provenance.

        Examples:

          ferkit models info

          ferkit models info runs/fer2013_resnet18/best --format json
        """
        from ferkit.checkpoint import WEIGHTS_NAME, read_config
        from ferkit.weights import resolve_checkpoint_dir

        check_choice(format, ("human", "json"))
        directory = resolve_checkpoint_dir(name)
        cfg = read_config(directory)
        published = _published(directory)
        if format == "json":
            extra = {"weights": published.model_dump()} if published else {}
            print(json.dumps({"path": str(directory), **cfg.to_dict(), **extra}, indent=2))
            return
        data = cfg.data
        print(f"{published.name if published else name}  ({directory})")
        if published:
            print(f"  licence       {published.licence}")
            print(f"  dataset       {published.dataset}")
            print(f"  recipe        {published.recipe} (ferkit train -r {published.recipe})")
            print(f"  sha256        {published.sha256} ({WEIGHTS_NAME}, checked on load)")
            if published.card:
                print(f"  card          {published.card}")
        print(f"  architecture  {cfg.architecture} {cfg.model_kwargs or ''}".rstrip())
        print(f"  classes       {', '.join(cfg.label_names)}")
        print(f"  input         {'x'.join(map(str, data.input_size))}, mean {list(data.mean)}, "
              f"std {list(data.std)}, alignment {data.alignment} "
              f"(face margin {data.face_margin})")
        print(f"  temperature   {cfg.temperature:.4g} ("
              + ("uncalibrated" if cfg.temperature == 1.0 else "calibrated: probabilities are "
                 "softmax(logits / temperature)") + ")")
        for key, value in cfg.metrics.items():
            print(f"  {key:<40} {_fmt(value)}")
        for key, value in cfg.provenance.items():
            if isinstance(value, dict):
                print(f"  {key}:")
                for k, v in value.items():
                    print(f"    {k}: {_fmt(v)}")
            else:
                print(f"  {key}: {_fmt(value)}")

    @models_app.command("add")
    def models_add(
        name: Annotated[str, typer.Argument(help="name to use it by, e.g. my-rafdb")],
        checkpoint: Annotated[str, typer.Argument(help="checkpoint directory, e.g. RUN/best")],
        overwrite: Annotated[bool, typer.Option(help="replace a user model of that name")] = False,
    ) -> None:
        """Save a checkpoint as one of your models, usable by name everywhere.

        Examples:

          ferkit models add my-rafdb runs/dan_rafdb/best

          ferkit predict photo.jpg --model my-rafdb
        """
        from ferkit.weights import add_user_model

        print(f"added {name!r}: {add_user_model(name, checkpoint, overwrite=overwrite)}")

    @models_app.command("remove")
    def models_remove(
        name: Annotated[str, typer.Argument(help="a user model's name")],
    ) -> None:
        """Delete one of your models (shipped models stay)."""
        from ferkit.weights import remove_user_model

        print(f"removed {name!r} ({remove_user_model(name)})")


def _user_dir() -> str:
    from ferkit.weights import user_models_dir

    return str(user_models_dir())


def _published(directory):
    """The :class:`~ferkit.config.WeightsConfig` beside published weights, else ``None``."""
    from ferkit.weights import read_weights_config
    from ferkit.weights.shipped import WEIGHTS_CONFIG_NAME

    return read_weights_config(directory) if (directory / WEIGHTS_CONFIG_NAME).is_file() else None


def _weights_row(name: str, kind: str) -> dict:
    """One line about a named model, from its config.json (never loads the weights)."""
    from ferkit.checkpoint import read_config
    from ferkit.errors import FerkitError
    from ferkit.weights import named_weights_dir

    directory = named_weights_dir(name)
    try:
        cfg = read_config(directory)
        published = _published(directory)
    except FerkitError as exc:  # one broken model must not hide the others
        return {"name": name, "kind": kind, "summary": f"unreadable: {exc}"}
    size = "x".join(map(str, cfg.data.input_size))
    accuracy = next((f"{k} {_fmt(v)}" for k, v in cfg.metrics.items() if "accuracy" in k), "")
    summary = f"{cfg.architecture}, {len(cfg.label_names)} classes, {size}"
    row = {"name": name, "kind": kind, "architecture": cfg.architecture,
           "input_size": list(cfg.data.input_size), "metrics": cfg.metrics,
           "summary": summary + (f", {accuracy}" if accuracy else "")}
    if published is not None:
        row.update(licence=published.licence, dataset=published.dataset,
                   recipe=published.recipe, sha256=published.sha256)
    return row


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return value if isinstance(value, str) else json.dumps(value)
