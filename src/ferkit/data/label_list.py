"""Label lists: a data folder plus ``train.txt`` / ``val.txt`` with ``relative/path label`` lines.

This is the form the DSAN project's ``train.py --data_dir D --train_label train.txt
--val_label val.txt`` takes.  Each non-blank line is ``<path> <label>``: the path relative to
the data folder (it may contain spaces: the label is the last field), the label a class name
(``happy``, ``Surprise``, …) or a number whose meaning ``label_order`` states (a key of
:data:`ferkit.labels.NATIVE_ORDERS`, e.g. ``"rafdb"`` for 1-based RAF-DB numbers, or a list of
class names).  Lines starting with ``#`` are comments.

``source`` is the data folder (label files are looked up relative to it, or given as
absolute paths) or a single list file (its folder is the data folder unless ``data_dir`` is
given; the split is then that file).

Example:
    >>> ds = open_label_list("data", split="val", val_label="val.txt",   # doctest: +SKIP
    ...                      label_order="rafdb")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferkit.data.base import ImageFileDataset, Samples
from ferkit.data.folder import LabelOrder, LabelResolver
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError

DEFAULT_LABEL_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}


class LabelListFER(ImageFileDataset):
    """Images listed with labels in a text file; built by :func:`open_label_list`."""

    name = "label list"


def _label_file(source: Path, split: str, files: dict[str, str | Path | None],
                data_dir: Path) -> Path:
    if source.is_file():
        return source
    name = files.get(split)
    if name is None:
        raise DataError(f"no label file for split {split!r}: pass {split}_label=FILE "
                        f"(label files: train_label, val_label, test_label)")
    path = Path(name)
    for candidate in (path, data_dir / path):
        if candidate.is_file():
            return candidate
    raise DataError(f"label file {path} for split {split!r} does not exist (looked in "
                    f"{data_dir}); expected lines 'relative/path label'")


def label_list_splits(source: str | Path, *, train_label: str | Path = "train.txt",
                      val_label: str | Path = "val.txt",
                      test_label: str | Path | None = "test.txt",
                      data_dir: str | Path | None = None) -> tuple[str, ...]:
    source = Path(source)
    if source.is_file():
        return (source.stem,)
    base = Path(data_dir) if data_dir is not None else source
    files = {"train": train_label, "val": val_label, "test": test_label}
    return tuple(s for s, f in files.items()
                 if f is not None and (Path(f).is_file() or (base / f).is_file()))


def is_label_list(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".txt"
    return path.is_dir() and any((path / f).is_file() for f in ("train.txt", "val.txt"))


def open_label_list(
    source: str | Path,
    *,
    split: str = "train",
    data_dir: str | Path | None = None,
    train_label: str | Path = "train.txt",
    val_label: str | Path = "val.txt",
    test_label: str | Path | None = "test.txt",
    label_order: LabelOrder = None,
    classes: Sequence[str] | None = None,
    strict: bool = True,
    transform: Any = None,
) -> LabelListFER:
    """Open the ``split`` list of a label-list dataset (see the module docstring).

    Args:
        data_dir: folder the image paths are relative to (default: ``source`` or, for a
            list file, the file's folder).
        train_label, val_label, test_label: list files per split.
        label_order: meaning of numeric labels (NATIVE_ORDERS key or class names).
        classes: keep only these canonical classes; others are counted as dropped.
        strict: raise at the first bad line; ``False`` skips bad lines into ``problems``.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"label-list dataset {source} does not exist")
    base = Path(data_dir) if data_dir is not None else (source.parent if source.is_file()
                                                        else source)
    list_file = _label_file(source, split,
                            {"train": train_label, "val": val_label, "test": test_label}, base)
    resolver = LabelResolver(label_order, classes)
    samples = Samples(strict)
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read label file {list_file}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.rsplit(maxsplit=1)
        where = f"{list_file} line {number}"
        if len(parts) != 2:
            samples.problems.add(f"{where}: {text!r} is not 'relative/path label'")
            continue
        relative, token = parts
        samples.add(base / relative, token, resolver=resolver, where=where)
    if not samples:
        raise DataError(f"label file {list_file} lists no usable images for split {split!r}")
    return samples.dataset(LabelListFER, split=split, transform=transform)


register_format(DatasetFormat("list", open_label_list, label_list_splits, is_label_list,
                              "data folder + train.txt/val.txt 'path label' lines"))
