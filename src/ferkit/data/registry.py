"""``open_dataset``: one entry point for every dataset layout ferkit reads.

Each format is one adapter module (``fer2013.py``, ``folder.py``, …) with an ``open_*``
function ``(source, *, split, **options) -> FERDataset``, a ``*_splits(source, **options)``
function listing the splits present, and a ``detect`` test used when ``format=None``.

Example:
    >>> ds = open_dataset("fer2013.csv.gz", split="test")            # doctest: +SKIP
    >>> ds = open_dataset("data/rafdb", format="rafdb", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.data.base import FERDataset
from ferkit.errors import DataError


@dataclass(frozen=True)
class DatasetFormat:
    """An adapter: where its functions live and what it reads."""

    name: str
    module: str
    opener: str
    lister: str
    detector: str
    summary: str

    def _attr(self, name: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(f"ferkit.data.{self.module}"), name)

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise :class:`DataError` naming the valid options if one is unknown."""
        _check_options(self.name, self._attr(self.opener), options)

    def open(self, source: Path, *, split: str, **options: Any) -> FERDataset:
        self.check_options(options)
        return self._attr(self.opener)(source, split=split, **options)

    def splits(self, source: Path, **options: Any) -> tuple[str, ...]:
        lister = self._attr(self.lister)
        accepted = inspect.signature(lister).parameters
        return lister(source, **{k: v for k, v in options.items() if k in accepted})

    def detect(self, source: Path) -> bool:
        return bool(self._attr(self.detector)(source))


# Detection runs in this order; the first match wins (specific layouts before generic ones).
FORMATS: dict[str, DatasetFormat] = {
    f.name: f for f in (
        DatasetFormat("ferplus", "ferplus", "open_ferplus", "ferplus_splits", "is_ferplus",
                      "FER+ fer2013new.csv vote labels over FER2013 pixels"),
        DatasetFormat("fer2013", "fer2013", "open_fer2013", "fer2013_splits", "is_fer2013_file",
                      "FER2013 CSV (fer2013.csv, icml_face_data.csv, train.csv; .gz) or .npz"),
        DatasetFormat("rafdb", "rafdb", "open_rafdb", "rafdb_splits", "is_rafdb",
                      "RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned"),
        DatasetFormat("affectnet", "affectnet", "open_affectnet", "affectnet_splits",
                      "is_affectnet", "AffectNet: CSV lists, *_exp.npy release, class folders"),
        DatasetFormat("faceboxes", "faceboxes", "open_faceboxes", "faceboxes_splits",
                      "is_faceboxes", "photos + labels.csv face boxes (file,x1,y1,x2,y2,label;"
                      " ExpW-style dev sets)"),
        DatasetFormat("list", "label_list", "open_label_list", "label_list_splits",
                      "is_label_list", "data folder + train.txt/val.txt 'path label' lines"),
        DatasetFormat("folder", "folder", "open_folder", "folder_splits", "is_folder",
                      "root/<split>/<class>/image files (names, or numbers with label_order)"),
    )
}


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
    try:
        return FORMATS[name]
    except KeyError:
        close = difflib.get_close_matches(name, FORMATS, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise DataError(f"unknown dataset format {name!r}{hint} "
                        f"(known: {', '.join(FORMATS)})") from None


def detect_format(source: str | Path) -> str:
    """The format of ``source`` judged from its file header or folder layout."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist")
    for fmt in FORMATS.values():
        if fmt.detect(path):
            return fmt.name
    raise DataError(
        f"cannot tell the dataset format of {path}; expected a FER2013/FER+ CSV, a RAF-DB or "
        "AffectNet folder, a folder with labels.csv face boxes and images/, a folder with "
        "train.txt/val.txt label lists, or root/<split>/<class>/"
        f" folders. Name it with format= (one of {', '.join(FORMATS)})"
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
