"""YuNet (libfacedetection, Wu et al. 2023) through the ``yuface`` wheel: a second detector
with five landmarks whose C++ code and weights ship inside the wheel (BSD; Linux/Windows,
CPython ≤ 3.11 wheels).  Integer coordinates; slower and less precise than RetinaFace here,
useful as a cross-check or where ONNX Runtime is unwanted.
"""

from __future__ import annotations

import numpy as np

from ferkit.errors import FerkitError
from ferkit.faces.base import Detection, check_image, register_detector


class YuNetDetector:
    """YuNet face detector.

    Args:
        score_threshold: keep faces whose confidence is above this (0..1); 0.8 finds all 43
            dlib faces and neither dog of dogs.jpg (0.7 lets one dog through at 0.77).
        max_side: larger images are shrunk to this longer side for detection (the library
            warns that it degrades above 960 pixels); boxes are mapped back.
    """

    name = "yunet"

    def __init__(self, *, score_threshold: float = 0.8, max_side: int | None = 960) -> None:
        try:
            import yuface
        except ImportError as exc:
            raise FerkitError(f"the yunet detector needs the yuface package ({exc}): "
                              "`pip install yuface`, or use detector='retinaface'") from exc
        self._detect = yuface.detect
        self.score_threshold = float(score_threshold)
        self.max_side = max_side

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        image = check_image(image_rgb)
        scale = 1.0
        if self.max_side and max(image.shape[:2]) > self.max_side:
            import cv2

            scale = self.max_side / max(image.shape[:2])
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        confs, boxes, points = self._detect(np.ascontiguousarray(image[..., ::-1]),
                                            conf=self.score_threshold)
        order = np.argsort(-confs, kind="stable")
        detections = []
        for i in order:
            x, y, w, h = (float(v) / scale for v in boxes[i])
            pts = np.asarray(points[i], dtype=np.float64).reshape(5, 2) / scale
            detections.append(Detection(box=(x, y, x + w, y + h), score=float(confs[i]) / 100,
                                        landmarks=tuple((float(px), float(py))
                                                        for px, py in pts)))
        return detections


@register_detector("yunet", "YuNet (libfacedetection via yuface), boxes + 5 landmarks")
def _create(**options) -> YuNetDetector:
    return YuNetDetector(**options)
