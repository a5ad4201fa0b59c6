"""Expressions in video and webcam streams: per-face tracks with smoothed probabilities.

Each processed frame goes through the Recognizer (all faces of a frame in one batch).
Faces are linked across frames by an :class:`IoUTracker` (greedy IoU matching: simple,
no appearance model, robust at video frame rates where a face moves little between frames)
and each track's class probabilities are smoothed by a :class:`ProbabilitySmoother`
(exponential moving average), which removes the frame-to-frame flicker of a per-frame
classifier without a lag longer than a few frames.

Examples:
    >>> import ferkit
    >>> from ferkit.inference.video import analyze_video
    >>> rec = ferkit.Recognizer.from_pretrained("default")  # doctest: +SKIP
    >>> summary = analyze_video("talk.mp4", rec, out="talk_annotated.mp4",
    ...                         csv_path="talk.csv")  # doctest: +SKIP
    >>> summary.tracks[1]["label"]  # doctest: +SKIP
    'happy'
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ferkit.errors import FerkitError, InputError

if TYPE_CHECKING:
    from ferkit.inference.results import FaceResult, ImageResult

Box = tuple[float, float, float, float]

#: EMA weight of the newest frame: s_t = alpha * p_t + (1 - alpha) * s_{t-1}.  0.4 means a
#: change of expression dominates the smoothed label after ~2 processed frames, while a
#: single-frame misclassification moves the smoothed probability by only 40% of its jump.
DEFAULT_ALPHA = 0.4
#: minimum IoU between a track's last box and a detection for them to be the same face
DEFAULT_IOU_THRESHOLD = 0.3
#: processed frames a track survives without a matching detection (occlusion, missed face)
DEFAULT_MAX_AGE = 10


class RecognizerLike(Protocol):
    def __call__(self, image: Any, *, color: str = "rgb") -> ImageResult: ...


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (0 when disjoint).

    Examples:
        >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
        0.3333333333333333
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    track_id: int
    box: Box
    misses: int = 0
    hits: int = 1


class IoUTracker:
    """Assigns stable ids to face boxes across frames by greedy IoU matching.

    Each :meth:`update` pairs the new boxes with the live tracks, highest IoU first, as long
    as the IoU is at least ``iou_threshold``; unpaired boxes start new tracks (ids count up
    from 1 and are never reused); a track unpaired for more than ``max_age`` consecutive
    updates is dropped.

    Examples:
        >>> tracker = IoUTracker()
        >>> tracker.update([(0, 0, 10, 10), (50, 50, 60, 60)])
        [1, 2]
        >>> tracker.update([(52, 51, 62, 61), (1, 0, 11, 10)])
        [2, 1]
    """

    def __init__(self, *, iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                 max_age: int = DEFAULT_MAX_AGE) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise FerkitError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_age < 0:
            raise FerkitError(f"max_age must be >= 0, got {max_age}")
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self._tracks: list[_Track] = []
        self._next_id = 1
        self.dropped: list[int] = []  # ids removed by the latest update

    @property
    def live_ids(self) -> list[int]:
        return [t.track_id for t in self._tracks]

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Track ids for ``boxes`` (same order), updating the tracks."""
        pairs = sorted(
            ((box_iou(track.box, box), ti, bi)
             for ti, track in enumerate(self._tracks) for bi, box in enumerate(boxes)),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for iou, ti, bi in pairs:
            if iou < self.iou_threshold:
                break
            if ti in used_tracks or bi in assigned:
                continue
            used_tracks.add(ti)
            track = self._tracks[ti]
            track.box, track.misses = tuple(map(float, boxes[bi])), 0
            track.hits += 1
            assigned[bi] = track.track_id
        self.dropped = []
        survivors = []
        for ti, track in enumerate(self._tracks):
            if ti not in used_tracks:
                track.misses += 1
                if track.misses > self.max_age:
                    self.dropped.append(track.track_id)
                    continue
            survivors.append(track)
        self._tracks = survivors
        for bi, box in enumerate(boxes):
            if bi not in assigned:
                track = _Track(self._next_id, tuple(map(float, box)))
                self._next_id += 1
                self._tracks.append(track)
                assigned[bi] = track.track_id
        return [assigned[bi] for bi in range(len(boxes))]


class ProbabilitySmoother:
    """Per-track exponential moving average of class probabilities.

    ``s_0 = p_0`` (a new track starts at its first observation), then
    ``s_t = alpha * p_t + (1 - alpha) * s_{t-1}``.  The result stays a probability
    distribution because it is a convex combination of distributions.

    Examples:
        >>> smoother = ProbabilitySmoother(alpha=0.5)
        >>> smoother.update(1, np.array([1.0, 0.0]))
        array([1., 0.])
        >>> smoother.update(1, np.array([0.0, 1.0]))
        array([0.5, 0.5])
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0.0 < alpha <= 1.0:
            raise FerkitError(f"smoothing alpha must be in (0, 1] (1 = no smoothing), got {alpha}")
        self.alpha = alpha
        self._state: dict[int, np.ndarray] = {}

    def update(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        previous = self._state.get(track_id)
        smoothed = probs.copy() if previous is None else (
            self.alpha * probs + (1.0 - self.alpha) * previous)
        self._state[track_id] = smoothed
        return smoothed.copy()

    def forget(self, track_ids: Sequence[int]) -> None:
        for track_id in track_ids:
            self._state.pop(track_id, None)


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame: the per-frame result plus its track and smoothed probabilities.

    ``probs``/``label``/``score`` are the smoothed values; ``face.probs`` the raw ones.
    """

    track_id: int
    face: FaceResult
    probs: dict[str, float]
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "label": self.label, "score": self.score,
                "probs": dict(self.probs), "raw": self.face.to_dict()}


