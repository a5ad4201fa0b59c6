"""Deprecated: :func:`open_split` moved to :mod:`ferkit.data.spec` (opening data is the data
layer's job; evaluation uses it without training).  This name goes in the next release."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "open_split":
        warnings.warn("ferkit.training.dataspec.open_split moved to ferkit.data.spec.open_split;"
                      " the old name goes in the next release", DeprecationWarning, stacklevel=2)
        from ferkit.data.spec import open_split

        return open_split
    raise AttributeError(f"module 'ferkit.training.dataspec' has no attribute {name!r}")
