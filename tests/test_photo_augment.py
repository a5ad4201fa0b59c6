"""The ``photo`` augmentation preset: FER2013-like crops degraded the way detector crops of
colour web photos are (box jitter, low resolution, blur, exposure, JPEG, gray)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ferkit.config import GRAY48_DATA, DataConfig
from ferkit.data.transforms import (
    AugmentConfig,
    BoxJitter,
    RandomDownscale,
    RandomGamma,
    RandomJPEG,
    train_transform,
)
from ferkit.errors import FerkitError


def _face(mode: str = "L", size: int = 48) -> Image.Image:
    """A smooth gradient with a bright square: structure that every op visibly changes."""
    y, x = np.mgrid[0:size, 0:size]
    pixels = (40 + 3 * x + y).clip(0, 255).astype(np.uint8)
    pixels[16:32, 16:32] = 230
    image = Image.fromarray(pixels)
    return image.convert("RGB") if mode == "RGB" else image


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def test_each_degradation_does_what_it_says():
    torch.manual_seed(0)
    face = _face()
    jittered = BoxJitter(0.3)(face)
    assert jittered.size == face.size and not np.array_equal(_array(jittered), _array(face))
    # Zoomed out past the border: black enters, as ferkit's crop of a box at a photo's edge.
    torch.manual_seed(3)
    outs = [_array(BoxJitter(0.3)(face)) for _ in range(20)]
    assert min(o.min() for o in outs) == 0 and face.getextrema()[0] > 0
    darker = RandomGamma((2.0, 2.0))(face)
    assert _array(darker).mean() < _array(face).mean() - 20
    assert RandomGamma((1.0, 1.0))(face).tobytes() == face.tobytes()
    coarse = RandomJPEG((5, 5))(face)
    assert coarse.mode == "L" and 1 < np.abs(_array(coarse) - _array(face)).mean() < 30
    soft = RandomDownscale((0.25, 0.25))(face)
    # The square's sharp edge is smeared over several pixels.
    edge = _array(soft)[24, 12:20]
    assert soft.size == face.size and np.all(np.diff(edge) >= -1) and edge[-1] - edge[0] > 50
    assert (np.diff(edge) > 0).sum() >= 4


def test_photo_preset_from_a_recipe_and_its_transform():
    cfg = AugmentConfig.from_dict({"preset": "photo", "jpeg_p": 0.0, "rotation": 5})
    assert cfg.box_jitter == AugmentConfig.preset("photo").box_jitter > 0
    assert cfg.jpeg_p == 0.0 and cfg.rotation == 5.0
    torch.manual_seed(0)
    gray = train_transform(GRAY48_DATA, AugmentConfig.preset("photo"))
    first, second = gray(_face()), gray(_face())
    assert first.shape == (1, 48, 48) and not torch.equal(first, second)
    colour = DataConfig(input_size=(3, 64, 64), mean=(0.5,) * 3, std=(0.5,) * 3)
    all_gray = train_transform(colour, AugmentConfig(hflip=0.0, grayscale_p=1.0))
    out = all_gray(_face("RGB", 80))
    assert out.shape == (3, 64, 64) and torch.allclose(out[0], out[1]) and \
        torch.allclose(out[1], out[2])
    # With every probability at zero and no ranges the photo ops are absent: eval equivalence.
    plain = train_transform(GRAY48_DATA, AugmentConfig.preset("none"))
    assert torch.equal(plain(_face()), plain(_face()))


@pytest.mark.parametrize("bad", [{"box_jitter": 1.5}, {"jpeg_quality": [0, 90]},
                                 {"downscale": [0.5, 2.0]}, {"blur_p": 2.0},
                                 {"preset": "glossy"}, {"gamma": [1.5, 0.5]}])
def test_bad_photo_options_fail_clearly(bad):
    with pytest.raises(FerkitError, match="augment|preset"):
        AugmentConfig.from_dict(bad)