@dataclass(frozen=True)
class FrameResult:
    """The faces of one processed frame; ``time_s`` is the frame's timestamp in the video."""

    index: int
    time_s: float
    faces: tuple[TrackedFace, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.index, "time_s": self.time_s,
                "faces": [f.to_dict() for f in self.faces]}


@dataclass
class VideoSummary:
    """What :func:`analyze_video` did: counts, per-track summary and the files written."""

    source: str
    fps: float
    frames_read: int = 0
    frames_processed: int = 0
    faces: int = 0
    #: track id -> {"first_frame", "last_frame", "frames", "label" (most frequent smoothed)}
    tracks: dict[int, dict[str, Any]] = field(default_factory=dict)
    out_path: str | None = None
    csv_path: str | None = None
    #: how the annotated video was encoded (e.g. "VP8 in WebM"), and why, when it is not
    #: the codec its file name asked for
    codec: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fps": self.fps, "frames_read": self.frames_read,
                "frames_processed": self.frames_processed, "faces": self.faces,
                "tracks": {str(k): v for k, v in self.tracks.items()},
                "out_path": self.out_path, "csv_path": self.csv_path, "codec": self.codec,
                "note": self.note}


class StreamAnalyzer:
    """Tracker + smoother around a recognizer: feed BGR frames, get :class:`FrameResult`.

    Used by :func:`analyze_video` and :func:`run_webcam`; usable on any frame source.
    """

    def __init__(self, recognizer: RecognizerLike, *, alpha: float = DEFAULT_ALPHA,
                 iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                 max_age: int = DEFAULT_MAX_AGE) -> None:
        self.recognizer = recognizer
        self.tracker = IoUTracker(iou_threshold=iou_threshold, max_age=max_age)
        self.smoother = ProbabilitySmoother(alpha)

    def process(self, frame_bgr: np.ndarray, *, index: int, time_s: float) -> FrameResult:
        return self.process_many([frame_bgr], indices=[index], times=[time_s])[0]

    def process_many(self, frames_bgr: Sequence[np.ndarray], *, indices: Sequence[int],
                     times: Sequence[float]) -> list[FrameResult]:
        """Consecutive frames in one Recognizer call (their faces share classifier batches),
        then tracked in order."""
        results = self.recognizer(list(frames_bgr), color="bgr")
        out = []
        for result, index, time_s in zip(results, indices, times, strict=True):
            if getattr(result, "error", None):
                raise InputError(f"frame {index}: {result.error}")
            out.append(self.track(result.faces, index=index, time_s=time_s))
        return out

    def track(self, faces: Sequence[FaceResult], *, index: int, time_s: float) -> FrameResult:
        """Assign tracks and smooth probabilities for the faces found in one frame."""
        ids = self.tracker.update([tuple(f.box) for f in faces])
        self.smoother.forget(self.tracker.dropped)
        tracked = []
        for track_id, face in zip(ids, faces, strict=True):
            labels = list(face.probs)
            smoothed = self.smoother.update(track_id, np.array([face.probs[k] for k in labels]))
            best = int(np.argmax(smoothed))
            tracked.append(TrackedFace(track_id, face,
                                       {k: float(v) for k, v in zip(labels, smoothed, strict=True)},
                                       labels[best], float(smoothed[best])))
        return FrameResult(index, time_s, tuple(tracked))


# ------------------------------------------------------------------------------ video files


