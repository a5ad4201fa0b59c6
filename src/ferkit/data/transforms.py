"""Image transforms derived from a model's :class:`~ferkit.config.DataConfig`.

The eval transform is the single definition of "how a face crop becomes a model input";
training, evaluation, inference and export all use it (or its train-time superset).
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from ferkit.config import DataConfig

_INTERPOLATION = {
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
    "nearest": v2.InterpolationMode.NEAREST,
}


def eval_transform(data: DataConfig) -> v2.Compose:
    """PIL image or uint8 tensor → normalised float tensor ``data.input_size``."""
    channels, height, width = data.input_size
    return v2.Compose([
        v2.ToImage(),
        v2.Grayscale(1) if channels == 1 else v2.RGB(),
        v2.Resize((height, width), interpolation=_INTERPOLATION[data.interpolation],
                  antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(data.mean), list(data.std)),
    ])

