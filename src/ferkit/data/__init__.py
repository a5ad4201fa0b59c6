"""Datasets, transforms and samplers.  Every adapter yields canonical labels."""

from ferkit.data.base import DatasetSummary, FERDataset
from ferkit.data.synthetic import FakeFER
from ferkit.data.transforms import eval_transform

__all__ = ["DatasetSummary", "FERDataset", "FakeFER", "eval_transform"]
