"""FER+ (Barsoum et al. 2016): ten crowd votes per FER2013 image, over FER2013's pixels.

``fer2013new.csv`` has one row per row of ``fer2013.csv`` (same order, same Usage):
``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF``
where each column counts how many of the ~10 taggers chose it.  The pixels come from the
FER2013 file (``pixels=``; by default ``fer2013.npz``/``fer2013.csv[.gz]`` found beside the
FER+ file or in ``../fer2013/``).

Drop rules, applied in this order (each dropped row is counted in ``dataset.dropped``):

1. ``no image``: the row's ``Image name`` is empty (FER+ removed the image); then, with
   ``drop_train_duplicates=True`` on val/test, ``same pixels in Training``.
2. Single votes are noise: a column with exactly 1 vote is set to 0 first
   (``drop_single_votes=True``, as Microsoft's reference code does).
3. ``no votes``: nothing is left in any column.
4. ``not a face``: the NF votes exceed every emotion's votes.
5. ``unknown``: the unknown votes exceed every emotion's votes.
6. ``no clear majority`` (``label_mode="majority"`` only): the top emotion does not hold more
   than half of all remaining votes (all ten columns, so ties never pass).

``label_mode="majority"``: the target is the top emotion.  ``label_mode="soft"``: the
target is the top emotion (first in file order on a tie) and ``soft_targets`` holds the
emotion votes normalised to sum 1, as an ``(N, 8)`` distribution over canonical classes;
``fer2013_weight=w`` mixes in FER2013's own label: ``(1 - w) * votes + w * one_hot(FER2013)``
(FER+'s top vote differs from FER2013's label on 37% of the training images, and every
FER2013 benchmark scores FER2013's labels).

Splits as FER2013: ``train`` = Training, ``val`` = PublicTest, ``test`` = PrivateTest.

Example:
    >>> ds = open_ferplus("ferplus/fer2013new.csv", split="test",        # doctest: +SKIP
    ...                   pixels="fer2013/fer2013.csv.gz", label_mode="soft")
"""

from __future__ import annotations

import csv
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.data.base import ArrayFERDataset, Problems
from ferkit.data.fer2013 import USAGES, load_fer2013_table, pixel_digests, resolve_split
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError
from ferkit.labels import CANONICAL, to_canonical

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "nf")
N_EMOTIONS = 8
#: FER+ vote column i → canonical index (emotion columns only).
_TO_CANONICAL = np.array([to_canonical("ferplus", i) for i in range(N_EMOTIONS)], np.int64)
_FER2013_TO_CANONICAL = np.array([to_canonical("fer2013", i) for i in range(7)], np.int64)
_PIXEL_FILES = ("fer2013.npz", "fer2013.csv.gz", "fer2013.csv", "icml_face_data.csv",
                "icml_face_data.csv.gz")


class FERPlus(ArrayFERDataset):
    """One split of FER+; built by :func:`open_ferplus`."""

    name = "FER+"


def _find_pixels(source: Path) -> Path:
    for folder in (source.parent, source.parent.parent / "fer2013", source.parent / "fer2013"):
        for name in _PIXEL_FILES:
            if (folder / name).is_file():
                return folder / name
    raise DataError(f"FER+ labels {source} need FER2013's pixels: pass pixels=PATH "
                    "(fer2013.csv[.gz] or an npz cache), or put fer2013.csv.gz beside the FER+ "
                    "file or in ../fer2013/")


