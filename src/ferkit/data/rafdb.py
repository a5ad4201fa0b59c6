"""RAF-DB basic (Li et al. 2017): the label list plus aligned (or original) face images.

Layout, as distributed::

    basic/EmoLabel/list_patition_label.txt     lines "train_00001.jpg 5"
    basic/Image/aligned/train_00001_aligned.jpg  (100x100 aligned faces)
    basic/Image/original/train_00001.jpg         (full photos; images="original")

Labels count from 1 in RAF-DB's order: 1 surprise, 2 fear, 3 disgust, 4 happiness,
5 sadness, 6 anger, 7 neutral (``NATIVE_ORDERS["rafdb"]``).  Splits come from the file-name
prefix: ``train`` (12,271 images) and ``test`` (3,068); RAF-DB has no validation split, and
the papers report on ``test``.

Example:
    >>> ds = open_rafdb("data/RAF-DB/basic", split="test")             # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferkit.data.base import ImageFileDataset, Samples
from ferkit.data.folder import LabelResolver
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError

LIST_FILE = Path("EmoLabel") / "list_patition_label.txt"
SPLITS = ("train", "test")


class RAFDB(ImageFileDataset):
    """One split of RAF-DB basic; built by :func:`open_rafdb`."""

    name = "RAF-DB"


def _root(source: Path) -> Path:
    if source.is_file():  # the list file itself: basic/EmoLabel/list_patition_label.txt
        return source.parent.parent
    return source


def rafdb_splits(source: str | Path) -> tuple[str, ...]:
    return SPLITS


def is_rafdb(path: Path) -> bool:
    return (_root(path) / LIST_FILE).is_file()


def open_rafdb(
    source: str | Path,
    *,
    split: str = "train",
    images: str = "aligned",
    classes: Sequence[str] | None = None,
    strict: bool = True,
    transform: Any = None,
) -> RAFDB:
    """Open the ``train`` or ``test`` split of RAF-DB basic.

    Args:
        source: the ``basic`` folder (holding ``EmoLabel/`` and ``Image/``) or the list file.
        images: ``"aligned"`` (``Image/aligned/*_aligned.jpg``), ``"original"``, or ``"auto"``
            (the aligned image where it exists, else the original: for partial copies).
        classes: keep only these canonical classes (others counted as dropped).
        strict: raise at the first bad line or missing image; ``False`` lists them.
    """
    root = _root(Path(source))
    list_file = root / LIST_FILE
    if not list_file.is_file():
        raise DataError(f"RAF-DB label list {list_file} does not exist; expected the 'basic' "
                        "folder with EmoLabel/list_patition_label.txt and Image/aligned/")
    if split not in SPLITS:
        raise DataError(f"RAF-DB has splits train and test, not {split!r} (it has no "
                        "validation split; papers report on test)")
    if images not in ("aligned", "original", "auto"):
        raise DataError(f"images must be 'aligned', 'original' or 'auto', not {images!r}")
    aligned_dir, original_dir = root / "Image" / "aligned", root / "Image" / "original"
    for kind, folder in (("aligned", aligned_dir), ("original", original_dir)):
        if images == kind and not folder.is_dir():
            raise DataError(f"RAF-DB image folder {folder} does not exist")
    resolver = LabelResolver("rafdb", classes)
    samples = Samples(strict)
    for number, line in enumerate(list_file.read_text(encoding="utf-8-sig").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{list_file} line {number}"
        if len(parts) != 2:
            samples.problems.add(f"{where}: {line.strip()!r} is not 'train_00001.jpg 5'")
            continue
        name, token = parts
        if not name.startswith(f"{split}_"):
            if not name.startswith(tuple(f"{s}_" for s in SPLITS)):
                samples.problems.add(f"{where}: image name {name!r} starts with neither "
                                     "train_ nor test_")
            continue
        path = aligned_dir / f"{Path(name).stem}_aligned.jpg"
        if images == "original" or (images == "auto" and not path.is_file()):
            path = original_dir / name
        samples.add(path, token, resolver=resolver, where=where)
    if not samples:
        raise DataError(f"{list_file} lists no usable {split} images")
    return samples.dataset(RAFDB, split=split, transform=transform)


register_format(DatasetFormat("rafdb", open_rafdb, rafdb_splits, is_rafdb,
                              "RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned"))
