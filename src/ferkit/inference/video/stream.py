"""The tracker and smoother around a recognizer: BGR frames in, :class:`FrameResult` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ferkit.errors import InputError
from ferkit.inference.video.results import FrameResult, TrackedFace
from ferkit.inference.video.tracking import (
    DEFAULT_ALPHA,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_AGE,
    IoUTracker,
    ProbabilitySmoother,
)

if TYPE_CHECKING:
    from ferkit.inference.results import FaceResult, ImageResult


class RecognizerLike(Protocol):
    """What the analyzer calls: a :class:`ferkit.Recognizer` or anything alike."""

    def __call__(self, image: Any, *, color: str = "rgb") -> ImageResult: ...


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
