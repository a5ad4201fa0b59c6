"""A class-balanced sampler for any dataset with integer targets.

DAN's ``ImbalancedDatasetSampler`` only worked for ImageFolder (it read ``dataset.imgs``);
this one takes the targets themselves, so it fits every :class:`~ferkit.data.FERDataset`
(``dataset.targets``) or any label array.  Each class gets the same expected share of the
draws (sampling with replacement, weight ``1 / class_count`` per sample).  Draws are seeded
by ``seed`` and the epoch set by :meth:`ClassBalancedSampler.set_epoch`, so a run and its
resumed twin see the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from ferkit.errors import DataError


class ClassBalancedSampler(Sampler[int]):
    """Draw indices so that every class present is equally likely.

    Args:
        targets: class index per sample (``dataset.targets``).
        seed: base seed; epoch ``e`` draws with ``seed + e``.
        num_samples: draws per epoch (default: ``len(targets)``).

    Example:
        >>> s = ClassBalancedSampler([0, 0, 0, 1], seed=0, num_samples=1000)
        >>> idx = list(s)
        >>> 400 < sum(i == 3 for i in idx) < 600
        True
    """

    def __init__(
        self, targets: Sequence[int] | np.ndarray | torch.Tensor, *, seed: int,
        num_samples: int | None = None,
    ) -> None:
        labels = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
        if labels.ndim != 1 or len(labels) == 0:
            raise DataError("ClassBalancedSampler needs a non-empty 1-D list of class targets")
        _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        self.weights = (1.0 / counts.double())[inverse]
        self.seed = int(seed)
        self.num_samples = len(labels) if num_samples is None else int(num_samples)
        if self.num_samples <= 0:
            raise DataError(f"num_samples must be positive, got {num_samples}")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of ``epoch`` next (Lightning calls this on samplers that have it)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True,
                                  generator=generator)
        return iter(draws.tolist())

    def __len__(self) -> int:
        return self.num_samples
