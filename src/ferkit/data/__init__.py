"""Datasets, transforms and samplers.  Every adapter yields canonical labels.

Example:
    >>> from ferkit.data import open_dataset
    >>> ds = open_dataset("fer2013.csv.gz", split="test")              # doctest: +SKIP
"""

from ferkit.data.base import ArrayFERDataset, DatasetSummary, FERDataset, ImageFileDataset
from ferkit.data.check import DataReport, check_dataset
from ferkit.data.fer2013 import fer2013_to_npz
from ferkit.data.registry import FORMATS, dataset_splits, detect_format, open_dataset
from ferkit.data.sampler import ClassBalancedSampler
from ferkit.data.synthetic import FakeFER
from ferkit.data.transforms import AugmentConfig, eval_transform, train_transform

__all__ = [
    "FORMATS",
    "ArrayFERDataset",
    "AugmentConfig",
    "ClassBalancedSampler",
    "DataReport",
    "DatasetSummary",
    "FERDataset",
    "FakeFER",
    "ImageFileDataset",
    "check_dataset",
    "dataset_splits",
    "detect_format",
    "eval_transform",
    "fer2013_to_npz",
    "open_dataset",
    "train_transform",
]
