"""Open a dataset from a ``{format, source, options}`` spec: a recipe's ``data`` section.

The one way training and ``ferkit evaluate`` open data, so both read a split the same way
(kept free of Lightning).

Example:
    >>> from ferkit.data.spec import open_split
    >>> len(open_split({"format": "fake", "options": {"size": 10}}, "val"))
    10
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferkit.data.base import FERDataset
from ferkit.data.registry import open_dataset
from ferkit.data.synthetic import FakeFER
from ferkit.errors import FerkitError

#: ``format: fake`` draws each split from its own seed, offset from the spec's seed.
_FAKE_SEED_OFFSETS = {"train": 0, "val": 1, "test": 2}


def open_split(spec: Mapping[str, Any], split: str) -> FERDataset:
    """One split of the dataset a recipe's ``data`` section names.

    ``spec`` holds ``format``, ``source`` and ``options``; ``format: fake`` builds a
    :class:`~ferkit.data.FakeFER` (a different seed per split).
    """
    fmt = spec.get("format")
    options = dict(spec.get("options") or {})
    if fmt == "fake":
        seed = int(options.pop("seed", 0)) + _FAKE_SEED_OFFSETS.get(split, 3)
        return FakeFER(options.pop("size", 256), split=split, seed=seed, **options)
    source = spec.get("source")
    if not source:
        raise FerkitError(
            "the recipe names no dataset: pass --data PATH (and --set data.format=... if it "
            "cannot be detected), or set data.source in the recipe"
        )
    return open_dataset(source, format=fmt, split=split, **options)
