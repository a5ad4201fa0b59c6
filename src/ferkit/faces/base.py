"""The face-detector interface and the detector registry (box geometry: :mod:`ferkit.boxes`).

Every detector takes an ``HxWx3`` uint8 RGB image and returns a list of :class:`Detection`
(one per face, all faces, best first).  Backends register a factory under a name, so
``create_detector("retinaface")`` and ``create_detector("haar")`` are interchangeable and
the Recognizer never knows which one it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ferkit.boxes import Box
from ferkit.errors import FerkitError
from ferkit.registry import Registry

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


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector: its factory and a one-line summary."""

    factory: Callable[..., FaceDetector]
    summary: str


#: Every face detector.  The backend modules register themselves when first looked up;
#: their heavy libraries (OpenCV, ONNX Runtime) load only when a detector is built.
DETECTORS: Registry[DetectorEntry] = Registry(
    "face detector", loaders=("ferkit.faces.haar", "ferkit.faces.retinaface",
                              "ferkit.faces.yunet"))


def register_detector(name: str, summary: str) -> Callable:
    """Decorator adding a detector factory to :func:`create_detector` under ``name``."""
    return DETECTORS.decorator(name, lambda factory: DetectorEntry(factory, summary))


def list_detectors() -> dict[str, str]:
    """Registered detector names and a one-line summary of each."""
    return {name: DETECTORS.get(name).summary for name in DETECTORS.names()}


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
    return DETECTORS.get(name).factory(**options)


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
