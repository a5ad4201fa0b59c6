"""The seam between recipes and dataset adapters: a ``{format, source, options}`` spec.

Kept free of Lightning so ``ferkit evaluate`` opens data the same way training does.

Example:
    >>> from ferkit.training.dataspec import open_split
    >>> len(open_split({"format": "fake", "options": {"size": 10}}, "val"))
    10
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferkit.data import FakeFER
from ferkit.data.base import FERDataset
from ferkit.errors import FerkitError


def open_split(spec: Mapping[str, Any], split: str) -> FERDataset:
    """One split of the dataset a recipe's ``data`` section names.

    ``spec`` holds ``format``, ``source`` and ``options``; ``format: fake`` builds a
    :class:`~ferkit.data.FakeFER` (a different seed per split).
    """
    fmt = spec.get("format")
    options = dict(spec.get("options") or {})
    if fmt == "fake":
        seed = int(options.pop("seed", 0)) + {"train": 0, "val": 1, "test": 2}.get(split, 3)
        return FakeFER(options.pop("size", 256), split=split, seed=seed, **options)
    source = spec.get("source")
    if not source:
        raise FerkitError(
            "the recipe names no dataset: pass --data PATH (and --set data.format=... if it "
            "cannot be detected), or set data.source in the recipe"
        )
    try:
        from ferkit.data import open_dataset
    except ImportError as exc:
        raise FerkitError(
            "this ferkit has no dataset adapters (ferkit.data.open_dataset); only "
            "data.format=fake is available"
        ) from exc
    return open_dataset(source, format=fmt, split=split, **options)
