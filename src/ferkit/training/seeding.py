"""Training randomness that depends on ``(seed, epoch, sample)`` alone: exact resume with workers.

DataLoader workers draw augmentations from their own RNGs, seeded once when the worker
process starts; with ``persistent_workers`` they then run on across epochs.  A run resumed
at epoch 3 starts new workers whose RNGs are wherever the fresh process put them, so its
augmentations (and weights) differ from the uninterrupted run's: by up to 2.0 in a weight
with the recipes' 2 workers.  Here the sampler hands each worker ``(epoch, index)`` and the
dataset reseeds Python's, NumPy's and PyTorch's RNGs from ``(seed, epoch, index)`` before
loading that sample, so what a sample looks like no longer depends on which worker loads
it, how many there are, or whether the process was restarted.  The shuffle order is drawn
from ``(seed, epoch)`` the same way.

Example:
    >>> from ferkit.data import FakeFER
    >>> data = EpochSeededDataset(FakeFER(8, image_size=16), seed=0)
    >>> sampler = EpochSampler(len(data), seed=0)
    >>> sampler.set_epoch(3)
    >>> first = next(iter(sampler)); first[0]
    3
    >>> data[first][1] == data[first][1]   # the same (epoch, index): the same sample
    True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def sample_seed(seed: int, epoch: int, *index: int) -> int:
    """A 63-bit seed for one sample of one epoch, or for the epoch's shuffle without an
    ``index`` (well mixed: neighbours are unrelated)."""
    entropy = [v % 2**64 for v in (seed, epoch, *index)]  # SeedSequence takes v >= 0 only
    words = np.random.SeedSequence(entropy).generate_state(1, np.uint64)
    return int(words[0] >> np.uint64(1))


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)``: the indices of ``base`` (a sampler with ``set_epoch``,
    e.g. :class:`~ferkit.data.sampler.ClassBalancedSampler`), or a shuffle of
    ``range(length)`` seeded by ``(seed, epoch)`` when there is none.

    Lightning calls :meth:`set_epoch` before each training epoch, also on resume.
    """

    def __init__(self, length: int, *, seed: int, base: Sampler[int] | None = None) -> None:
        self.length = int(length)
        self.seed = int(seed)
        self.base = base
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.base is not None and callable(getattr(self.base, "set_epoch", None)):
            self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.base is not None:
            order = list(self.base)
        else:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch))
            order = torch.randperm(self.length, generator=generator).tolist()
        epoch = self.epoch
        return ((epoch, int(i)) for i in order)

    def __len__(self) -> int:
        return len(self.base) if self.base is not None else self.length  # type: ignore[arg-type]


class EpochSeededDataset(Dataset):
    """Wraps a dataset: item ``(epoch, index)`` is ``dataset[index]`` loaded with every RNG
    seeded from ``(seed, epoch, index)``; a plain ``index`` means epoch 0."""

    def __init__(self, dataset: Any, *, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        self.targets = getattr(dataset, "targets", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        seed = sample_seed(self.seed, epoch, index)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        # name, summary(), soft_targets …: the wrapped dataset's (only called for names the
        # wrapper lacks).  Never dunders: the DataLoader would take a Subset's
        # ``__getitems__`` and bypass the seeding; "dataset" is guarded so that unpickling
        # in a worker cannot recurse.
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
