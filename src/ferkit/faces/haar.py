"""OpenCV's Viola-Jones frontal-face Haar cascade: a fallback detector (boxes, no landmarks).

It misses more faces than RetinaFace (38/43 on the dlib photos, measured with OpenCV 4) and is
slower, but needs only OpenCV 4 (OpenCV 5 dropped ``CascadeClassifier``: there this detector
explains that and the others remain).  OpenCV 5 wheels ship no cascade XML files either, so
the file is looked for in this order: the ``cascade_path`` argument, ``$FERKIT_HAAR_CASCADE``,
``cv2.data.haarcascades`` (OpenCV 4 wheels), then the Debian/Ubuntu ``opencv-data``
package's folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError
from ferkit.faces.base import Detection, check_image, register_detector

CASCADE_NAME = "haarcascade_frontalface_default.xml"
_SYSTEM_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
                "/usr/local/share/opencv4/haarcascades")


def find_cascade(name: str = CASCADE_NAME) -> Path | None:
    """The path of an OpenCV cascade file, or ``None`` when none is installed."""
    candidates = []
    if os.environ.get("FERKIT_HAAR_CASCADE"):
        candidates.append(Path(os.environ["FERKIT_HAAR_CASCADE"]))
    try:
        import cv2

        data_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if data_dir:
            candidates.append(Path(data_dir) / name)
    except ImportError:
        pass
    candidates += [Path(d) / name for d in _SYSTEM_DIRS]
    return next((p for p in candidates if p.is_file()), None)


class HaarDetector:
    """OpenCV ``CascadeClassifier.detectMultiScale`` on the grayscale, histogram-equalised image.

    Args:
        cascade_path: the cascade XML (default: :func:`find_cascade`).
        scale_factor, min_neighbors: ``detectMultiScale`` settings (fewer neighbours: more
            faces and more false detections).
        min_size: smallest face side in pixels.
    """

    name = "haar"

    def __init__(self, *, cascade_path: str | Path | None = None, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 24) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise FerkitError("the haar detector needs OpenCV: "
                              "`pip install opencv-python-headless`") from exc
        if not hasattr(cv2, "CascadeClassifier"):
            raise FerkitError(
                f"the haar detector needs OpenCV 4: OpenCV {cv2.__version__} has no "
                "CascadeClassifier. Use detector='retinaface' or 'yunet', or install "
                "opencv-python-headless<5 (replacing, not beside, the installed OpenCV)"
            )
        path = Path(cascade_path) if cascade_path else find_cascade()
        if path is None or not path.is_file():
            raise FerkitError(
                f"Haar cascade {cascade_path or CASCADE_NAME} not found: OpenCV 5 ships no "
                "cascade files. Install them (`apt-get install opencv-data`), point "
                "$FERKIT_HAAR_CASCADE at the XML file, or use detector='retinaface'"
            )
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FerkitError(f"{path} is not a readable OpenCV cascade file")
        self._cv2 = cv2
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(check_image(image_rgb), cv2.COLOR_RGB2GRAY))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        boxes = sorted((tuple(map(float, b)) for b in np.asarray(found).reshape(-1, 4)),
                       key=lambda b: -b[2] * b[3])
        # No calibrated confidence: 1.0 for every box, biggest face first.
        return [Detection(box=(x, y, x + w, y + h), score=1.0) for x, y, w, h in boxes]


@register_detector("haar", "OpenCV Haar cascade, boxes only (fallback; needs cascade files)")
def _create(**options) -> HaarDetector:
    return HaarDetector(**options)
