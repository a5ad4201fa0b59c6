"""From face-crop coordinates back to the original photo, through the alignment transform.

A face's ``crop_matrix`` ``M`` (2x3) maps image pixels to crop pixels, exactly what
``cv2.warpAffine(image, M, crop_size)`` used to cut the crop; so a crop-space map is drawn
on the photo with the same matrix read as an inverse map (``WARP_INVERSE_MAP``): photo
pixel ``p`` takes the map's value at ``M @ p``.  Pixel centres sit at integer coordinates
on both sides, as in OpenCV.

Example:
    >>> import numpy as np
    >>> from ferkit.explain.projection import crop_to_image, image_to_crop
    >>> M = np.array([[0.5, 0, -10], [0, 0.5, -20]])      # scale 1/2, shift
    >>> crop_to_image([[0, 0]], M)
    array([[20., 40.]])
    >>> image_to_crop([[20, 40]], M)
    array([[0., 0.]])
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ferkit.errors import FerkitError


def as_matrix(matrix: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """A ``(2, 3)`` float64 array from an array or nested tuples (``FaceResult.crop_matrix``)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3) or not np.isfinite(m).all():
        raise FerkitError(f"crop_matrix must be a finite 2x3 affine matrix, got {m.tolist()}")
    return m


def invert_affine(matrix: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """The crop → image matrix of an image → crop matrix."""
    m = as_matrix(matrix)
    if abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise FerkitError(f"crop_matrix {m.tolist()} is singular and cannot be inverted")
    return cv2.invertAffineTransform(m)


def image_to_crop(points: np.ndarray | Sequence[Sequence[float]],
                  matrix: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``(N, 2)`` image ``(x, y)`` points in crop coordinates."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = as_matrix(matrix)
    return pts @ m[:, :2].T + m[:, 2]


def crop_to_image(points: np.ndarray | Sequence[Sequence[float]],
                  matrix: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``(N, 2)`` crop ``(x, y)`` points in image coordinates."""
    return image_to_crop(points, invert_affine(matrix))


def project_map(heatmap: np.ndarray, matrix: np.ndarray | Sequence[Sequence[float]],
                image_size: tuple[int, int]) -> np.ndarray:
    """Warp a crop-space ``(h, w)`` map onto an image of ``image_size`` ``(H, W)``.

    Pixels outside the crop's footprint are 0; use :func:`crop_footprint` to tell "outside"
    from "not attended".
    """
    m = as_matrix(matrix)
    height, width = image_size
    return cv2.warpAffine(np.ascontiguousarray(heatmap, dtype=np.float32), m, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def crop_footprint(crop_size: tuple[int, int], matrix: np.ndarray | Sequence[Sequence[float]],
                   image_size: tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the photo pixels that the crop of ``crop_size`` covers."""
    ones = np.ones(crop_size, dtype=np.float32)
    return project_map(ones, matrix, image_size) > 0.5
