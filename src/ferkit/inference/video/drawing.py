"""Annotated frames: each tracked face's box, track id, smoothed label and landmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferkit.inference.video.results import TrackedFace


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
