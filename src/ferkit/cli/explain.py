"""``ferkit explain``, ``ferkit embed`` and ``ferkit plot``: pictures of what a model does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ferkit.cli._options import DetectorOpt, DeviceOpt, ModelOpt, QuietOpt, check_choice

FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="human (one line per file), json, or quiet")
]



def _report(rows: list[dict], format: str, human: list[str]) -> None:
    if format == "json":
        print(json.dumps(rows, indent=2))
    elif format == "human":
        print("\n".join(human))


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain_cmd(
        path: Annotated[str, typer.Argument(help="photo to explain (jpg, png, …)")],
        model: ModelOpt = "default",
        method: Annotated[str, typer.Option(
            "--method", help="cam (= gradcam), gradcam, gradcam++, attention (the "
            "architecture's own: DAN heads, DACL weights, DSAN streams, Deep-Emotion STN), "
            "or hirescam, xgradcam, layercam, eigencam")] = "gradcam++",
        target: Annotated[str | None, typer.Option(
            "--target", help="expression to explain, e.g. happy (default: the top class)")
        ] = None,
        layer: Annotated[str | None, typer.Option(
            "--layer", help="CAM layer by dotted module name (default: the deepest whose map "
            "has at least 6x6 cells)")
        ] = None,
        out: Annotated[Path | None, typer.Option(
            "--out", "-o", help="figure file; with several faces _face1, _face2 … are added "
            "(default: PHOTO_explain.png in the working directory)")] = None,
        overlay: Annotated[Path | None, typer.Option(
            "--overlay", help="also write the maps projected onto the whole photo")] = None,
        detector: DetectorOpt = "retinaface",
        device: DeviceOpt = "auto",
        format: FormatOpt = "human",
        quiet: QuietOpt = False,
    ) -> None:
        """Explain every face in a photo: one figure per face (crop, heat map with colour
        bar, per-head maps for DAN, class probabilities).

        Examples:

          ferkit explain photo.jpg

          ferkit explain photo.jpg --method attention --model runs/dan/best --out dan.png

          ferkit explain photo.jpg --method gradcam --target happy --overlay whole.png
        """
        import ferkit
        from ferkit.atomic import atomic_path
        from ferkit.explain import explain
        from ferkit.explain.visualize import face_figure, overlay_on_image
        from ferkit.progress import progress_display, task

        check_choice(format)
        with progress_display(quiet=quiet), task(f"explaining {path} ({method})"):
            recognizer = ferkit.Recognizer.from_pretrained(model, device=device,
                                                           detector=detector)
            explanations = explain(recognizer, path, method=method, target=target,
                                   target_layer=layer)
        if not explanations:
            print(f"no face found in {path}")
            raise typer.Exit(1)
        out = out or Path(f"{Path(path).stem}_explain.png")
        rows, human = [], []
        for i, exp in enumerate(explanations):
            target_file = out if len(explanations) == 1 else out.with_name(
                f"{out.stem}_face{i + 1}{out.suffix or '.png'}")
            with atomic_path(target_file) as tmp:
                face_figure(exp).save(tmp, format=_image_format(target_file))
            rows.append({"face": i + 1, "figure": str(target_file), "label": exp.face.label,
                         "score": exp.face.score, "box": list(exp.face.box),
                         "method": exp.method, "target": exp.target, "maps": list(exp.maps)})
            human.append(f"face {i + 1}: {exp.face.label} {exp.face.score:.0%} "
                         f"→ {target_file}")
        if overlay is not None:
            with atomic_path(overlay) as tmp:
                overlay_on_image(path, explanations).save(tmp, format=_image_format(overlay))
            human.append(f"overlay → {overlay}")
            for row in rows:
                row["overlay"] = str(overlay)
        _report(rows, format, human)

    @app.command("embed")
    def embed_cmd(
        checkpoint: Annotated[str, typer.Argument(help="checkpoint directory or shipped name")],
        data: Annotated[str, typer.Option("--data", help="dataset file or folder "
                                          "(any format `ferkit.data.open_dataset` reads)")],
        split: Annotated[str, typer.Option("--split", help="train, val or test")] = "val",
        data_format: Annotated[str | None, typer.Option(
            "--data-format", help="fer2013, ferplus, rafdb, affectnet, folder, list "
            "(default: detected)")] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="output directory")
                       ] = Path("embedding"),
        method: Annotated[str, typer.Option("--method", help="tsne or umap")] = "tsne",
        max_samples: Annotated[int, typer.Option(
            "--max-samples", help="random subset size (t-SNE is quadratic)")] = 2000,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        format: FormatOpt = "human",
        quiet: QuietOpt = False,
    ) -> None:
        """2-D projection of a model's embeddings, coloured by class, with class centres
        (learned centres when the weights hold them, else class means): PNG + CSV.

        Examples:

          ferkit embed runs/dacl/best --data ../data/fer2013.csv --split test

          ferkit embed default --data faces/ --method umap --out emb/
        """
        from ferkit.data import open_dataset
        from ferkit.explain.embeddings import embed_checkpoint
        from ferkit.progress import progress_display, task

        check_choice(format)
        with progress_display(quiet=quiet):
            with task(f"reading {data} ({split})"):
                dataset = open_dataset(data, format=data_format, split=split)
            result = embed_checkpoint(checkpoint, dataset, out, method=method,
                                      max_samples=max_samples, seed=seed)
        _report([{"png": str(result.png), "csv": str(result.csv),
                  "samples": result.num_samples, "accuracy": result.accuracy}], format,
                [f"{result.num_samples} samples (accuracy {result.accuracy:.1%}) → "
                 f"{result.png}, {result.csv}"])

    @app.command("plot")
    def plot_cmd(
        run_dir: Annotated[Path, typer.Argument(help="a training run directory "
                                                "(or its metrics.csv)")],
        out: Annotated[Path | None, typer.Option("--out", "-o", help="output directory "
                                                 "(default: the run directory)")] = None,
        format: FormatOpt = "human",
    ) -> None:
        """Loss/accuracy curves (from the run's metrics.csv) and the confusion matrix (from
        an evaluation JSON in the run, when there is one) as PNGs.

        Examples:

          ferkit plot runs/dan_rafdb

          ferkit plot runs/dan_rafdb/logs/metrics.csv --out figures/
        """
        from ferkit.training.plots import plot_run

        check_choice(format)
        paths = plot_run(run_dir, out)
        _report([{"png": str(p)} for p in paths], format, [str(p) for p in paths])


def _image_format(path: Path) -> str:
    """PIL's format name for ``path``'s suffix (PNG when there is none or it is unknown)."""
    from PIL import Image

    Image.init()
    return Image.EXTENSION.get(path.suffix.lower(), "PNG")