def open_video(path: str | Path):
    """An opened ``cv2.VideoCapture`` for ``path``, or :class:`InputError` saying why not."""
    cv2 = _import_cv2()
    path = Path(path)
    if not path.exists():
        raise InputError(f"video {path} not found")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"video {path} is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    ok = capture.isOpened()
    if ok:
        ok, _ = capture.read()
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    if not ok:
        capture.release()
        raise InputError(
            f"cannot read video {path}: OpenCV found no decodable frames (not a video, "
            "truncated, or a codec this OpenCV build lacks). Re-encode it, e.g. "
            f"`ffmpeg -i {path.name} -c:v libx264 fixed.mp4`, or extract frames as images"
        )
    # Re-open rather than trust the seek back to frame 0 (not exact for every container).
    capture.release()
    return cv2.VideoCapture(str(path))


def iter_frames(path: str | Path, *,
                every: int = 1) -> Iterator[tuple[int, float, np.ndarray, bool]]:
    """``(index, time_s, frame_bgr, selected)`` for every frame; ``selected`` marks every
    ``every``-th frame (the ones to analyse)."""
    cv2 = _import_cv2()
    if every < 1:
        raise FerkitError(f"--every must be >= 1, got {every}")
    capture = open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            time_s = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield index, float(time_s), frame, index % every == 0
            index += 1
    finally:
        capture.release()


def video_info(path: str | Path) -> tuple[float, int, tuple[int, int]]:
    """``(fps, frame_count, (width, height))``; frame_count is 0 when the container omits it."""
    cv2 = _import_cv2()
    capture = open_video(path)
    try:
        return (float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
                (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                 int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    finally:
        capture.release()


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
        writer, codec = _open_writer(out, fps, (width, height))
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


#: Codecs tried per output extension, best first: (fourcc, description, plays in browsers).
#: The opencv-python wheels carry no H.264 encoder (licensing), but they do carry libvpx, so
#: ``.webm`` (VP8; VP9 is ~2.4x slower to encode for the same use) is the browser-playable
#: choice that always works offline; ``.mp4`` gets H.264 where the OpenCV build has it
#: (a system or conda OpenCV with libx264/openh264), else mp4v, said in the summary's note.
VIDEO_CODECS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    ".webm": (("VP80", "VP8 in WebM", True), ("VP90", "VP9 in WebM", True)),
    ".mp4": (("avc1", "H.264 in MP4", True), ("mp4v", "MPEG-4 Part 2 (mp4v) in MP4", False)),
    ".m4v": (("avc1", "H.264 in M4V", True), ("mp4v", "MPEG-4 Part 2 (mp4v) in M4V", False)),
    ".mov": (("avc1", "H.264 in MOV", True), ("mp4v", "MPEG-4 Part 2 (mp4v) in MOV", False)),
    ".avi": (("MJPG", "Motion JPEG in AVI", False),),
    ".mkv": (("VP80", "VP8 in Matroska", False), ("MJPG", "Motion JPEG in Matroska", False)),
}


@dataclass(frozen=True)
class VideoCodec:
    """The codec a video was written with, and whether browsers play it."""

    fourcc: str
    description: str
    browser_playable: bool
    note: str | None = None


def _open_writer(out: str | Path, fps: float, size: tuple[int, int]):
    """``(cv2.VideoWriter, VideoCodec)`` for ``out``: the best codec its extension allows
    in this OpenCV build (:data:`VIDEO_CODECS`)."""
    cv2 = _import_cv2()
    out = Path(out)
    choices = VIDEO_CODECS.get(out.suffix.lower())
    if choices is None:
        raise FerkitError(f"--out {out}: use a .webm (plays in browsers), .mp4, .avi, .mov or "
                          ".mkv file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerkitError(f"cannot create {out.parent}: {exc.strerror or exc}") from exc
    for rank, (fourcc, description, playable) in enumerate(choices):
        # Probing an encoder the build lacks makes FFmpeg print errors: ours says it better.
        with _quiet_opencv(cv2), _silenced_stderr():
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), fps or 25.0,
                                     size)
        if writer.isOpened():
            note = None
            if rank > 0:
                wanted = choices[0][1]
                note = (f"this OpenCV build cannot write {wanted}; wrote {description} "
                        "instead" + ("" if playable else ", which most browsers do not play: "
                                     "use a .webm name for a browser-playable video"))
            return writer, VideoCodec(fourcc, description, playable, note)
        writer.release()
    raise FerkitError(f"cannot write video {out} with {' or '.join(c[1] for c in choices)} "
                      "(this OpenCV build lacks the encoder, or the folder is not writable); "
                      "try a .webm or .avi name")


