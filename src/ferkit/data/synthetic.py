"""A small synthetic, learnable FER task for tests and benchmarks (no real faces).

Each class draws a bright square at its own position on a noisy background, so a model
must look at the right place to classify: useful for checking that training learns and
that CAMs highlight the region carrying the label.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ferkit.data.base import FERDataset
from ferkit.labels import CANONICAL_INDEX, SEVEN


class FakeFER(FERDataset):
    """``size`` images of ``image_size`` pixels, ``len(classes)`` classes, seeded.

    ``region(label)`` gives the ``(top, left, bottom, right)`` box that carries the label.
    """

    name = "FakeFER"

    def __init__(
        self,
        size: int = 256,
        *,
        image_size: int = 48,
        classes: tuple[str, ...] = SEVEN,
        channels: int = 1,
        split: str = "train",
        seed: int = 0,
        noise: float = 0.15,
        transform=None,
    ) -> None:
        rng = np.random.default_rng(seed)
        canonical = np.array([CANONICAL_INDEX[c] for c in classes])
        local = rng.integers(0, len(classes), size=size)
        super().__init__(split=split, targets=canonical[local], transform=transform)
        self.classes = classes
        self.image_size = image_size
        self.channels = channels
        self._local = local
        self._seeds = rng.integers(0, 2**31 - 1, size=size)
        self._noise = noise

    def region(self, local_label: int) -> tuple[int, int, int, int]:
        grid = int(np.ceil(np.sqrt(len(self.classes))))
        cell = self.image_size // grid
        row, col = divmod(local_label, grid)
        pad = cell // 6
        return (row * cell + pad, col * cell + pad, (row + 1) * cell - pad, (col + 1) * cell - pad)

    def load_image(self, index: int) -> Image.Image:
        rng = np.random.default_rng(self._seeds[index])
        img = rng.normal(0.3, self._noise, (self.image_size, self.image_size))
        top, left, bottom, right = self.region(int(self._local[index]))
        img[top:bottom, left:right] += 0.6
        pixels = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(pixels, mode="L")
        return image if self.channels == 1 else image.convert("RGB")
