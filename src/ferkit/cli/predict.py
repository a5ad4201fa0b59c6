"""``ferkit predict PATH…``: faces and expressions in photos, folders and globs.

Wraps :meth:`ferkit.Recognizer.iter_results` (plus :func:`ferkit.inference.files.find_images`
and :func:`ferkit.inference.annotate.draw_results`).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ferkit.cli._options import BackendOpt, DetectorOpt, DeviceOpt, ModelOpt, QuietOpt
from ferkit.inference.files import DEFAULT_MAX_BYTES, printable

FORMATS = ("human", "json", "csv", "quiet")


def register(app: typer.Typer) -> None:
    @app.command()
    def predict(
        paths: Annotated[list[str], typer.Argument(
            help="image files, folders (searched recursively) or glob patterns ('**/*.jpg')",
            show_default=False)],
        model: ModelOpt = "default",
        detector: DetectorOpt = "retinaface",
        top_k: Annotated[int, typer.Option(
            "--top-k", "-k", min=1,
            help="classes shown per face in the table (json/csv hold all)")
        ] = 3,
        format: Annotated[str, typer.Option(
            "--format", "-f", help="human (table), json, csv, or quiet (file and label)")
        ] = "human",
        as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
        as_csv: Annotated[bool, typer.Option("--csv", help="same as --format csv")] = False,
        annotate: Annotated[Path | None, typer.Option(
            help="write a copy of each image with numbered boxes and labels into this "
            "folder (sub-folders as in the input)")] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="faces per model call")] = 16,
        no_detect: Annotated[bool, typer.Option(
            "--no-detect", help="each image is one already-cropped face")] = False,
        device: DeviceOpt = "auto",
        backend: BackendOpt = "torch",
        max_file_size: Annotated[float, typer.Option(
            "--max-file-size", min=0.001, help="largest image file read, in MB")
        ] = DEFAULT_MAX_BYTES / 2**20,
        quiet: QuietOpt = False,
    ) -> None:
        """Find every face in images and recognise its expression.

        Prints one row per face (file, face number, box, label, probability, next classes).
        Inputs that fail (missing, unreadable, not an image, over --max-file-size) are
        reported at the end on stderr, with what folder searches passed over (links that
        loop, named pipes); control characters in names are shown escaped.  Exit status:
        0 when every input was read, 1 when any failed, 2 for usage errors.

        Examples:

          ferkit predict photo.jpg

          ferkit predict photos/ --model runs/dan/best --json > faces.json

          ferkit predict 'shots/**/*.png' --csv --top-k 7 > faces.csv

          ferkit predict crops/ --no-detect --annotate annotated/
        """
        from ferkit.errors import FerkitError

        fmt = "json" if as_json else "csv" if as_csv else format
        if as_json and as_csv:
            raise FerkitError("choose one of --json and --csv")
        if fmt not in FORMATS:
            raise FerkitError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        status = run_predict(paths, model=model, detector=detector, top_k=top_k, fmt=fmt,
                             annotate=annotate, batch_size=batch_size, detect=not no_detect,
                             device=device, backend=backend,
                             max_bytes=round(max_file_size * 2**20), quiet=quiet)
        if status:
            raise typer.Exit(status)


def run_predict(paths: list[str], *, model: str = "default", detector: str = "retinaface",
                top_k: int = 3, fmt: str = "human", annotate: Path | None = None,
                batch_size: int = 16, detect: bool = True, device: str = "auto",
                backend: str = "torch", max_bytes: int | None = DEFAULT_MAX_BYTES, out=None,
                err=None, quiet: bool = False) -> int:
    """The body of ``ferkit predict``; returns the exit status (1 if any input failed)."""
    from ferkit.progress import progress_display

    with progress_display(quiet=quiet):
        return _run_predict(paths, model=model, detector=detector, top_k=top_k, fmt=fmt,
                            annotate=annotate, batch_size=batch_size, detect=detect,
                            device=device, backend=backend, max_bytes=max_bytes, out=out,
                            err=err)


def _run_predict(paths, *, model, detector, top_k, fmt, annotate, batch_size, detect,
                 device, backend, max_bytes, out, err) -> int:
    from ferkit.atomic import make_dirs
    from ferkit.errors import FerkitError
    from ferkit.inference.files import find_images
    from ferkit.inference.recognizer import Recognizer
    from ferkit.progress import task, track

    out = out or sys.stdout
    err = err or sys.stderr
    files, failures, skipped = find_images(paths, max_bytes=max_bytes)
    if not files:
        details = "; ".join(message for _, message in failures) or "no paths given"
        raise FerkitError(printable(f"no images to read: {details}"))
    with task(f"loading {model}"):
        recognizer = Recognizer.from_pretrained(model, device=device, detector=detector,
                                                backend=backend, batch_size=batch_size)
    if annotate is not None:
        make_dirs(annotate)
        roots, taken = _input_roots(paths), set()
    writer = _Writer(fmt, out, recognizer.label_names, top_k)
    ok = faces = faceless = 0
    results = recognizer.iter_results(files, detect=detect, top_k=None)
    for result in track(results, description="images", total=len(files)):
        if result.error is not None:
            failures.append((result.source, result.error))
        else:
            ok += 1
            faces += len(result.faces)
            faceless += not result.faces
            if annotate is not None:
                _write_annotated(result, annotated_path(result.source, roots, annotate, taken))
        writer.write(result)
    writer.close()
    if fmt == "human":
        print(f"{ok} image{'s' * (ok != 1)}, {faces} face{'s' * (faces != 1)}"
              + (f"; {len(failures)} failed" if failures else ""), file=err)
        if faceless and detect:
            print(f"no face found in {faceless} image{'s' * (faceless != 1)}; if they are "
                  "already face crops, add --no-detect", file=err)
    if skipped:
        print(f"skipped while searching folders ({len(skipped)}):", file=err)
        for path, why in skipped:
            print(f"  {printable(path)}: {why}", file=err)
    if failures:
        print(f"failed ({len(failures)}):", file=err)
        for _, message in failures:
            print(f"  {printable(message)}", file=err)
    return 1 if failures else 0


class _Writer:
    """Streams results in one output format."""

    def __init__(self, fmt: str, out, label_names: tuple[str, ...], top_k: int) -> None:
        self.fmt, self.out, self.labels, self.top_k = fmt, out, label_names, top_k
        self.count = 0
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(["source", "face", "x1", "y1", "x2", "y2", "detector_score",
                               "label", "score", *[f"p_{n}" for n in label_names], "error"])
        elif fmt == "json":
            out.write("[")
        elif fmt == "human":
            out.write(f"{'file':<32} {'face':>4}  {'box (x1,y1,x2,y2)':<21} "
                      f"{'label':<9} {'score':>5}  next\n")

    def write(self, result) -> None:
        getattr(self, f"_{self.fmt}")(result)
        self.count += 1

    def _json(self, result) -> None:
        self.out.write(("\n" if self.count == 0 else ",\n") + json.dumps(result.to_dict()))

    def _csv(self, result) -> None:
        if result.error is not None or not result.faces:
            self.csv.writerow([result.source, "", "", "", "", "", "", "", "",
                               *[""] * len(self.labels), result.error or ""])
        for i, face in enumerate(result.faces, start=1):
            self.csv.writerow([
                result.source, i, *(f"{v:.1f}" for v in face.box),
                "" if face.detector_score is None else f"{face.detector_score:.4f}",
                face.label, f"{face.score:.6f}",
                *(f"{face.probs[n]:.6f}" for n in self.labels), ""])

    def _quiet(self, result) -> None:
        for i, face in enumerate(result.faces, start=1):
            self.out.write(f"{printable(result.source)}\t{i}\t{face.label}\n")

    def _human(self, result) -> None:
        from ferkit.inference.results import ranked

        name = _shorten(printable(result.source), 32)
        if result.error is not None:
            self.out.write(f"{name:<32} {'-':>4}  error (see below)\n")
        elif not result.faces:
            self.out.write(f"{name:<32} {'-':>4}  no face found\n")
        for i, face in enumerate(result.faces, start=1):
            box = ",".join(f"{v:.0f}" for v in face.box)
            rest = ", ".join(f"{n} {p:.2f}" for n, p in ranked(face.probs, self.top_k)[1:])
            self.out.write(f"{name:<32} {i:>4}  {box:<21} {face.label:<9} {face.score:5.2f}  "
                           f"{rest}\n")

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if self.count else "]\n")
        self.out.flush()


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _input_roots(paths: list[str]) -> list[str]:
    """The folder each command-line input names: a folder itself, a file's folder, a
    glob's fixed leading folders (``shots/**/*.png`` → ``shots``)."""
    roots = []
    for path in paths:
        parts = Path(path).parts
        fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), None)
        if fixed is not None:
            root = Path(*parts[:fixed]) if fixed else Path(".")
        else:
            root = Path(path) if os.path.isdir(path) else Path(path).parent
        roots.append(os.path.abspath(root))
    return roots


