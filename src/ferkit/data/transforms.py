"""Image transforms derived from a model's :class:`~ferkit.config.DataConfig`.

The eval transform is the single definition of "how a face crop becomes a model input";
training, evaluation, inference and export all use it (or its train-time superset).
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import math
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2

from ferkit.config import DataConfig
from ferkit.errors import FerkitError

_INTERPOLATION = {
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
    "nearest": v2.InterpolationMode.NEAREST,
}


def eval_transform(data: DataConfig) -> v2.Compose:
    """PIL image or uint8 tensor → normalised float tensor ``data.input_size``.

    A PIL image stays on PIL's kernels until it is converted (as in :func:`train_transform`,
    so training and evaluation resize alike); a tensor goes through tensor kernels.  With
    ``data.crop_pct < 1`` the image is resized to ``data.resize_size`` and its centre cut
    out (DACL's ``Resize(256)`` + ``CenterCrop(224)``).
    """
    channels = data.input_size[0]
    return v2.Compose([
        v2.Grayscale(1) if channels == 1 else v2.RGB(),
        *_resize_ops(data),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(data.mean), list(data.std)),
    ])


def _resize_ops(data: DataConfig, *, five_crop: bool = False) -> list[Any]:
    """Resize to ``input_size``, or (``crop_pct < 1``) to ``resize_size`` then crop."""
    _, height, width = data.input_size
    interpolation = _INTERPOLATION[data.interpolation]
    if data.crop_pct >= 1.0:
        if five_crop:
            raise FerkitError(
                "augment.five_crop picks one of five input-size crops of a larger image, so "
                "the model needs crop_pct < 1 (DACL: model.crop_pct: 0.875, i.e. resize to "
                "256 and crop 224)"
            )
        return [v2.Resize((height, width), interpolation=interpolation, antialias=True)]
    resize_h, resize_w = data.resize_size
    # A square input resizes the shorter side, as torchvision's Resize(int) in the
    # references; face crops are square, so this only matters for other images.
    size: int | tuple[int, int] = resize_h if height == width else (resize_h, resize_w)
    crop = RandomFiveCrop((height, width)) if five_crop else v2.CenterCrop((height, width))
    return [v2.Resize(size, interpolation=interpolation, antialias=True), crop]


class RandomFiveCrop(torch.nn.Module):
    """One of the four corner crops or the centre crop, uniformly at random (DACL's
    ``RandomFiveCrop``: ``five_crop(img, size)[random 0..4]``)."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, image: Any) -> Any:
        # torch's RNG: seeded per epoch by FERModule and per DataLoader worker by torch.
        pick = int(torch.randint(5, ()))
        return v2.functional.five_crop(image, list(self.size))[pick]

    def extra_repr(self) -> str:
        return f"size={self.size}"


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation, as a recipe writes it (every field off when zero/None).

    Applied in this order on the PIL image: random resized crop (or a plain resize; with
    the model's ``crop_pct < 1`` a resize to ``resize_size`` and a centre crop, or with
    ``five_crop`` one of the five crops at random), flip,
    geometric ops (rotation/affine, padded random crop; together with probability
    ``geometric_p``), colour jitter, then, on the normalised tensor, random erasing.

    Attributes:
        hflip: probability of a horizontal flip.
        rotation: maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
        translate: maximum shift as a fraction of width/height (RandomAffine).
        scale: ``(min, max)`` zoom range of RandomAffine, e.g. ``(0.9, 1.1)``.
        crop_padding: pad by this many pixels, then crop back to the input size at a random
            position (DAN's ``RandomCrop(224, padding=32)``).
        geometric_p: probability of applying rotation/affine/padded crop together (DAN: 0.2).
        affine_interpolation: resampling of the rotation/affine (``"nearest"``,
            ``"bilinear"``, ``"bicubic"``); ``None`` uses the model's interpolation.
            torchvision's ``RandomRotation``/``RandomAffine`` default, which DAN's reference
            uses, is ``"nearest"``.
        five_crop: with the model's ``crop_pct < 1``: resize to ``resize_size`` and keep one
            of the four corner crops or the centre crop at random (DACL's ``RandomFiveCrop``).
        resized_crop_scale: area range of RandomResizedCrop, e.g. ``(0.8, 1.0)``; ``None``
            resizes the whole image.
        color_jitter: brightness, contrast, saturation, hue strengths (saturation and hue are
            ignored for 1-channel models).
        erasing_p: probability of RandomErasing on the normalised tensor (DAN: 0.5,
            torchvision's default, which the reference leaves unchanged).
        erasing_scale: area range of the erased rectangle (DAN: ``(0.02, 0.25)``).
        box_jitter: detector-box variation: before resizing, the face is re-cut as a square
            whose side changes by up to ``±box_jitter`` and whose centre moves by up to
            ``±box_jitter / 2`` of the side (beyond the image: black, as ferkit's crop of a
            box at a photo's border).  RetinaFace's boxes for one face vary by about 10 %.
        downscale, downscale_p: with probability ``downscale_p``, shrink by a factor in
            ``downscale`` and enlarge back (small, soft faces in photos).
        blur_sigma, blur_p: with probability ``blur_p``, Gaussian blur with a sigma (in
            pixels of the model's input) drawn from ``blur_sigma`` (defocus, motion).
        gamma: gamma drawn from this range on every image (exposure of photos).
        jpeg_quality, jpeg_p: with probability ``jpeg_p``, a JPEG round trip at a quality
            drawn from ``jpeg_quality`` (web photos' compression).
        grayscale_p: probability of turning a colour image gray (3-channel models; a
            1-channel model always sees gray).

    ``preset`` in a recipe's ``augment`` mapping starts from a named preset
    (:meth:`preset`), then the mapping's other keys override it.

    Example:
        >>> AugmentConfig.preset("dan").erasing_scale
        (0.02, 0.25)
        >>> AugmentConfig.from_dict({"hflip": 0.5, "rotation": 10}).rotation
        10.0
    """

    hflip: float = 0.5
    rotation: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] | None = None
    crop_padding: int = 0
    geometric_p: float = 1.0
    affine_interpolation: str | None = None
    five_crop: bool = False
    resized_crop_scale: tuple[float, float] | None = None
    color_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    erasing_p: float = 0.0
    erasing_scale: tuple[float, float] = (0.02, 0.33)
    box_jitter: float = 0.0
    downscale: tuple[float, float] | None = None
    downscale_p: float = 0.0
    blur_sigma: tuple[float, float] | None = None
    blur_p: float = 0.0
    gamma: tuple[float, float] | None = None
    jpeg_quality: tuple[float, float] | None = None
    jpeg_p: float = 0.0
    grayscale_p: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hflip", "geometric_p", "erasing_p", "downscale_p", "blur_p", "jpeg_p",
                     "grayscale_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise FerkitError(f"augment.{name} must be a probability in [0, 1], got {value}")
        if self.rotation < 0 or self.translate < 0 or self.crop_padding < 0:
            raise FerkitError("augment.rotation, translate and crop_padding must be >= 0")
        if not 0.0 <= self.box_jitter < 1.0:
            raise FerkitError(f"augment.box_jitter must be in [0, 1), got {self.box_jitter}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality[0] <= \
                self.jpeg_quality[-1] <= 100:
            raise FerkitError(f"augment.jpeg_quality must be (min, max) within 1..100, got "
                              f"{self.jpeg_quality}")
        if self.downscale is not None and not 0 < self.downscale[0] <= self.downscale[-1] <= 1:
            raise FerkitError(f"augment.downscale must be (min, max) within (0, 1], got "
                              f"{self.downscale}")
        for name in ("scale", "resized_crop_scale", "erasing_scale", "downscale",
                     "blur_sigma", "gamma", "jpeg_quality"):
            value = getattr(self, name)
            if value is not None and (len(value) != 2 or not 0 < value[0] <= value[1]):
                raise FerkitError(f"augment.{name} must be (min, max) with 0 < min <= max, "
                                  f"got {value}")
        resample = self.affine_interpolation
        if resample is not None and resample not in _INTERPOLATION:
            raise FerkitError(f"augment.affine_interpolation must be one of "
                              f"{', '.join(_INTERPOLATION)}, got {resample!r}")
        if self.five_crop and self.resized_crop_scale is not None:
            raise FerkitError("augment.five_crop and augment.resized_crop_scale are two ways to "
                              "crop; set only one")
        if len(self.color_jitter) != 4 or min(self.color_jitter) < 0:
            raise FerkitError("augment.color_jitter must be 4 non-negative numbers "
                              f"(brightness, contrast, saturation, hue), got {self.color_jitter}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AugmentConfig:
        """Build from a recipe's ``augment:`` mapping; unknown keys fail with suggestions."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        raw = dict(raw)
        base = cls.preset(str(raw.pop("preset"))) if "preset" in raw else None
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=2)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise FerkitError(f"unknown augment option {key!r}{hint} "
                                  f"(known: {', '.join(known)})")
            if isinstance(value, list):
                value = tuple(float(v) for v in value)
            elif key == "crop_padding":
                value = int(value)
            elif key == "five_crop":
                if not isinstance(value, bool):
                    raise FerkitError(f"augment.five_crop must be true or false, got {value!r}")
            elif value is None or isinstance(value, str):
                pass
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value)
            values[key] = value
        return dataclasses.replace(base, **values) if base is not None else cls(**values)

    @classmethod
    def preset(cls, name: str) -> AugmentConfig:
        """Named setups: ``"none"``, ``"flip"``, ``"dan"``, ``"dacl"``, ``"fer2013"``,
        ``"photo"``."""
        presets = {
            "none": cls(hflip=0.0),
            "flip": cls(),
            # DAN (yaoing/DAN rafdb.py): flip; with p=0.2 RandomRotation(20) and
            # RandomCrop(224, padding=32) (nearest, torchvision's default);
            # RandomErasing(scale=(0.02, 0.25)) at torchvision's default p=0.5.
            "dan": cls(rotation=20.0, crop_padding=32, geometric_p=0.2,
                       affine_interpolation="nearest", erasing_p=0.5,
                       erasing_scale=(0.02, 0.25)),
            # DACL (amirhfarzaneh/dacl main.py): Resize(256), one of five 224 crops at
            # random, flip; no erasing. Needs the model's crop_pct 0.875 (dacl's default).
            "dacl": cls(five_crop=True),
            # Small 48x48 grayscale images: mild affine and brightness/contrast jitter.
            "fer2013": cls(rotation=10.0, translate=0.1, scale=(0.9, 1.1),
                           color_jitter=(0.2, 0.2, 0.0, 0.0), erasing_p=0.25),
            # FER2013-like crops made to look like detector crops of colour web photos
            # (issue #12): box jitter, low resolution, blur, exposure, JPEG, gray.
            "photo": cls(rotation=10.0, box_jitter=0.12, downscale=(0.4, 1.0), downscale_p=0.3,
                         blur_sigma=(0.3, 1.2), blur_p=0.25, gamma=(0.7, 1.4),
                         color_jitter=(0.3, 0.3, 0.2, 0.0), jpeg_quality=(30, 95),
                         jpeg_p=0.5, grayscale_p=0.2, erasing_p=0.25),
        }
        if name not in presets:
            raise FerkitError(f"unknown augment preset {name!r}; known: {', '.join(presets)}")
        return presets[name]


def train_transform(data: DataConfig, augment: AugmentConfig | None = None) -> v2.Compose:
    """The eval transform plus ``augment``'s random ops: PIL image → normalised tensor.

    With ``AugmentConfig.preset("none")`` it produces exactly what :func:`eval_transform`
    does.

    Example:
        >>> from PIL import Image
        >>> from ferkit.config import GRAY48_DATA
        >>> t = train_transform(GRAY48_DATA, AugmentConfig.preset("fer2013"))
        >>> tuple(t(Image.new("L", (64, 64))).shape)
        (1, 48, 48)
    """
    augment = augment if augment is not None else AugmentConfig()
    channels, height, width = data.input_size
    interpolation = _INTERPOLATION[data.interpolation]
    # PIL kernels until the colour jitter: on small faces they cost a fraction of the tensor
    # kernels' per-call overhead (48x48 FER2013 recipe: 3.9 -> 1.5 ms per image).
    ops: list[Any] = [v2.Grayscale(1) if channels == 1 else v2.RGB()]
    if augment.box_jitter > 0:
        ops.append(BoxJitter(augment.box_jitter))
    if augment.resized_crop_scale is not None:
        ops.append(v2.RandomResizedCrop((height, width), scale=augment.resized_crop_scale,
                                        interpolation=interpolation, antialias=True))
    else:
        ops += _resize_ops(data, five_crop=augment.five_crop)
    if augment.hflip > 0:
        ops.append(v2.RandomHorizontalFlip(augment.hflip))
    geometric: list[Any] = []
    if augment.rotation or augment.translate or augment.scale:
        translate = (augment.translate, augment.translate) if augment.translate else None
        geometric.append(v2.RandomAffine(
            augment.rotation, translate=translate, scale=augment.scale,
            interpolation=_INTERPOLATION[augment.affine_interpolation or data.interpolation]))
    if augment.crop_padding:
        geometric.append(v2.RandomCrop((height, width), padding=augment.crop_padding))
    if geometric and augment.geometric_p > 0:
        ops.append(v2.RandomApply(geometric, p=augment.geometric_p))
    if augment.downscale is not None and augment.downscale_p > 0:
        ops.append(v2.RandomApply([RandomDownscale(augment.downscale)], p=augment.downscale_p))
    if augment.blur_sigma is not None and augment.blur_p > 0:
        kernel = 2 * math.ceil(3 * augment.blur_sigma[1]) + 1
        ops.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=augment.blur_sigma)],
                                  p=augment.blur_p))
    brightness, contrast, saturation, hue = augment.color_jitter
    if channels == 1:
        saturation = hue = 0.0  # meaningless on grayscale
    if brightness or contrast or saturation or hue:
        ops.append(v2.ColorJitter(brightness or None, contrast or None, saturation or None,
                                  hue or None))
    if augment.gamma is not None:
        ops.append(RandomGamma(augment.gamma))
    if augment.jpeg_quality is not None and augment.jpeg_p > 0:
        ops.append(v2.RandomApply([RandomJPEG(augment.jpeg_quality)], p=augment.jpeg_p))
    if channels == 3 and augment.grayscale_p > 0:
        ops.append(v2.RandomGrayscale(augment.grayscale_p))
    ops += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(data.mean), list(data.std))]
    if augment.erasing_p > 0:
        ops.append(v2.RandomErasing(p=augment.erasing_p, scale=augment.erasing_scale))
    return v2.Compose(ops)


