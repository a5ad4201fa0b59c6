"""``ferkit video`` and ``ferkit webcam``: tracked, smoothed expressions in moving images."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ferkit.cli._options import (
    BackendOpt,
    DetectorOpt,
    DeviceOpt,
    ModelOpt,
    QuietOpt,
    check_choice,
)

AlphaOpt = Annotated[float, typer.Option(
    "--alpha", help="smoothing: weight of the newest frame in the per-face moving average "
    "(1 = no smoothing)")]


def _recognizer(model: str, device: str, backend: str, detector: str):
    import ferkit

    return ferkit.Recognizer.from_pretrained(model, device=device, backend=backend,
                                             detector=detector)


def register(app: typer.Typer) -> None:
    @app.command("video")
    def video(
        source: Annotated[str, typer.Argument(help="video file (mp4, avi, mov, mkv …)")],
        out: Annotated[str | None, typer.Option(
            "--out", "-o", help="write an annotated copy: .webm (VP8, plays in browsers), "
            ".mp4 (H.264 where this OpenCV has it, else mp4v), .avi or .mkv")] = None,
        csv: Annotated[str | None, typer.Option(
            "--csv", help="write per-frame, per-face results as CSV")] = None,
        every: Annotated[int, typer.Option(
            "--every", help="analyse every N-th frame (all frames are still written)")] = 1,
        model: ModelOpt = "default",
        backend: BackendOpt = "torch",
        device: DeviceOpt = "auto",
        detector: DetectorOpt = "retinaface",
        alpha: AlphaOpt = 0.4,
        format: Annotated[str, typer.Option(
            "--format", "-f", help="human (summary), json, or quiet (nothing)")] = "human",
        quiet: QuietOpt = False,
    ) -> None:
        """Find faces in a video, follow each one with a track id and smooth its expression.

        Examples:

          ferkit video talk.mp4 --out talk_annotated.webm --csv talk.csv

          ferkit video long.mp4 --every 5 --csv long.csv --format json
        """
        from ferkit.inference.video import analyze_video, video_info
        from ferkit.progress import progress_display, task

        check_choice(format)
        fps, total, (width, height) = video_info(source)
        with progress_display(quiet=quiet or format == "quiet"):
            with task(f"loading {model}"):
                recognizer = _recognizer(model, device, backend, detector)
            with task("frames", total=total or None) as advance:
                summary = analyze_video(source, recognizer, out=out, csv_path=csv, every=every,
                                        alpha=alpha, on_frame=lambda index, result: advance())
        if summary.note and format != "quiet":
            print(f"note: {summary.note}", file=sys.stderr)
        if format == "json":
            print(json.dumps(summary.to_dict(), indent=2))
        elif format == "human":
            print(f"{source}: {width}x{height} @ {fps:.1f} fps, {summary.frames_read} frames, "
                  f"{summary.frames_processed} analysed, {summary.faces} faces in "
                  f"{len(summary.tracks)} tracks")
            for track_id, track in sorted(summary.tracks.items()):
                print(f"  track {track_id:>3}: frames {track['first_frame']}-"
                      f"{track['last_frame']} ({track['frames']} analysed), mostly "
                      f"{track['label']}")
            if summary.out_path:
                print(f"annotated video: {summary.out_path} ({summary.codec})")
            if summary.csv_path:
                print(f"CSV: {summary.csv_path}")

    @app.command("webcam")
    def webcam(
        camera: Annotated[int, typer.Option("--camera", help="camera index (0 = default)")] = 0,
        model: ModelOpt = "default",
        backend: BackendOpt = "torch",
        device: DeviceOpt = "auto",
        detector: DetectorOpt = "retinaface",
        alpha: AlphaOpt = 0.4,
    ) -> None:
        """Live window with each face's tracked, smoothed expression (q or Esc quits).

        Needs a camera and a display, and an OpenCV build with a GUI (opencv-python, not
        opencv-python-headless).

        Examples:

          ferkit webcam

          ferkit webcam --camera 1 --backend onnx
        """
        from ferkit.inference.video import check_gui, open_camera, run_webcam

        # Fail on camera or display before spending seconds loading the model.
        open_camera(camera).release()
        check_gui()
        shown = run_webcam(_recognizer(model, device, backend, detector), camera=camera,
                           alpha=alpha)
        print(f"{shown} frames", file=sys.stderr)

