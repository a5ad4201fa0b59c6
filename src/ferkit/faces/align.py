"""Face alignment: from a detection to the crop a model's :class:`~ferkit.config.DataConfig`
asks for.

Two recipes, chosen by ``DataConfig.alignment`` (so training and inference crop alike):

``"five_point"``
    A similarity transform (rotation, uniform scale, shift; least squares, Umeyama 1991)
    maps the five detected landmarks onto a canonical template: the widely used 112x112
    ArcFace template (eye centres at y=51.6, mouth corners at y=92.3), shrunk towards the
    crop centre by ``1 / (1 + face_margin)`` and scaled to ``input_size``.  The face is
    upright, eyes level, same size in every crop.
``"box"``
    A square of side ``max(box width, box height) * (1 + face_margin)`` centred on the box,
    scaled to ``input_size``: the loose, unrotated framing of FER2013's 48x48 faces (which
    came from a box detector).  Also the fallback of ``"five_point"`` when the detector gives
    no landmarks (Haar, or boxes passed by the caller).

Coordinates are continuous with pixel edges on integers (pixel column ``j`` spans
``[j, j+1)``), so the box ``(0, 0, W, H)`` is the whole image; detectors report points in
the same convention.  Pixels outside the image are black.  Every :class:`AlignedFace` keeps its 2x3
image→crop matrix, so maps computed on the crop (Grad-CAM) can be projected back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ferkit.config import DataConfig
from ferkit.faces.base import Box, Detection, Landmarks

#: ArcFace's 5-point template for a 112x112 crop: eye (image left), eye (image right),
#: nose tip, mouth corner (image left), mouth corner (image right).
ARCFACE_TEMPLATE_112 = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
])


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face cut out of an image, ready for ``eval_transform``.

    Attributes:
        crop: ``HxWx3`` uint8 RGB, ``(H, W)`` from the model's ``input_size``.
        box: ``(x1, y1, x2, y2)`` of the face in image pixels.
        landmarks: five ``(x, y)`` image points, or ``None``.
        detector_score: the detector's confidence (``None`` for caller-given boxes).
        matrix: ``(2, 3)`` float64 affine map from image to crop coordinates:
            ``crop_xy = matrix[:, :2] @ image_xy + matrix[:, 2]``.
    """

    crop: np.ndarray
    box: Box
    landmarks: Landmarks | None
    detector_score: float | None
    matrix: np.ndarray


