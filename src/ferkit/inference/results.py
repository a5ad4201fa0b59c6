"""Typed results of :class:`ferkit.Recognizer`: one :class:`ImageResult` per input image,
holding one :class:`FaceResult` per face.  Both are frozen and turn into plain JSON-ready
dicts with ``to_dict()`` (the CLI and the HTTP service print exactly that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferkit.boxes import Box

Matrix = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass(frozen=True)
class FaceResult:
    """One face and its expression.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in image pixels.
        landmarks: five ``(x, y)`` image points (eyes, nose, mouth corners) or ``None``.
        detector_score: the face detector's confidence, ``None`` when the caller gave the box
            or detection was skipped.
        probs: class name → probability (all classes in the model's order, or the ``top_k``
            best, highest first).
        label: the most probable class.
        score: its probability.
        crop_matrix: 2x3 affine map from image to model-crop coordinates.
    """

    box: Box
    landmarks: tuple[tuple[float, float], ...] | None
    detector_score: float | None
    probs: dict[str, float]
    label: str
    score: float
    crop_matrix: Matrix

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/dicts/floats, ready for ``json.dumps``."""
        return {
            "box": [round(v, 2) for v in self.box],
            "landmarks": None if self.landmarks is None
            else [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
            "detector_score": None if self.detector_score is None
            else round(self.detector_score, 6),
            "label": self.label,
            "score": round(self.score, 6),
            "probs": {k: round(v, 6) for k, v in self.probs.items()},
            "crop_matrix": [[round(v, 6) for v in row] for row in self.crop_matrix],
        }


@dataclass(frozen=True)
class ImageResult:
    """All faces found in one image (or why the image could not be used).

    Attributes:
        source: the file path, or a short description of an in-memory image.
        width, height: image size in pixels after EXIF rotation (0 when ``error`` is set).
        faces: one :class:`FaceResult` per face, in detector order (most confident first);
            empty when the image has no face.
        error: ``None``, or the message of the :class:`~ferkit.errors.InputError` that made
            this image unusable (set only for images in a list, so the others go on).
    """

    source: str
    width: int
    height: int
    faces: tuple[FaceResult, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "error": self.error,
            "faces": [face.to_dict() for face in self.faces],
        }


def ranked(probs: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """``(class, probability)`` pairs, most probable first, the ``k`` best (all when ``None``).

    Equal probabilities keep the order of ``probs`` (the model's class order): the one
    ranking behind ``top_k``, the extra label lines and every "next most probable" list.

    Example:
        >>> ranked({"neutral": 0.2, "happy": 0.7, "sad": 0.1}, 2)
        [('happy', 0.7), ('neutral', 0.2)]
    """
    order = sorted(probs.items(), key=lambda item: -item[1])
    return order if k is None else order[:k]
