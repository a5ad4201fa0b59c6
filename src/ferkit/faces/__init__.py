"""Face detection and alignment: find every face, cut the crop the model expects.

Example:
    >>> import numpy as np
    >>> from ferkit.faces import create_detector
    >>> create_detector("retinaface").detect(np.zeros((64, 64, 3), np.uint8))
    []
"""

from ferkit.boxes import box_iou, nms
from ferkit.faces.align import AlignedFace, align_face, template_points, whole_image_face
from ferkit.faces.base import (
    DETECTORS,
    Detection,
    FaceDetector,
    create_detector,
    list_detectors,
    register_detector,
)

__all__ = [
    "DETECTORS",
    "AlignedFace",
    "Detection",
    "FaceDetector",
    "align_face",
    "box_iou",
    "create_detector",
    "list_detectors",
    "nms",
    "register_detector",
    "template_points",
    "whole_image_face",
]
