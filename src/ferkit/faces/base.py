"""The face-detector interface, the detector registry and box helpers.

Every detector takes an ``HxWx3`` uint8 RGB image and returns a list of :class:`Detection`
(one per face, all faces, best first).  Backends register a factory under a name, so
``create_detector("retinaface")`` and ``create_detector("haar")`` are interchangeable and
the Recognizer never knows which one it holds.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ferkit.errors import FerkitError

Box = tuple[float, float, float, float]
Landmarks = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Detection:
    """One detected face.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in image pixels (floats; may reach past the border).
        score: detector confidence in [0, 1] (Haar reports 1.0: it has no calibrated score;
            ``None`` for a box the caller gave).
        landmarks: five ``(x, y)`` points in image pixels, in the order *eye on the image's
            left, eye on the image's right, nose tip, left mouth corner, right mouth corner*,
            or ``None`` when the detector finds no landmarks.
    """

    box: Box
    score: float | None
    landmarks: Landmarks | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with ``detect(image_rgb) -> list[Detection]``.

    Example:
        >>> import numpy as np
        >>> class NoFaces:
        ...     name = "none"
        ...     def detect(self, image_rgb): return []
        >>> isinstance(NoFaces(), FaceDetector)
        True
    """

    name: str

    def detect(self, image_rgb: np.ndarray) -> list[Detection]: ...


_DETECTORS: dict[str, tuple[Callable[..., FaceDetector], str]] = {}


def register_detector(name: str, summary: str) -> Callable:
    """Decorator adding a detector factory to :func:`create_detector` under ``name``."""

    def wrap(factory: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
        if name in _DETECTORS:
            raise ValueError(f"face detector {name!r} is already registered")
        _DETECTORS[name] = (factory, summary)
        return factory

    return wrap


def list_detectors() -> dict[str, str]:
    """Registered detector names and a one-line summary of each."""
    _import_backends()
    return {name: summary for name, (_, summary) in sorted(_DETECTORS.items())}


def create_detector(name: str | FaceDetector = "retinaface", **options) -> FaceDetector:
    """A face detector by name; ``options`` go to its constructor.

    ``"retinaface"`` (default): RetinaFace-MobileNet0.25 with five landmarks (weights shipped
    inside ferkit, ``ferkit/faces/weights/``).  ``"haar"``: OpenCV's frontal-face Haar
    cascade (boxes only; needs the cascade XML files, see
    :class:`~ferkit.faces.haar.HaarDetector`).
    A detector object passes through unchanged.

    Example:
        >>> det = create_detector("retinaface", score_threshold=0.8)
        >>> det.name
        'retinaface'
    """
    if not isinstance(name, str):
        if not isinstance(name, FaceDetector):
            raise FerkitError(f"detector must be a name or have .detect(image), got {name!r}")
        if options:
            raise FerkitError(f"detector options {sorted(options)} only apply to a detector "
                              "given by name; configure the detector object itself")
        return name
    _import_backends()
    entry = _DETECTORS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_DETECTORS), n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise FerkitError(
            f"unknown face detector {name!r}{hint} (available: {', '.join(sorted(_DETECTORS))})"
        )
    return entry[0](**options)


def _import_backends() -> None:
    # Plain imports fill the registry; the heavy libraries load only when a detector is built.
    from ferkit.faces import haar, retinaface, yunet  # noqa: F401


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


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes (``x1, y1, x2, y2``) → ``(N, M)``."""
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


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """The array itself if it is ``HxWx3`` uint8, else a FerkitError saying what it is."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3 \
            or image_rgb.dtype != np.uint8:
        shape = getattr(image_rgb, "shape", None)
        dtype = getattr(image_rgb, "dtype", type(image_rgb).__name__)
        raise FerkitError(
            f"face detectors take an HxWx3 uint8 RGB array, got shape {shape} dtype {dtype}; "
            "use ferkit.inference.io.load_image() to read and convert images"
        )
    return image_rgb
