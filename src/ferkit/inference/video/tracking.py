"""Following faces across frames: greedy IoU tracks and per-track probability smoothing.

Faces are linked across frames by an :class:`IoUTracker` (greedy IoU matching: simple, no
appearance model, robust at video frame rates where a face moves little between frames)
and each track's class probabilities are smoothed by a :class:`ProbabilitySmoother`
(exponential moving average), which removes the frame-to-frame flicker of a per-frame
classifier without a lag longer than a few frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ferkit.boxes import Box, box_iou
from ferkit.errors import FerkitError

#: EMA weight of the newest frame: s_t = alpha * p_t + (1 - alpha) * s_{t-1}.  0.4 means a
#: change of expression dominates the smoothed label after ~2 processed frames, while a
#: single-frame misclassification moves the smoothed probability by only 40% of its jump.
DEFAULT_ALPHA = 0.4
#: minimum IoU between a track's last box and a detection for them to be the same face
DEFAULT_IOU_THRESHOLD = 0.3
#: processed frames a track survives without a matching detection (occlusion, missed face)
DEFAULT_MAX_AGE = 10


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
        ious = box_iou([track.box for track in self._tracks], boxes)
        pairs = sorted(
            ((float(ious[ti, bi]), ti, bi)
             for ti in range(len(self._tracks)) for bi in range(len(boxes))),
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
