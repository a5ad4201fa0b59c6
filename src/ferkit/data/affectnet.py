"""AffectNet (Mollahosseini et al. 2017) in its three common layouts.

* **CSV release**: ``Manually_Annotated_file_lists/training.csv`` and ``validation.csv`` with
  columns ``subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,
  expression,valence,arousal``; images under ``Manually_Annotated_Images/`` (or
  ``images=``).  Each image is cropped to its face box (``crop=True``).
* **npy release**: ``train_set/images/<id>.jpg`` with ``train_set/annotations/<id>_exp.npy``
  (the expression as a one-element array), and ``val_set/…`` likewise.
* **class folders**: ``root/<split>/<class>/…`` with numeric folders in AffectNet's order
  or class names (read by :func:`ferkit.data.folder.open_folder`).

Labels (``NATIVE_ORDERS["affectnet"]``): 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear,
5 disgust, 6 anger, 7 contempt, 8 none, 9 uncertain, 10 no-face.  ``classes=8`` keeps 0..7,
``classes=7`` also drops contempt; dropped samples are counted in ``dataset.dropped``.
Splits: ``train`` and ``val`` (the test set was never released; papers report on val).

Example:
    >>> ds = open_affectnet("data/AffectNet", split="val", classes=7)    # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.data.base import ImageFileDataset, Samples
from ferkit.data.folder import LabelResolver, folder_splits, open_folder
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError
from ferkit.labels import CANONICAL

CSV_FILES = {"train": "training.csv", "val": "validation.csv"}
NPY_DIRS = {"train": "train_set", "val": "val_set"}
CSV_COLUMNS = ("subdirectory_filepath", "face_x", "face_y", "face_width", "face_height",
               "expression")
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images",
              "Manually_Annotated_compressed/Manually_Annotated_Images", "images")


class AffectNet(ImageFileDataset):
    """One split of AffectNet; built by :func:`open_affectnet`."""

    name = "AffectNet"


def _layout(source: Path) -> str:
    if source.is_file():
        return "csv"
    if (source / "Manually_Annotated_file_lists").is_dir() or any(
            (source / f).is_file() for f in CSV_FILES.values()):
        return "csv"
    if any((source / d / "annotations").is_dir() for d in NPY_DIRS.values()):
        return "npy"
    if source.is_dir() and folder_splits(source):
        return "folders"
    return ""


def is_affectnet(path: Path) -> bool:
    if path.is_file():
        if path.suffix.lower() != ".csv":
            return False
        try:
            with path.open(encoding="utf-8-sig", errors="replace") as f:
                return f.readline().lower().startswith("subdirectory_filepath")
        except OSError:
            return False
    return _layout(path) in ("csv", "npy")


def affectnet_splits(source: str | Path) -> tuple[str, ...]:
    source = Path(source)
    layout = _layout(source)
    if layout == "folders":
        return folder_splits(source)
    if source.is_file():
        return ("val",) if "valid" in source.name.lower() else ("train",)
    return tuple(NPY_DIRS) if layout == "npy" else tuple(
        s for s in CSV_FILES if _csv_file(source, s).is_file())


def _csv_file(root: Path, split: str) -> Path:
    for folder in (root / "Manually_Annotated_file_lists", root):
        if (folder / CSV_FILES[split]).is_file():
            return folder / CSV_FILES[split]
    return root / "Manually_Annotated_file_lists" / CSV_FILES[split]


def _image_root(csv_path: Path, images: str | Path | None) -> Path:
    if images is not None:
        if not Path(images).is_dir():
            raise DataError(f"AffectNet image folder {images} does not exist")
        return Path(images)
    for base in (csv_path.parent, csv_path.parent.parent):
        for name in IMAGE_DIRS:
            if (base / name).is_dir():
                return base / name
    raise DataError(f"cannot find AffectNet's images for {csv_path}: looked for "
                    f"{', '.join(IMAGE_DIRS)} beside it; pass images=FOLDER")


def _read_csv(csv_path: Path, image_root: Path, resolver: LabelResolver, samples: Samples,
              crop: bool) -> None:
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [c.strip().lower() for c in next(reader, [])]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{csv_path} line 1: missing column(s) {', '.join(missing)}; "
                                "expected AffectNet's subDirectory_filePath,face_x,face_y,"
                                "face_width,face_height,facial_landmarks,expression,valence,"
                                "arousal")
            col = {name: header.index(name) for name in CSV_COLUMNS}
            for number, row in enumerate(reader, start=2):
                if not row:
                    continue
                where = f"{csv_path} line {number}"
                try:
                    rel = row[col["subdirectory_filepath"]].strip()
                    token = row[col["expression"]].strip()
                    box = [float(row[col[k]]) for k in ("face_x", "face_y", "face_width",
                                                         "face_height")]
                except (IndexError, ValueError) as exc:
                    samples.problems.add(f"{where}: {exc}; expected a path, a face box of 4 "
                                         "numbers and an expression 0..10")
                    continue
                if crop and (box[2] <= 0 or box[3] <= 0):  # a bad row, whatever its class
                    samples.problems.add(f"{where}: face box {box} has no area")
                    continue
                samples.add(image_root / rel, token, resolver=resolver, where=where, box=box)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {csv_path}: {exc}") from None


def _read_npy(split_dir: Path, resolver: LabelResolver, samples: Samples) -> None:
    for annotation in sorted((split_dir / "annotations").glob("*_exp.npy")):
        sample = annotation.name[: -len("_exp.npy")]
        try:
            token = str(np.load(annotation, allow_pickle=False).reshape(-1)[0])
        except (OSError, ValueError, IndexError) as exc:
            samples.problems.add(f"{annotation}: cannot read the expression ({exc}); expected "
                                 "a one-element array holding 0..10")
            continue
        candidates = [split_dir / "images" / f"{sample}{ext}" for ext in (".jpg", ".png", ".jpeg")]
        path = next((p for p in candidates if p.is_file()), candidates[0])
        samples.add(path, token, resolver=resolver, where=str(annotation))


def open_affectnet(
    source: str | Path,
    *,
    split: str = "train",
    classes: int = 7,
    layout: str | None = None,
    images: str | Path | None = None,
    crop: bool = True,
    strict: bool = True,
    transform: Any = None,
) -> ImageFileDataset:
    """Open one split of AffectNet (see the module docstring for the layouts).

    Args:
        source: dataset root, or one of the CSV lists.
        classes: 7 (basic expressions) or 8 (with contempt).
        layout: ``"csv"``, ``"npy"`` or ``"folders"`` (default: detected).
        images: image folder for the CSV release (default: searched beside the lists).
        crop: crop CSV images to their face box.
        strict: raise at the first bad entry; ``False`` lists them in ``problems``.
    """
    source = Path(source)
    if classes not in (7, 8):
        raise DataError(f"classes must be 7 or 8 for AffectNet, not {classes!r}")
    layout = layout or _layout(source)
    keep = CANONICAL[:classes]
    if layout == "folders":
        dataset = open_folder(source, split=split, label_order="affectnet", classes=keep,
                              strict=strict, transform=transform)
        dataset.name = "AffectNet"
        return dataset
    if layout not in ("csv", "npy"):
        raise DataError(f"{source} is not an AffectNet layout: expected "
                        "Manually_Annotated_file_lists/{training,validation}.csv, "
                        "train_set/annotations/*_exp.npy, or root/<split>/<class>/ folders")
    if not source.is_file() and split not in CSV_FILES:
        raise DataError(f"AffectNet has splits train and val, not {split!r} (its test set "
                        "was never released; papers report on val)")
    resolver = LabelResolver("affectnet", keep)
    samples = Samples(strict)
    boxes = None
    if layout == "csv":
        csv_path = source if source.is_file() else _csv_file(source, split)
        if not csv_path.is_file():
            raise DataError(f"AffectNet list {csv_path} does not exist")
        _read_csv(csv_path, _image_root(csv_path, images), resolver, samples, crop)
        boxes = np.array(samples.boxes, np.float64).reshape(-1, 4) if crop else None
    else:
        split_dir = source / NPY_DIRS[split]
        if not (split_dir / "annotations").is_dir():
            raise DataError(f"AffectNet folder {split_dir / 'annotations'} does not exist")
        _read_npy(split_dir, resolver, samples)
    if not samples:
        raise DataError(f"AffectNet {split} at {source} has no usable images")
    return samples.dataset(AffectNet, split=split, transform=transform, boxes=boxes)


register_format(DatasetFormat("affectnet", open_affectnet, affectnet_splits, is_affectnet,
                              "AffectNet: CSV lists, *_exp.npy release, class folders"))
