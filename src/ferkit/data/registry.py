"""``open_dataset``: one entry point for every dataset layout ferkit reads.

Each format is one adapter module (``fer2013.py``, ``folder.py``, …) with an ``open_*``
function ``(source, *, split, **options) -> FERDataset``, a ``*_splits(source, **options)``
function listing the splits present, and a ``detect`` test used when ``format=None``; it
registers them with :func:`register_format` (a :class:`~ferkit.registry.Registry`).

Example:
    >>> ds = open_dataset("fer2013.csv.gz", split="test")            # doctest: +SKIP
    >>> ds = open_dataset("data/rafdb", format="rafdb", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.data.base import FERDataset
from ferkit.errors import DataError
from ferkit.registry import Registry


@dataclass(frozen=True)
class DatasetFormat:
    """An adapter: its three functions and what it reads."""

    name: str
    opener: Callable[..., FERDataset]
    lister: Callable[..., tuple[str, ...]]
    detector: Callable[[Path], bool]
    summary: str

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise :class:`DataError` naming the valid options if one is unknown."""
        _check_options(self.name, self.opener, options)

    def open(self, source: Path, *, split: str, **options: Any) -> FERDataset:
        self.check_options(options)
        return self.opener(source, split=split, **options)

    def splits(self, source: Path, **options: Any) -> tuple[str, ...]:
        accepted = inspect.signature(self.lister).parameters
        return self.lister(source, **{k: v for k, v in options.items() if k in accepted})

    def detect(self, source: Path) -> bool:
        return bool(self.detector(source))


#: Every dataset format.  Each adapter module registers its own at its end; the modules
#: are imported on the first lookup.
FORMATS: Registry[DatasetFormat] = Registry(
    "dataset format", error=DataError,
    loaders=tuple(f"ferkit.data.{module}" for module in (
        "ferplus", "fer2013", "rafdb", "affectnet", "faceboxes", "label_list", "folder")))

#: The order ``detect_format`` tries formats in: the first match wins, so specific layouts
#: come before generic ones (a RAF-DB or AffectNet folder also looks like class folders).
#: Formats registered elsewhere are tried after these, before ``folder``.
DETECTION_ORDER = ("ferplus", "fer2013", "rafdb", "affectnet", "faceboxes", "list")
_DETECTED_LAST = ("folder",)


def _detection_order() -> list[DatasetFormat]:
    names = FORMATS.names()
    rest = [n for n in names if n not in DETECTION_ORDER and n not in _DETECTED_LAST]
    return [FORMATS.get(n) for n in (*DETECTION_ORDER, *rest, *_DETECTED_LAST) if n in names]


def register_format(fmt: DatasetFormat) -> DatasetFormat:
    """Add an adapter to :func:`open_dataset` (and to format detection, after those above)."""
    return FORMATS.register(fmt.name, fmt)


def _check_options(format_name: str, opener: Callable[..., Any], options: dict[str, Any]) -> None:
    params = inspect.signature(opener).parameters
    known = [n for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n != "split"]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise DataError(f"format {format_name!r} has no option {key!r}{hint} "
                            f"(options: {', '.join(known)})")


def get_format(name: str) -> DatasetFormat:
    """The :class:`DatasetFormat` called ``name`` (``"fer2013"``, ``"folder"``, …)."""
    return FORMATS.get(name)


def detect_format(source: str | Path) -> str:
    """The format of ``source`` judged from its file header or folder layout."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist")
    for fmt in _detection_order():
        if fmt.detect(path):
            return fmt.name
    raise DataError(
        f"cannot tell the dataset format of {path}; expected a FER2013/FER+ CSV, a RAF-DB or "
        "AffectNet folder, a folder with labels.csv face boxes and images/, a folder with "
        "train.txt/val.txt label lists, or root/<split>/<class>/"
        f" folders. Name it with format= (one of {', '.join(f.name for f in _detection_order())})"
    )


def open_dataset(
    source: str | Path, *, format: str | None = None, split: str = "train", **options: Any,
) -> FERDataset:
    """Open one split of a dataset in any supported layout, with canonical labels.

    Args:
        source: the dataset's file or folder.
        format: ``"fer2013"``, ``"ferplus"``, ``"rafdb"``, ``"affectnet"``, ``"faceboxes"``,
            ``"folder"`` or ``"list"``; ``None`` detects it from the path.
        split: ``"train"``, ``"val"``, ``"test"`` (each format documents its native names).
        **options: the adapter's options (e.g. ``drop_train_duplicates=True`` for FER2013,
            ``label_order="dacl"`` for folders); unknown options fail with the valid ones.

    Example:
        >>> open_dataset("fer2013.npz", split="val").summary().total     # doctest: +SKIP
        3589
    """
    path = Path(source)
    fmt = get_format(format) if format is not None else get_format(detect_format(path))
    if not path.exists():
        raise DataError(f"{fmt.name} dataset path {path} does not exist")
    return fmt.open(path, split=split, **options)


def dataset_splits(source: str | Path, *, format: str | None = None,
                   **options: Any) -> tuple[str, ...]:
    """The splits present in ``source`` (e.g. ``("train", "val", "test")``)."""
    path = Path(source)
    fmt = get_format(format) if format is not None else get_format(detect_format(path))
    return fmt.splits(path, **options)
