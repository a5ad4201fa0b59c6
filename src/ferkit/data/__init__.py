"""Datasets, transforms and samplers.  Every adapter yields canonical labels.

Example:
    >>> from ferkit.data import open_dataset
    >>> ds = open_dataset("fer2013.csv.gz", split="test")              # doctest: +SKIP
"""

from ferkit.data.base import ArrayFERDataset, DatasetSummary, FERDataset, ImageFileDataset
from ferkit.data.registry import FORMATS, dataset_splits, detect_format, open_dataset
from ferkit.data.sampler import ClassBalancedSampler
from ferkit.data.synthetic import FakeFER
from ferkit.data.transforms import AugmentConfig, eval_transform, train_transform

__all__ = [
    "FORMATS",
    "ArrayFERDataset",
    "AugmentConfig",
    "ClassBalancedSampler",
    "DatasetSummary",
    "FERDataset",
    "FakeFER",
    "ImageFileDataset",
    "dataset_splits",
    "detect_format",
    "eval_transform",
    "open_dataset",
    "train_transform",
]