def annotated_path(source: str, roots: list[str], folder: Path, taken: set[Path]) -> Path:
    """Where ``ferkit predict --annotate FOLDER`` writes the copy of ``source``: its path
    below the input folder it was found in (sub-folders kept, so same-named files never
    overwrite each other), under ``FOLDER``.  JPEG and PNG keep their name; other formats
    get ``.png`` appended (``scan.bmp`` → ``scan.bmp.png``); a name two inputs would still
    share (the same file name given from two folders) gets ``-1``, ``-2`` … added."""
    absolute = os.path.abspath(source)
    inside = [r for r in roots if os.path.commonpath([r, absolute]) == r]
    root = max(inside, key=len) if inside else os.path.dirname(absolute)
    relative = Path(os.path.relpath(absolute, root))
    if relative.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        relative = relative.with_name(relative.name + ".png")
    target, n = folder / relative, 1
    while target in taken:
        target, n = folder / relative.with_name(f"{relative.stem}-{n}{relative.suffix}"), n + 1
    taken.add(target)
    return target


def _write_annotated(result, target: Path) -> None:
    from ferkit.atomic import atomic_path
    from ferkit.inference.annotate import draw_results
    from ferkit.inference.io import load_image

    # One label line per face: crowded photos stay readable.
    with atomic_path(target) as tmp:
        draw_results(load_image(result.source), result, top_k=1).save(tmp, quality=90)