def template_points(size_hw: tuple[int, int], face_margin: float) -> np.ndarray:
    """Where the five landmarks land in an aligned crop of ``(height, width)``.

    Example:
        >>> template_points((112, 112), 0.0)[0].round(2).tolist()
        [38.29, 51.7]
    """
    height, width = size_hw
    unit = ARCFACE_TEMPLATE_112 / 112.0
    unit = (unit - 0.5) / (1.0 + face_margin) + 0.5
    return unit * np.array([width, height], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (no reflection) that best maps ``src`` points onto ``dst``
    (least squares, Umeyama's closed form).

    Example:
        >>> src = np.array([[0, 0], [1, 0], [0, 1]], float)
        >>> (similarity_transform(src, 2 * src + 5).round(6) + 0.0).tolist()
        [[2.0, 0.0, 5.0], [0.0, 2.0, 5.0]]
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rotation = u @ d @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = (s * np.diag(d)).sum() / var_src if var_src > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def box_matrix(box: Box, size_hw: tuple[int, int], face_margin: float) -> np.ndarray:
    """Image→crop matrix of the ``"box"`` recipe (square around the box, plus margin)."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + face_margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = size_hw
    sx, sy = width / side, height / side
    return np.array([[sx, 0.0, width / 2 - sx * cx], [0.0, sy, height / 2 - sy * cy]])


def crop_matrix(face: Detection, data: DataConfig) -> np.ndarray:
    """The image→crop matrix ``data``'s recipe gives for ``face``."""
    size_hw = data.input_size[1:]
    if data.alignment == "five_point" and face.landmarks is not None:
        return similarity_transform(np.asarray(face.landmarks),
                                    template_points(size_hw, data.face_margin))
    return box_matrix(face.box, size_hw, data.face_margin)


def align_face(image_rgb: np.ndarray, face: Detection, data: DataConfig) -> AlignedFace:
    """Cut ``face`` out of ``image_rgb`` the way ``data`` (a model's DataConfig) asks.

    Example:
        >>> import numpy as np
        >>> from ferkit.config import DataConfig
        >>> img = np.zeros((100, 100, 3), np.uint8)
        >>> face = align_face(img, Detection((20, 20, 60, 60), 0.99), DataConfig(
        ...     input_size=(3, 64, 64), alignment="box", face_margin=0.0))
        >>> face.crop.shape, float(face.matrix[0, 0])
        ((64, 64, 3), 1.6)
    """
    matrix = crop_matrix(face, data)
    crop = warp(image_rgb, matrix, data.input_size[1:])
    return AlignedFace(crop=crop, box=tuple(map(float, face.box)), landmarks=face.landmarks,
                       detector_score=face.score, matrix=matrix)


def whole_image_face(image_rgb: np.ndarray, data: DataConfig) -> AlignedFace:
    """The whole image as one already-cropped face, resized to ``input_size``."""
    height, width = image_rgb.shape[:2]
    out_h, out_w = data.input_size[1:]
    matrix = np.array([[out_w / width, 0.0, 0.0], [0.0, out_h / height, 0.0]])
    # Replicate: the crop covers exactly the image, so no black should bleed in at the edges.
    return AlignedFace(crop=warp(image_rgb, matrix, (out_h, out_w), replicate_border=True),
                       box=(0.0, 0.0, float(width), float(height)), landmarks=None,
                       detector_score=None, matrix=matrix)


def warp(image: np.ndarray, matrix: np.ndarray, size_hw: tuple[int, int], *,
         replicate_border: bool = False) -> np.ndarray:
    """Apply the image→crop ``matrix``, producing an ``(H, W, 3)`` crop (outside the image:
    black, or the nearest edge pixel with ``replicate_border``).

    When the crop shrinks the face more than 2x, the face region is first reduced with area
    averaging, so small crops of big faces are not aliased.
    """
    import cv2

    out_h, out_w = size_hw
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 0.5:
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], dtype=np.float64)
        corners = corners @ inverse[:, :2].T + inverse[:, 2]
        x0 = max(0, math.floor(corners[:, 0].min()) - 2)
        y0 = max(0, math.floor(corners[:, 1].min()) - 2)
        x1 = min(image.shape[1], math.ceil(corners[:, 0].max()) + 2)
        y1 = min(image.shape[0], math.ceil(corners[:, 1].max()) + 2)
        if x1 - x0 > 1 and y1 - y0 > 1:
            roi = image[y0:y1, x0:x1]
            shrink = 2 * scale  # leaves a 2x reduction to the warp's bilinear sampling
            new_w = max(1, round(roi.shape[1] * shrink))
            new_h = max(1, round(roi.shape[0] * shrink))
            small = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
            fx, fy = new_w / roi.shape[1], new_h / roi.shape[0]
            # image = small / f + offset, so crop = M[:, :2] @ (small / f + offset) + M[:, 2]
            local = matrix.copy()
            local[:, 0] = matrix[:, 0] / fx
            local[:, 1] = matrix[:, 1] / fy
            local[:, 2] = matrix[:, 2] + matrix[:, 0] * x0 + matrix[:, 1] * y0
            image, matrix = small, local
    # ferkit's coordinates put pixel edges on integers (pixel j spans [j, j+1)); OpenCV puts
    # pixel centres there: x_cv = x - 0.5 on both sides of the map.
    cv_matrix = matrix.copy()
    cv_matrix[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(np.ascontiguousarray(image), cv_matrix, (out_w, out_h),
                          flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE if replicate_border
                          else cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))
