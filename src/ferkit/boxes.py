"""Face boxes in image pixels: the :data:`Box` type, pairwise IoU and non-maximum suppression.

One home for box geometry, below both the face detectors (which suppress overlapping
detections) and inference (which tracks faces across video frames by overlap).

Example:
    >>> box_iou([(0, 0, 10, 10)], [(5, 0, 15, 10), (20, 20, 30, 30)]).round(3).tolist()
    [[0.333, 0.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: ``(x1, y1, x2, y2)`` in image pixels (floats; may reach past the border).
Box = tuple[float, float, float, float]


def box_iou(a: np.ndarray | Sequence[Box], b: np.ndarray | Sequence[Box]) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes (``x1, y1, x2, y2``) → ``(N, M)``.

    Disjoint boxes and boxes without area have IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    ``boxes`` is ``(N, 4)`` as ``x1, y1, x2, y2``.

    Example:
        >>> b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], float)
        >>> nms(b, np.array([0.9, 0.8, 0.7]), 0.5).tolist()
        [0, 2]
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[box_iou(boxes[best][None], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
