"""``FERDataModule``: datasets, transforms and loaders for one recipe.

``__init__`` only stores settings; :meth:`FERDataModule.setup` opens the splits with
:func:`ferkit.data.open_dataset`, gives them the model's transforms (eval transform from
its :class:`~ferkit.config.DataConfig`, plus the recipe's augmentation for training) and
keeps only the classes the model predicts.  The training order and each sample's
augmentation are drawn from ``(seed, epoch, sample)`` (:mod:`ferkit.training.seeding`), so
runs are reproducible and resume exactly, with any number of workers.

Example:
    >>> from ferkit.config import DataConfig
    >>> from ferkit.data import FakeFER
    >>> from ferkit.training.datamodule import FERDataModule
    >>> dm = FERDataModule(data_config=DataConfig(input_size=(1, 32, 32), mean=(0.5,),
    ...                    std=(0.5,)), label_names=("neutral", "happy", "sad", "surprise",
    ...                    "fear", "disgust", "anger"), batch_size=8,
    ...                    datasets={"train": FakeFER(32), "val": FakeFER(16, seed=1)})
    >>> dm.setup("fit"); len(dm.train_dataloader())
    4
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ferkit.config import DataConfig
from ferkit.data.base import FERDataset
from ferkit.data.sampler import ClassBalancedSampler
from ferkit.data.spec import open_split
from ferkit.data.transforms import AugmentConfig, eval_transform, train_transform
from ferkit.errors import DataError, FerkitError
from ferkit.labels import CANONICAL, CANONICAL_INDEX
from ferkit.training.recipe import DataSpec, recipe_from_dict
from ferkit.training.seeding import EpochSampler, EpochSeededDataset

log = logging.getLogger(__name__)


def _train_transform(data_cfg: DataConfig, augment: Mapping[str, Any]):
    try:
        config = AugmentConfig.from_dict(dict(augment))
    except (TypeError, ValueError) as exc:
        raise FerkitError(f"recipe augment: {exc}") from exc
    return train_transform(data_cfg, config)


class _Keep(Subset):
    """A subset that still exposes ``targets`` (for samplers and summaries)."""

    def __init__(self, dataset: FERDataset, indices: np.ndarray) -> None:
        super().__init__(dataset, indices.tolist())
        self.targets = np.asarray(dataset.targets)[indices]


class FERDataModule(L.LightningDataModule):
    """Loaders for training, validation and test.

    Args:
        data_config: the model's preprocessing (input size, mean/std).
        label_names: the model's classes; samples of other classes are dropped (logged).
        spec: the recipe's ``data`` section (:class:`~ferkit.training.recipe.DataSpec`, or
            its keys as a mapping; without it, 0 workers and no dataset named).
        augment: the recipe's ``augment`` section (:class:`ferkit.data.transforms.AugmentConfig`).
        batch_size, seed: loader settings.
        datasets: ready datasets by stage name (``train``/``val``/``test``) instead of
            opening ``spec`` (tests, notebooks).
    """

    def __init__(
        self,
        *,
        data_config: DataConfig,
        label_names: Sequence[str],
        spec: DataSpec | Mapping[str, Any] | None = None,
        augment: Mapping[str, Any] | None = None,
        batch_size: int = 64,
        seed: int = 0,
        datasets: Mapping[str, FERDataset] | None = None,
    ) -> None:
        super().__init__()
        self.data_config = data_config
        self.label_names = tuple(label_names)
        if not isinstance(spec, DataSpec):
            # Loaders in the caller's process unless it asks for workers.
            spec = recipe_from_dict({"data": {"num_workers": 0, **(spec or {})}},
                                    where="FERDataModule spec").data
        self.spec: DataSpec = spec
        self.augment = dict(augment or {})
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = spec.num_workers
        self._given = dict(datasets or {})
        self.splits: dict[str, Dataset] = {}

    def _open(self, stage: str, *, train: bool) -> Dataset:
        if stage in self._given:
            dataset = self._given[stage]
        else:
            spec = self.spec
            dataset = open_split({"format": spec.format, "source": spec.source,
                                  "options": spec.options}, spec.split(stage))
        dataset = copy.copy(dataset)  # never change the caller's object's transform
        dataset.transform = (_train_transform(self.data_config, self.augment) if train
                             else eval_transform(self.data_config))
        return self._keep_model_classes(dataset, stage)

    def _keep_model_classes(self, dataset: FERDataset, stage: str) -> Dataset:
        targets = np.asarray(dataset.targets)
        wanted = np.array([CANONICAL_INDEX[n] for n in self.label_names])
        keep = np.isin(targets, wanted)
        if getattr(dataset, "soft_targets", None) is not None:
            return dataset  # soft labels are renormalised over the model's classes
        if keep.all():
            return dataset
        dropped = sorted({CANONICAL[i] for i in targets[~keep].tolist()})
        if not keep.any():
            raise DataError(
                f"{getattr(dataset, 'name', 'dataset')} [{stage}] has no samples of the "
                f"model's classes ({', '.join(self.label_names)})"
            )
        log.info("%s [%s]: dropping %d samples of classes the model lacks: %s",
                 getattr(dataset, "name", "dataset"), stage, int((~keep).sum()),
                 ", ".join(dropped))
        return _Keep(dataset, np.flatnonzero(keep))

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and "train" not in self.splits:
            self.splits["train"] = self._open("train", train=True)
            self.splits["val"] = self._open("val", train=False)
        if stage in (None, "fit", "validate") and "val" not in self.splits:
            self.splits["val"] = self._open("val", train=False)
        if stage in (None, "test") and "test" not in self.splits:
            self.splits["test"] = self._open("test", train=False)

    def _loader(self, dataset: Dataset, *, shuffle: bool, sampler=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Pinned memory only helps host->GPU copies.
            pin_memory=torch.cuda.is_available(),
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.splits["train"]
        base = None
        if self.spec.balanced_sampler:
            base = ClassBalancedSampler(dataset.targets, seed=self.seed)
        # Order and augmentation from (seed, epoch, sample): the same with any number of
        # workers and after --resume (ferkit.training.seeding).
        sampler = EpochSampler(len(dataset), seed=self.seed, base=base)
        return self._loader(EpochSeededDataset(dataset, seed=self.seed), shuffle=False,
                            sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["val"], shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"], shuffle=False)
