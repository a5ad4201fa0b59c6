"""Expressions in video and webcam streams: per-face tracks with smoothed probabilities.

Each processed frame goes through the Recognizer (all faces of a frame in one batch); faces
are linked across frames by an :class:`IoUTracker` and each track's probabilities smoothed by
a :class:`ProbabilitySmoother` (:mod:`.tracking`), both driven by a :class:`StreamAnalyzer`
(:mod:`.stream`).  Around that: :func:`analyze_video` for files (:mod:`.analyze`, reading and
writing in :mod:`.files`), :func:`run_webcam` for a camera window (:mod:`.webcam`), and
:func:`draw_frame` for the annotations both draw (:mod:`.drawing`).

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

import warnings

from ferkit.boxes import Box
from ferkit.boxes import box_iou as _pairwise_iou
from ferkit.inference.video.analyze import analyze_video
from ferkit.inference.video.drawing import draw_frame
from ferkit.inference.video.files import (
    VIDEO_CODECS,
    VideoCodec,
    iter_frames,
    open_video,
    open_writer,
    video_info,
)
from ferkit.inference.video.results import FrameResult, TrackedFace, VideoSummary
from ferkit.inference.video.stream import RecognizerLike, StreamAnalyzer
from ferkit.inference.video.tracking import (
    DEFAULT_ALPHA,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_AGE,
    IoUTracker,
    ProbabilitySmoother,
)
from ferkit.inference.video.webcam import check_gui, open_camera, run_webcam

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_IOU_THRESHOLD",
    "DEFAULT_MAX_AGE",
    "VIDEO_CODECS",
    "Box",
    "FrameResult",
    "IoUTracker",
    "ProbabilitySmoother",
    "RecognizerLike",
    "StreamAnalyzer",
    "TrackedFace",
    "VideoCodec",
    "VideoSummary",
    "analyze_video",
    "box_iou",
    "check_gui",
    "draw_frame",
    "iter_frames",
    "open_camera",
    "open_video",
    "open_writer",
    "run_webcam",
    "video_info",
]


def box_iou(a: Box, b: Box) -> float:
    """Deprecated: IoU of two single boxes; use :func:`ferkit.boxes.box_iou` (pairwise).

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     box_iou((0, 0, 10, 10), (5, 0, 15, 10))
        0.3333333333333333
    """
    warnings.warn("ferkit.inference.video.box_iou is deprecated and goes in the next release: "
                  "use ferkit.boxes.box_iou(boxes_a, boxes_b), which returns the pairwise "
                  "matrix ([0, 0] for two single boxes)", DeprecationWarning, stacklevel=2)
    return float(_pairwise_iou(a, b)[0, 0])
