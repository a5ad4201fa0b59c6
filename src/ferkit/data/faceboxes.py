"""Photos with annotated face boxes: one ``labels.csv`` row per face (ExpW-style dev sets).

Layout::

    root/labels.csv      header "file,x1,y1,x2,y2,label[,split,...]"
    root/images/<file>   the photos (or crops with context) the boxes refer to

``x1, y1, x2, y2`` is the face box in the image's pixels; ``label`` a class name in any
spelling :func:`ferkit.labels.canonical_name` knows.  Other columns are ignored.  With a
``split`` column, each row belongs to the split it names; without one the file is a single
held-out evaluation set, served as ``val`` and ``test`` (there is no ``train``).

Faces are classified **from their boxes, without a detector**, cropped exactly as the
Recognizer crops a detected face: :func:`ferkit.faces.align.align_face` with the model's
:class:`~ferkit.config.DataConfig` (``alignment``, ``face_margin``, ``input_size``).
:func:`ferkit.evaluation.evaluate` sets :attr:`FaceBoxDataset.crop_config` to the model's
config; until then faces are cut as a square of the box's longer side at 112 px.

Example:
    >>> ds = open_faceboxes("../shared/data/expw_dev", split="test")   # doctest: +SKIP
    >>> len(ds), ds.summary().per_class["anger"]                       # doctest: +SKIP
    (2851, 422)
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ferkit.config import DataConfig
from ferkit.data.base import ImageFileDataset, Samples
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError, FerkitError
from ferkit.labels import CANONICAL_INDEX, canonical_name

LABELS_FILE = "labels.csv"
IMAGES_DIR = "images"
REQUIRED = ("file", "x1", "y1", "x2", "y2", "label")
#: how faces are cut before a model's config is known (``data check``, plots)
DEFAULT_CROP = DataConfig(input_size=(3, 112, 112), alignment="box", face_margin=0.0)


class FaceBoxDataset(ImageFileDataset):
    """Faces given by boxes in photos; built by :func:`open_faceboxes`.

    Attributes:
        face_boxes: ``(N, 4)`` ``x1, y1, x2, y2`` per face, in its image's pixels.
        crop_config: how each face is cut out (a model's ``DataConfig``).
    """

    name = "face boxes"

    def __init__(self, paths: Sequence[Path], targets: Sequence[int], *, split: str,
                 face_boxes: np.ndarray, **kwargs: Any) -> None:
        super().__init__(paths, targets, split=split, **kwargs)
        self.face_boxes = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
        self.crop_config: DataConfig = DEFAULT_CROP

    def load_image(self, index: int) -> Image.Image:
        from ferkit.faces.align import align_face
        from ferkit.faces.base import Detection

        photo = np.asarray(super().load_image(index).convert("RGB"))
        face = align_face(photo, Detection(box=tuple(self.face_boxes[index]), score=None),
                          self.crop_config)
        return Image.fromarray(face.crop)


def _root(source: Path) -> Path:
    return source.parent if source.is_file() else source


def faceboxes_splits(source: str | Path) -> tuple[str, ...]:
    rows = _read_rows(_root(Path(source)) / LABELS_FILE)
    if rows and "split" in rows[0]:
        return tuple(sorted({r["split"] for r in rows}))
    return ("val", "test")


def is_faceboxes(path: Path) -> bool:
    labels = _root(path) / LABELS_FILE
    if not labels.is_file() or not (_root(path) / IMAGES_DIR).is_dir():
        return False
    try:
        with labels.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return all(column in header for column in REQUIRED)


def open_faceboxes(
    source: str | Path,
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    strict: bool = True,
    transform: Any = None,
) -> FaceBoxDataset:
    """Open the faces of ``split`` listed in ``source/labels.csv``.

    Args:
        source: the folder holding ``labels.csv`` and ``images/`` (or the CSV itself).
        split: a value of the CSV's ``split`` column; without that column ``val`` or
            ``test`` (both: every row).
        classes: keep only these canonical classes (others counted as dropped).
        strict: raise at the first bad row or missing image; ``False`` lists them.
    """
    root = _root(Path(source))
    labels_file = root / LABELS_FILE
    rows = _read_rows(labels_file)
    if not rows:
        raise DataError(f"{labels_file} lists no faces")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise DataError(f"{labels_file} lacks the column(s) {', '.join(missing)}; expected a "
                        f"header with {', '.join(REQUIRED)}")
    has_splits = "split" in rows[0]
    if not has_splits and split not in ("val", "test"):
        raise DataError(f"{labels_file} has no split column: it is one held-out evaluation set "
                        f"(use --split test or val), not a {split!r} split")
    keep = None
    if classes is not None:
        keep = {CANONICAL_INDEX[canonical_name(c)] for c in classes}
    samples = Samples(strict)
    for number, row in enumerate(rows, 2):
        if has_splits and row["split"] != split:
            continue
        where = f"{labels_file} line {number}"
        try:
            index = CANONICAL_INDEX[canonical_name(row["label"] or "")]
        except FerkitError as exc:
            samples.problems.add(f"{where}: {exc}")
            continue
        try:
            box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        except (TypeError, ValueError):
            samples.problems.add(f"{where}: the box {[row[k] for k in ('x1', 'y1', 'x2', 'y2')]}"
                                 " is not four numbers")
            continue
        if not (box[2] > box[0] and box[3] > box[1]):
            samples.problems.add(f"{where}: the box {box} is empty (need x2 > x1 and y2 > y1)")
            continue
        if keep is not None and index not in keep:
            samples.dropped[canonical_name(row["label"])] += 1
            continue
        samples.keep(root / IMAGES_DIR / row["file"], index, where=where, box=box)
    if has_splits and not samples and not samples.problems:
        known = sorted({r["split"] for r in rows})
        raise DataError(f"{labels_file} has no {split!r} rows (splits: {', '.join(known)})")
    dataset = samples.dataset(FaceBoxDataset, split=split, transform=transform,
                              face_boxes=np.asarray(samples.boxes))
    dataset.name = root.resolve().name  # reports say "expw_dev", not "face boxes"
    return dataset


def _read_rows(labels_file: Path) -> list[dict[str, str]]:
    if not labels_file.is_file():
        raise DataError(f"face-box label file {labels_file} does not exist; expected "
                        f"{LABELS_FILE} (columns {', '.join(REQUIRED)}) beside {IMAGES_DIR}/")
    try:
        with labels_file.open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {labels_file}: {exc}") from exc


register_format(DatasetFormat("faceboxes", open_faceboxes, faceboxes_splits, is_faceboxes,
                              "photos + labels.csv face boxes (file,x1,y1,x2,y2,label;"
                              " ExpW-style dev sets)"))
