"""The dataset contract every adapter fulfils.

A :class:`FERDataset` is a list of samples, each an image source plus a **canonical** label
index (:data:`ferkit.labels.CANONICAL`), optionally a soft label (a distribution over the
canonical classes, as FER+ votes give).  Adapters only parse files; images are decoded
lazily in :meth:`FERDataset.load_image`, and the transform (from the model's config and the
recipe) is applied in ``__getitem__``.  Training maps canonical indices to a model's output
indices with :func:`ferkit.labels` names, so a dataset never needs to know the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ferkit.labels import CANONICAL


@dataclass(frozen=True)
class DatasetSummary:
    """Counts per class for one split, for ``ferkit data check`` and logs."""

    name: str
    split: str
    total: int
    per_class: dict[str, int]

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.per_class.items())
        return f"{self.name} [{self.split}]: {self.total} images ({counts})"


class FERDataset(Dataset):
    """Base class: subclasses fill ``targets`` and implement :meth:`load_image`.

    Attributes:
        name: human-readable dataset name (``"FER2013"``).
        split: split name (``"train"``, ``"val"``, ``"test"``; adapters document theirs).
        targets: ``(N,)`` int64 canonical class index per sample.
        soft_targets: optional ``(N, 8)`` float32 distributions over canonical classes.
        transform: callable applied to the PIL image in ``__getitem__``.
    """

    name: str = "dataset"

    def __init__(
        self,
        *,
        split: str,
        targets: Sequence[int] | np.ndarray,
        soft_targets: np.ndarray | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        self.split = split
        self.targets = np.asarray(targets, dtype=np.int64)
        if soft_targets is not None and soft_targets.shape != (len(self.targets), len(CANONICAL)):
            raise ValueError(
                f"soft_targets must be (N, {len(CANONICAL)}), got {soft_targets.shape}"
            )
        self.soft_targets = soft_targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def load_image(self, index: int) -> Image.Image:
        """The decoded image of sample ``index`` (mode ``"L"`` or ``"RGB"``)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image = self.load_image(index)
        x = self.transform(image) if self.transform is not None else image
        if self.soft_targets is not None:
            return x, torch.from_numpy(self.soft_targets[index])
        return x, int(self.targets[index])

    @property
    def classes_present(self) -> tuple[str, ...]:
        """Canonical names of the classes that occur, in canonical order."""
        return tuple(CANONICAL[i] for i in sorted(set(self.targets.tolist())))

    def summary(self) -> DatasetSummary:
        counts = Counter(self.targets.tolist())
        per_class = {CANONICAL[i]: counts[i] for i in sorted(counts)}
        return DatasetSummary(self.name, self.split, len(self), per_class)