@contextlib.contextmanager
def _silenced_stderr():
    """Mute the process's stderr (file descriptor 2) for the block: FFmpeg writes there
    directly, beyond Python's and OpenCV's loggers."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# ------------------------------------------------------------------------------- drawing

def draw_frame(frame_bgr: np.ndarray, faces: Sequence[TrackedFace]) -> np.ndarray:
    """A copy of the frame with each face's box, ``#track label score`` and landmarks,
    drawn by :func:`ferkit.inference.annotate.draw_labelled_boxes` (the same look and label
    placement as ``ferkit predict --annotate`` and the web page)."""
    from ferkit.inference.annotate import LabelledBox, draw_labelled_boxes, label_colour

    boxes = [LabelledBox(tuple(face.face.box), (f"#{face.track_id} {face.label} "
                                                f"{face.score:.2f}",),
                         label_colour(face.label), getattr(face.face, "landmarks", None))
             for face in faces]
    if not boxes:
        return frame_bgr.copy()
    drawn = draw_labelled_boxes(np.ascontiguousarray(frame_bgr[..., ::-1]), boxes)
    return np.ascontiguousarray(np.asarray(drawn)[..., ::-1])


# -------------------------------------------------------------------------------- webcam


def check_gui() -> None:
    """Raise :class:`FerkitError` saying how to fix it when no window can be opened."""
    cv2 = _import_cv2()
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise FerkitError(
            "no display: `ferkit webcam` opens a window but DISPLAY is not set (headless or "
            "SSH session). Run it in a desktop session (or `ssh -X`), or record a clip and "
            "use `ferkit video CLIP.mp4 --out annotated.mp4`"
        )
    gui = _opencv_gui_backend(cv2)
    if gui in ("NONE", ""):
        raise FerkitError(
            "this OpenCV build has no GUI (opencv-python-headless), so it cannot open a "
            "window. Fix: pip uninstall -y opencv-python-headless && pip install "
            "opencv-python; or use `ferkit video FILE --out annotated.mp4`"
        )


def open_camera(index: int = 0):
    """An opened ``cv2.VideoCapture`` for camera ``index`` or an :class:`InputError`."""
    cv2 = _import_cv2()
    with _quiet_opencv(cv2):  # OpenCV logs its own V4L2/FFMPEG warnings; ours says it better
        capture = cv2.VideoCapture(index)
        ok = capture.isOpened()
        if ok:
            ok, _ = capture.read()
    if not ok:
        capture.release()
        found = sorted(p.name for p in Path("/dev").glob("video*")) if Path("/dev").is_dir() else []
        seen = f"video devices present: {', '.join(found)}" if found else "no /dev/video* devices"
        raise InputError(
            f"no camera at index {index} ({seen}). Connect a camera, close other apps using "
            "it, check permissions (Linux: the 'video' group), or try --camera 1"
        )
    return capture


def run_webcam(recognizer: RecognizerLike, *, camera: int = 0, alpha: float = DEFAULT_ALPHA,
               window: str = "ferkit (q to quit)", max_frames: int | None = None) -> int:
    """Show the camera with tracked, smoothed expressions until ``q``/Esc; frames shown."""
    cv2 = _import_cv2()
    capture = open_camera(camera)
    try:
        check_gui()
        analyzer = StreamAnalyzer(recognizer, alpha=alpha)
        shown = 0
        start = _now()
        while max_frames is None or shown < max_frames:
            ok, frame = capture.read()
            if not ok:
                raise InputError(f"camera {camera} stopped delivering frames")
            result = analyzer.process(frame, index=shown, time_s=_now() - start)
            cv2.imshow(window, draw_frame(frame, result.faces))
            shown += 1
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:
                break  # window closed with the mouse
        return shown
    finally:
        capture.release()
        # A headless build raises here: there was never a window to close.
        with contextlib.suppress(cv2.error):
            cv2.destroyAllWindows()


@contextlib.contextmanager
def _quiet_opencv(cv2):
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _now() -> float:
    import time

    return time.perf_counter()


def _opencv_gui_backend(cv2) -> str:
    try:
        info = cv2.getBuildInformation()
    except Exception:
        return "unknown"
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper()
    return "NONE"


def _import_cv2():
    try:
        import cv2
    except ImportError as exc:
        raise FerkitError(
            "video needs OpenCV: pip install 'ferkit[faces]' (opencv-python-headless), or "
            "opencv-python for `ferkit webcam`"
        ) from exc
    return cv2