# -- photo-like degradations (PIL in, PIL out; randomness from torch, so seeded per epoch) --

def _uniform(low: float, high: float) -> float:
    return float(torch.empty(()).uniform_(float(low), float(high)))


class BoxJitter(torch.nn.Module):
    """Re-cut the face as a detector with a slightly different box would (see
    :attr:`AugmentConfig.box_jitter`); the output keeps the input's size."""

    def __init__(self, jitter: float) -> None:
        super().__init__()
        self.jitter = jitter

    def forward(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        side = min(width, height) * (1.0 + _uniform(-self.jitter, self.jitter))
        cx = width / 2 + _uniform(-self.jitter, self.jitter) / 2 * side
        cy = height / 2 + _uniform(-self.jitter, self.jitter) / 2 * side
        box = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2),
               round(cy + side / 2))
        # PIL fills what lies outside the image with black, like ferkit's crop at a border.
        return image.crop(box).resize((width, height), Image.BILINEAR)


class _DrawnStrength(torch.nn.Module):
    """A degradation whose strength is drawn uniformly from ``(low, high)`` for each image;
    subclasses say in :meth:`degrade` what the strength does."""

    def __init__(self, bounds: tuple[float, float]) -> None:
        super().__init__()
        self.bounds = bounds

    def forward(self, image: Image.Image) -> Image.Image:
        return self.degrade(image, _uniform(*self.bounds))

    def degrade(self, image: Image.Image, strength: float) -> Image.Image:
        raise NotImplementedError


class RandomDownscale(_DrawnStrength):
    """Shrink by a factor drawn from ``(low, high)`` and enlarge back (a low-resolution face)."""

    def degrade(self, image: Image.Image, factor: float) -> Image.Image:
        width, height = image.size
        small = image.resize((max(1, round(width * factor)), max(1, round(height * factor))),
                             Image.BILINEAR)
        return small.resize((width, height), Image.BILINEAR)


class RandomGamma(_DrawnStrength):
    """``pixel ** gamma`` with gamma drawn from ``(low, high)`` (under/over-exposed photos)."""

    def degrade(self, image: Image.Image, gamma: float) -> Image.Image:
        table = [round(255 * (i / 255) ** gamma) for i in range(256)]
        return image.point(table * len(image.getbands()))


class RandomJPEG(_DrawnStrength):
    """A JPEG round trip at a quality drawn from ``(low, high)`` (web photos)."""

    def degrade(self, image: Image.Image, quality: float) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=round(quality))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert(image.mode)
