"""Video files end to end: every frame through the recognizer, tracker and smoother, with an
annotated copy, a per-face CSV and a summary (:func:`analyze_video`; example in
:mod:`ferkit.inference.video`)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError
from ferkit.inference.video.drawing import draw_frame
from ferkit.inference.video.files import iter_frames, open_writer, video_info
from ferkit.inference.video.results import FrameResult, TrackedFace, VideoSummary
from ferkit.inference.video.stream import RecognizerLike, StreamAnalyzer
from ferkit.inference.video.tracking import (
    DEFAULT_ALPHA,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_AGE,
)


def analyze_video(
    source: str | Path,
    recognizer: RecognizerLike,
    *,
    out: str | Path | None = None,
    csv_path: str | Path | None = None,
    every: int = 1,
    alpha: float = DEFAULT_ALPHA,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_age: int = DEFAULT_MAX_AGE,
    on_frame: Callable[[int, FrameResult | None], None] | None = None,
    frames_per_batch: int = 8,
) -> VideoSummary:
    """Track faces and their smoothed expressions through a video file.

    Args:
        source: the video file.
        recognizer: a :class:`ferkit.Recognizer` (or anything called as
            ``recognizer(frame_bgr, color="bgr") -> ImageResult``).
        out: write an annotated copy (boxes, track ids, smoothed labels) here; every frame
            is written, skipped frames carry the latest annotations.  ``.webm`` is VP8
            (plays in browsers), ``.mp4`` H.264 where this OpenCV has it, else mp4v (the
            summary's ``note`` says so), ``.avi`` Motion JPEG (:data:`VIDEO_CODECS`).
        csv_path: write one row per face per processed frame: ``frame, time_s, track_id,
            x1, y1, x2, y2, label, score, detector_score`` then ``p_<class>`` (smoothed)
            and ``raw_<class>`` (this frame alone) for every class.
        every: analyse every N-th frame (smoothing and ``max_age`` count processed frames).
        alpha, iou_threshold, max_age: see :data:`DEFAULT_ALPHA` and :class:`IoUTracker`.
        on_frame: called after each frame read with ``(index, result or None if skipped)``
            (the CLI's progress bar).
        frames_per_batch: analysed frames sent to the Recognizer together, so the faces of
            several frames fill one classifier batch (ONNX Runtime: ~2x the faces/s at batch
            8 than at batch 1 on 2 cores); tracking still runs frame by frame, in order.
    """
    if frames_per_batch < 1:
        raise FerkitError(f"frames_per_batch must be >= 1, got {frames_per_batch}")
    fps, _, (width, height) = video_info(source)
    summary = VideoSummary(source=str(source), fps=fps)
    analyzer = StreamAnalyzer(recognizer, alpha=alpha, iou_threshold=iou_threshold,
                              max_age=max_age)
    writer = None
    if out is not None:
        writer, codec = open_writer(out, fps, (width, height))
        summary.codec, summary.note = codec.description, codec.note
    csv_file = None
    csv_writer = None
    latest: FrameResult | None = None
    label_counts: dict[int, dict[str, int]] = {}
    try:
        if csv_path is not None:
            csv_file = _open_for_writing(csv_path)
        for index, _time_s, frame, result in _analysed_in_batches(
                analyzer, iter_frames(source, every=every), frames_per_batch):
            summary.frames_read += 1
            if result is not None:
                latest = result
                summary.frames_processed += 1
                summary.faces += len(result.faces)
                for face in result.faces:
                    track = summary.tracks.setdefault(
                        face.track_id, {"first_frame": index, "frames": 0})
                    track["last_frame"] = index
                    track["frames"] += 1
                    counts = label_counts.setdefault(face.track_id, {})
                    counts[face.label] = counts.get(face.label, 0) + 1
                if csv_file is not None and result.faces:
                    if csv_writer is None:
                        csv_writer = csv.writer(csv_file)
                        csv_writer.writerow(_csv_header(result.faces[0]))
                    for face in result.faces:
                        csv_writer.writerow(_csv_row(result, face))
            if writer is not None:
                writer.write(draw_frame(frame, latest.faces if latest else ()))
            if on_frame is not None:
                on_frame(index, result)
        if csv_file is not None and csv_writer is None:
            csv.writer(csv_file).writerow(_CSV_FIXED)  # no face anywhere: header only
    finally:
        if writer is not None:
            writer.release()
        if csv_file is not None:
            csv_file.close()
    for track_id, counts in label_counts.items():
        summary.tracks[track_id]["label"] = max(counts, key=counts.get)
    summary.out_path = str(out) if out is not None else None
    summary.csv_path = str(csv_path) if csv_path is not None else None
    return summary


def _analysed_in_batches(analyzer: StreamAnalyzer, frames, frames_per_batch: int):
    """``(index, time_s, frame, FrameResult or None)`` in frame order, analysing the
    selected frames ``frames_per_batch`` at a time."""
    pending: list[tuple[int, float, np.ndarray, bool]] = []
    selected_count = 0

    def flush():
        chosen = [item for item in pending if item[3]]
        results = iter(analyzer.process_many([f for _, _, f, _ in chosen],
                                             indices=[i for i, _, _, _ in chosen],
                                             times=[t for _, t, _, _ in chosen])
                       if chosen else [])
        done = [(i, t, f, next(results) if sel else None) for i, t, f, sel in pending]
        pending.clear()
        return done

    for item in frames:
        pending.append(item)
        selected_count += item[3]
        if selected_count == frames_per_batch:
            yield from flush()
            selected_count = 0
    yield from flush()


_CSV_FIXED = ["frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "label", "score",
              "detector_score"]


def _csv_header(face: TrackedFace) -> list[str]:
    labels = list(face.probs)
    return _CSV_FIXED + [f"p_{k}" for k in labels] + [f"raw_{k}" for k in labels]


def _csv_row(result: FrameResult, face: TrackedFace) -> list[Any]:
    x1, y1, x2, y2 = face.face.box
    det = face.face.detector_score
    return ([result.index, f"{result.time_s:.4f}", face.track_id, f"{x1:.1f}", f"{y1:.1f}",
             f"{x2:.1f}", f"{y2:.1f}", face.label, f"{face.score:.5f}",
             "" if det is None else f"{det:.4f}"]
            + [f"{v:.5f}" for v in face.probs.values()]
            + [f"{face.face.probs[k]:.5f}" for k in face.probs])


def _open_for_writing(path: str | Path):
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", newline="")
    except OSError as exc:
        raise FerkitError(f"cannot write {path}: {exc.strerror or exc}") from exc
