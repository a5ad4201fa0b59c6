"""``ferkit batch INPUT… --out DIR``: resumable batch inference on Ray Data.

A command of its own rather than ``ferkit predict --engine ray``: it writes a Parquet folder
instead of printing, resumes, and has cluster options (``--address``, actors) that mean
nothing to ``predict``.  Wraps :func:`ferkit.batch.run_batch`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ferkit.cli._options import BackendOpt, DetectorOpt, ModelOpt, QuietOpt


def register(app: typer.Typer) -> None:
    @app.command()
    def batch(
        inputs: Annotated[list[str], typer.Argument(
            help="images (files, folders, globs), .txt/.parquet lists of paths or URIs, or "
                 "object-store URIs (s3://bucket/photos/ lists the prefix)",
            show_default=False)],
        out: Annotated[str, typer.Option(
            "--out", "-o", help="results folder (local path or URI); re-running resumes")],
        model: ModelOpt = "default",
        detector: DetectorOpt = "retinaface",
        no_detect: Annotated[bool, typer.Option(
            "--no-detect", help="each image is one already-cropped face")] = False,
        video: Annotated[bool, typer.Option(
            "--video", help="inputs are videos: per-frame rows with track ids")] = False,
        every: Annotated[int, typer.Option(
            min=1, help="--video: analyse every N-th frame")] = 1,
        backend: BackendOpt = "auto",  # big jobs: timing both once pays off
        batch_size: Annotated[int, typer.Option(min=1, help="faces per model call")] = 32,
        address: Annotated[str | None, typer.Option(
            help="Ray cluster to join ('auto', 'ray://head:10001'); default: start a local "
                 "Ray runtime")] = None,
        num_cpus: Annotated[int | None, typer.Option(
            min=1, help="CPUs of the local runtime (default: all)")] = None,
        actors: Annotated[int | None, typer.Option(
            min=1, help="classifier actors (default: one per GPU, else one per 4 CPUs)")
        ] = None,
        actor_cpus: Annotated[float | None, typer.Option(
            help="CPUs each classifier actor reserves (default 1; 0.5 under 4 CPUs)")] = None,
        gpus_per_actor: Annotated[float | None, typer.Option(
            help="GPUs each classifier actor reserves (default 1 if the cluster has GPUs)")
        ] = None,
        task_cpus: Annotated[float | None, typer.Option(
            help="CPUs each decode-and-detect task reserves (default 1)")] = None,
        quiet: QuietOpt = False,
    ) -> None:
        """Faces and expressions for many photos (or videos) on Ray, into Parquet files.

        Decoding and face detection run as Ray tasks, classification in a pool of actors
        (one model load each; on GPUs when the cluster has them). One row per face, one per
        photo without a face, one per input that failed (with the reason). Re-running the
        same command skips the inputs already in --out. On a cluster, a checkpoint directory given
        to --model must be on storage every node sees. docs/scale.md has the details.

        Examples:

          ferkit batch photos/ --out results/

          ferkit batch uris.txt --out s3://bucket/ferkit-results/ --address auto

          ferkit batch 'clips/**/*.mp4' --video --every 5 --out clip-results/
        """
        from ferkit.batch import run_batch

        def progress(summary) -> None:
            if not quiet:
                print(f"\r{summary.processed}/{summary.inputs - summary.skipped} inputs, "
                      f"{summary.faces} faces, {summary.failed} failed", end="",
                      file=sys.stderr, flush=True)

        summary = run_batch(inputs, out, model=model, detector=detector, detect=not no_detect,
                            backend=backend, batch_size=batch_size, video=video, every=every,
                            address=address, num_cpus=num_cpus, actors=actors,
                            actor_cpus=actor_cpus, gpus_per_actor=gpus_per_actor,
                            task_cpus=task_cpus, on_progress=progress)
        if summary.processed and not quiet:
            print(file=sys.stderr)
        for argument, message in summary.problems:
            print(f"skipped argument {argument}: {message}", file=sys.stderr)
        if summary.plan is not None and not quiet:
            print(f"ran {summary.plan.describe()}", file=sys.stderr)
        rate = f" ({summary.per_second:.1f}/s)" if summary.processed else ""
        print(f"{summary.processed} inputs done{rate}, {summary.faces} faces, "
              f"{summary.failed} failed, {summary.skipped} already in {out}; "
              f"{summary.rows} rows in {len(summary.parts)} new part files")
        if summary.processed and summary.failed == summary.processed and not summary.skipped:
            raise typer.Exit(1)