@lru_cache(maxsize=4)
def _read_votes_cached(path: str, mtime: float, size: int) -> tuple[
        list[str], list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
    del mtime, size  # cache key only: a rewritten file is read again
    problems = Problems(strict=False)
    usage, names, votes, lines = _read_votes(Path(path), problems)
    return usage, names, votes, lines, tuple(problems.messages)


def _read_votes(source: Path, problems: Problems) -> tuple[list[str], list[str], np.ndarray,
                                                            np.ndarray]:
    """Usage, image name, votes (N,10) and 1-based line numbers of every row."""
    try:
        with source.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read FER+ file {source}: {exc}") from None
    if not rows:
        raise DataError(f"FER+ file {source} is empty")
    header = [c.strip().lower() for c in rows[0]]
    expected = ["usage", "image name", *VOTE_COLUMNS]
    if header != expected:
        raise DataError(f"{source} line 1: header {','.join(rows[0])!r} is not FER+'s "
                        "'Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,"
                        "fear,contempt,unknown,NF'")
    usage, names, lines = [], [], []
    votes = np.zeros((len(rows) - 1, len(VOTE_COLUMNS)), np.int64)
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        i = len(usage)
        try:
            if len(row) != len(expected):
                raise ValueError(f"{len(row)} columns, expected {len(expected)}")
            votes[i] = [int(v) for v in row[2:]]
            if (votes[i] < 0).any():
                raise ValueError("negative vote count")
        except ValueError as exc:
            problems.add(f"{source} line {number}: {exc}; expected Usage, Image name and 10 "
                         "non-negative vote counts")
            votes[i] = 0
            names.append("")  # dropped as "no image" below, kept for row alignment
            usage.append(row[0].strip() if row else "")
            lines.append(number)
            continue
        usage.append(row[0].strip())
        names.append(row[1].strip())
        lines.append(number)
    return usage, names, votes[: len(usage)], np.array(lines)


def ferplus_splits(source: str | Path) -> tuple[str, ...]:
    return ("train", "val", "test")


def is_ferplus(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return False
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            header = f.readline().lower()
    except OSError:
        return False
    return "image name" in header and "happiness" in header


def open_ferplus(
    source: str | Path,
    *,
    split: str = "train",
    pixels: str | Path | None = None,
    label_mode: str = "majority",
    drop_single_votes: bool = True,
    drop_train_duplicates: bool = False,
    fer2013_weight: float = 0.0,
    strict: bool = True,
    transform: Any = None,
) -> FERPlus:
    """Open one split of FER+ (see the module docstring for the drop rules).

    Args:
        source: ``fer2013new.csv``.
        pixels: FER2013 CSV or npz cache with the same rows (default: searched nearby).
        label_mode: ``"majority"`` (hard labels) or ``"soft"`` (also ``soft_targets``).
        drop_single_votes: zero columns with a single vote before the rules.
        drop_train_duplicates: leave out val/test images whose exact pixels also occur in
            Training (after the ``no image`` rule), as for FER2013.
        fer2013_weight: ``label_mode="soft"`` only: the share of FER2013's original label
            in each soft target (0: the votes alone; 1: FER2013's labels on FER+'s images).
        strict: raise at the first malformed row; ``False`` lists them in ``problems``.
    """
    source = Path(source)
    if label_mode not in ("majority", "soft"):
        raise DataError(f"label_mode must be 'majority' or 'soft', not {label_mode!r}")
    if not 0.0 <= fer2013_weight <= 1.0 or (fer2013_weight and label_mode != "soft"):
        raise DataError(f"fer2013_weight must be in [0, 1] and needs label_mode='soft'; got "
                        f"{fer2013_weight!r} with label_mode={label_mode!r}")
    if not source.is_file():
        raise DataError(f"FER+ file {source} does not exist; expected fer2013new.csv")
    problems = Problems(strict)
    stat = source.stat()
    usage, names, votes, lines, messages = _read_votes_cached(str(source.resolve()),
                                                              stat.st_mtime, stat.st_size)
    for message in messages:
        problems.add(message)
    table = load_fer2013_table(pixels if pixels is not None else _find_pixels(source))
    if len(table.images) != len(usage):
        raise DataError(f"{source} has {len(usage)} rows but the FER2013 pixels in "
                        f"{table.source} have {len(table.images)}; FER+ rows must align with "
                        "fer2013.csv row for row")
    if table.has_usage:
        pixel_usage = np.array(USAGES)[np.maximum(table.usage, 0)]
        mismatch = np.flatnonzero((pixel_usage != np.array(usage)) & (table.usage >= 0))
        if len(mismatch):
            i = mismatch[0]
            raise DataError(f"{source} line {lines[i]}: Usage {usage[i]!r} differs from "
                            f"{table.source} ({pixel_usage[i]!r}); the files are not aligned")
    wanted = resolve_split(split, has_usage=True, source=str(source))
    in_split = np.ones(len(usage), bool) if wanted is None else np.array(usage) == wanted

    counted = votes.copy()
    if drop_single_votes:
        counted[counted == 1] = 0
    emotions = counted[:, :N_EMOTIONS]
    top = emotions.max(axis=1)
    total = counted.sum(axis=1)
    reasons = np.full(len(usage), "", dtype=object)
    rules = [
        ("no image", np.array([not n for n in names])),
        ("no votes", total == 0),
        ("not a face", counted[:, 9] > top),
        ("unknown", counted[:, 8] > top),
    ]
    if drop_train_duplicates and wanted not in (None, "Training"):
        in_train = set(pixel_digests(table.images[np.array(usage) == "Training"]))
        duplicate = np.zeros(len(usage), bool)
        candidates = np.flatnonzero(in_split)
        duplicate[candidates] = [d in in_train for d in pixel_digests(table.images[candidates])]
        rules.insert(1, ("same pixels in Training", duplicate))
    if label_mode == "majority":
        rules.append(("no clear majority", 2 * top <= total))
    for reason, hit in rules:
        reasons[(reasons == "") & hit] = reason
    keep = in_split & (reasons == "")
    dropped = Counter(reasons[in_split & (reasons != "")].tolist())
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DataError(f"{source}: split {split!r} has no usable rows after the drop rules")
    targets = _TO_CANONICAL[emotions[rows].argmax(axis=1)]
    soft = None
    if label_mode == "soft":
        soft = np.zeros((len(rows), len(CANONICAL)), np.float32)
        soft[:, _TO_CANONICAL] = emotions[rows] / emotions[rows].sum(axis=1, keepdims=True)
        if fer2013_weight:
            original = table.emotion[rows]
            if (original < 0).any():
                bad = lines[rows][original < 0][0]
                raise DataError(f"fer2013_weight needs FER2013's label on every row; "
                                f"{table.source} has none for the row of {source} line {bad}")
            hard = np.zeros_like(soft)
            hard[np.arange(len(rows)), _FER2013_TO_CANONICAL[original]] = 1.0
            soft = (1.0 - fer2013_weight) * soft + fer2013_weight * hard
    dataset = FERPlus(table.images[rows], targets, split=split, soft_targets=soft,
                      sources=[f"{source} line {n}" for n in lines[rows]], transform=transform,
                      dropped=dict(dropped), problems=problems.messages)
    dataset.rows = rows
    dataset.native_split = wanted or "all"
    return dataset


register_format(DatasetFormat("ferplus", open_ferplus, ferplus_splits, is_ferplus,
                              "FER+ fer2013new.csv vote labels over FER2013 pixels"))
