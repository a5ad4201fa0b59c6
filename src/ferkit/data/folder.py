"""Image folders: ``root/<split>/<class>/…`` with class names, or numbers plus a stated order.

torchvision's ImageFolder numbers classes by sorting folder names alphabetically, which
silently reorders classes (``angry, disgust, fear, happy, neutral, sad, surprise`` is not
FER2013's order, and RAF-DB's ``1..7`` folders are not canonical).  ferkit never guesses:

* folders named after expressions (``happy``, ``Happiness``, ``angry``, … any spelling
  :func:`ferkit.labels.canonical_name` knows) map by name;
* numeric folders (``0``, ``00``, ``3``) need ``label_order``: a key of
  :data:`ferkit.labels.NATIVE_ORDERS` (``"dacl"`` for DACL's ``train/00..06``,
  ``"rafdb_folders"`` for RAF-DB's ``1..7``, ``"affectnet"``, ``"fer2013"``, …) or a list
  of class names where position i names folder ``i``.

Split folders: ``train`` (also ``training``), ``val`` (``valid``, ``validation``,
``PublicTest``), ``test`` (``testing``, ``PrivateTest``), any case; or the exact folder
name.  A root whose sub-folders are the classes themselves is one split called ``all``.

Example:
    >>> ds = open_folder("data/dacl", split="train", label_order="dacl")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferkit.data.base import ImageFileDataset, Samples
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError, FerkitError
from ferkit.labels import (
    CANONICAL,
    CANONICAL_INDEX,
    INDEX_BASE,
    NATIVE_ORDERS,
    canonical_name,
    to_canonical,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm",
                            ".ppm", ".gif"})
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "publictest", "dev"),
    "test": ("test", "testing", "privatetest", "eval"),
}
LabelOrder = str | Sequence[str] | None


class LabelResolver:
    """Turns a label token (a class name or a number) into a canonical index.

    ``label_order`` gives numbers their meaning (a :data:`NATIVE_ORDERS` key, whose index
    base it honours, or a list of names, 0-based); ``classes`` keeps only those canonical
    classes (others count as dropped).  :meth:`resolve` returns ``(index, None)`` or
    ``(None, reason_dropped)`` and raises :class:`FerkitError` for an unknown label.

    Example:
        >>> LabelResolver("dacl").resolve("03")
        (1, None)
        >>> LabelResolver(None).resolve("Happiness")
        (1, None)
    """

    def __init__(self, label_order: LabelOrder = None,
                 classes: Sequence[str] | None = None) -> None:
        self.order_name: str | None = None
        self.names: tuple[str | None, ...] | None = None
        if isinstance(label_order, str):
            if label_order not in NATIVE_ORDERS:
                raise DataError(f"unknown label_order {label_order!r}; use one of "
                                f"{', '.join(sorted(NATIVE_ORDERS))} or a list of class names")
            self.order_name = label_order
        elif label_order is not None:
            try:
                self.names = tuple(canonical_name(n) for n in label_order)
            except FerkitError as exc:
                raise DataError(f"label_order: {exc}") from None
        self.keep: set[int] | None = None
        if classes is not None:
            try:
                self.keep = {CANONICAL_INDEX[canonical_name(c)] for c in classes}
            except FerkitError as exc:
                raise DataError(f"classes: {exc}") from None

    def describe_order(self) -> str:
        if self.order_name is not None:
            base = INDEX_BASE.get(self.order_name, 0)
            order = NATIVE_ORDERS[self.order_name]
            return ", ".join(f"{base + i} {n or 'dropped'}" for i, n in enumerate(order))
        if self.names is not None:
            return ", ".join(f"{i} {n}" for i, n in enumerate(self.names))
        return "none given"

    def resolve_entry(self, token: str, *, where: str, samples: Samples,
                      count: int = 1) -> int | None:
        """:meth:`resolve` for one dataset entry (``count`` images), with the bookkeeping
        every adapter needs.

        An unknown label goes to ``samples.problems`` (raised at once when strict), a dropped
        class is counted in ``samples.dropped``; returns the canonical index, or ``None`` to
        skip the entry.
        """
        try:
            index, reason = self.resolve(token)
        except FerkitError as exc:
            samples.problems.add(f"{where}: {exc}")
            return None
        if index is None:
            samples.dropped[str(reason)] += count
        return index

    def resolve(self, token: str) -> tuple[int | None, str | None]:
        token = token.strip()
        if token.lstrip("-").isdigit():
            number = int(token)
            if self.order_name is not None:
                try:
                    index = to_canonical(self.order_name, number)
                except FerkitError as exc:
                    raise FerkitError(f"{exc} (label_order {self.order_name!r})") from None
                if index is None:
                    return None, f"{self.order_name} label {number} (not an expression)"
            elif self.names is not None:
                if not 0 <= number < len(self.names):
                    raise FerkitError(f"label {number} is out of range for label_order "
                                  f"[{', '.join(self.names)}] "
                                  f"(expected 0..{len(self.names) - 1})")
                index = CANONICAL_INDEX[self.names[number]]
            else:
                raise FerkitError(
                    f"label {token!r} is a number but no label_order says which class it is; "
                    f"pass label_order= (one of {', '.join(sorted(NATIVE_ORDERS))}) or a list of "
                    "class names (numbers are never read in alphabetical folder order)"
                )
        else:
            index = CANONICAL_INDEX[canonical_name(token)]
        if self.keep is not None and index not in self.keep:
            return None, CANONICAL[index]
        return index, None


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_class_name(name: str) -> bool:
    if name.isdigit():
        return True
    try:
        canonical_name(name)
    except FerkitError:
        return False
    return True


def _split_dirs(root: Path) -> dict[str, Path]:
    """Split name → folder: canonical split names for known aliases, else the folder name."""
    found: dict[str, Path] = {}
    for sub in _subdirs(root):
        key = sub.name.lower()
        name = next((s for s, aliases in SPLIT_ALIASES.items() if key in aliases), sub.name)
        found.setdefault(name, sub)
    return found


def _is_class_root(root: Path) -> bool:
    subs = _subdirs(root)
    return bool(subs) and all(_is_class_name(s.name) for s in subs)


def folder_splits(source: str | Path) -> tuple[str, ...]:
    """The splits of a folder dataset (``("all",)`` when the root holds the classes)."""
    root = Path(source)
    if _is_class_root(root):
        return ("all",)
    found = [name for name, path in _split_dirs(root).items() if _is_class_root(path)]
    order = list(SPLIT_ALIASES)  # train, val, test first, then other folders by name
    return tuple(sorted(found, key=lambda s: (order.index(s) if s in order else len(order), s)))


def is_folder(path: Path) -> bool:
    return path.is_dir() and bool(folder_splits(path))


def split_folder(root: Path, split: str) -> Path:
    """The folder holding ``split`` under ``root`` (class folders directly: split ``all``)."""
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist or is not a folder")
    if _is_class_root(root):
        if split.lower() != "all":
            raise DataError(f"{root} holds class folders directly (one split, 'all'); there is "
                            f"no split {split!r}. Put splits in {root}/<split>/<class>/")
        return root
    dirs = _split_dirs(root)
    key = next((s for s, aliases in SPLIT_ALIASES.items() if split.lower() in aliases), split)
    if key not in dirs:
        raise DataError(f"{root} has no {split!r} split folder; found "
                        f"{', '.join(sorted(dirs)) or 'no sub-folders'} "
                        "(expected root/<split>/<class>/images, split train/val/test)")
    return dirs[key]


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                  and p.is_file())


class ImageFolderFER(ImageFileDataset):
    """One split of a ``root/<split>/<class>/`` tree; built by :func:`open_folder`."""

    name = "folder"


def open_folder(
    source: str | Path,
    *,
    split: str = "train",
    label_order: LabelOrder = None,
    classes: Sequence[str] | None = None,
    strict: bool = True,
    transform: Any = None,
) -> ImageFolderFER:
    """Open ``source/<split>/<class>/*`` (see the module docstring for names and orders).

    Args:
        label_order: meaning of numeric class folders (key of NATIVE_ORDERS or class names).
        classes: keep only these canonical classes (e.g. the 7 basic ones); others are
            counted in ``dataset.dropped``.
        strict: raise at the first bad class folder; ``False`` skips it and records it in
            ``dataset.problems``.
    """
    root = Path(source)
    folder = split_folder(root, split)
    resolver = LabelResolver(label_order, classes)
    samples = Samples(strict)
    for class_dir in _subdirs(folder):
        files = image_files(class_dir)
        index = resolver.resolve_entry(class_dir.name, where=f"class folder {class_dir}",
                                       samples=samples, count=len(files))
        if index is not None:  # listed files exist: no per-file check needed
            samples.paths += files
            samples.targets += [index] * len(files)
    if not samples:
        raise DataError(f"split {split!r} at {folder} has no images in class folders "
                        f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return samples.dataset(ImageFolderFER, split=split, transform=transform)


register_format(DatasetFormat("folder", open_folder, folder_splits, is_folder,
                              "root/<split>/<class>/image files (names, or numbers with"
                              " label_order)"))
