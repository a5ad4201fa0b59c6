"""FER2013 (Goodfellow et al., ICML 2013 challenge) read from its Kaggle CSV files.

Three CSV layouts are read as they are, plain or gzipped:

* ``fer2013.csv``: ``emotion,pixels,Usage`` (35,887 rows; the original release);
* ``icml_face_data.csv``: ``emotion, Usage, pixels`` (same rows; header with leading spaces);
* ``train.csv``: ``emotion,pixels`` (the 28,709 Training rows only, no ``Usage``).

``emotion`` is in FER2013's native order (0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
5 surprise, 6 neutral) and becomes a canonical index; ``pixels`` is 2,304 space-separated
grey levels (48x48).  Splits: ``train`` = Training, ``val`` = PublicTest, ``test`` =
PrivateTest (the native names are accepted too); ``all`` gives every row.

Parsing streams the file in blocks of :data:`BLOCK_BYTES` and is vectorised over each
block's bytes (no per-pixel Python), so memory stays bounded by the table it builds: a line
longer than any FER2013 row (:data:`MAX_LINE_BYTES`) is reported and skipped, never held
whole.  A parsed file is kept in memory for the next split; :func:`fer2013_to_npz` writes
a compact uint8 cache that :func:`open_fer2013` reads in well under a second.

Example:
    >>> ds = open_fer2013("fer2013.csv.gz", split="test")          # doctest: +SKIP
    >>> len(ds), ds.load_image(0).size                               # doctest: +SKIP
    (3589, (48, 48))
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.atomic import atomic_path
from ferkit.data.base import ArrayFERDataset, Problems
from ferkit.data.registry import DatasetFormat, register_format
from ferkit.errors import DataError
from ferkit.labels import canonical_mapping

IMAGE_SIZE = 48
PIXELS = IMAGE_SIZE * IMAGE_SIZE
#: Native ``Usage`` values, in the order used for the ``usage`` codes in the npz cache.
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
SPLIT_TO_USAGE: dict[str, str] = {"train": "Training", "val": "PublicTest",
                                  "test": "PrivateTest"}


@dataclass(frozen=True)
class Fer2013Table:
    """Every row of a FER2013 file: ``images`` (N,48,48) uint8, native ``emotion`` (N,)
    int64 (-1 where a row was unusable), ``usage`` (N,) codes into :data:`USAGES`
    (-1 for files without a Usage column), the file's ``lines`` (1-based) and problems."""

    source: str
    images: np.ndarray
    emotion: np.ndarray
    usage: np.ndarray
    lines: np.ndarray
    problems: tuple[str, ...]
    has_usage: bool


#: Bytes read from the file per step: the parser's working memory is a small multiple of
#: this, whatever the file holds (the table it builds is 2,304 bytes per row).
BLOCK_BYTES = 8 << 20
#: A FER2013 row needs under 10 KB (2,304 numbers of up to 3 digits, spaces, two short
#: columns); a longer line is reported and skipped without being held whole.
MAX_LINE_BYTES = 64 << 10
#: Problems listed per kind before only counting them.
MAX_LISTED = 20


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"FER2013 file {path} does not exist; expected fer2013.csv, "
                        "icml_face_data.csv or train.csv (optionally .gz), or a .npz cache")


def _columns(header: bytes, path: Path) -> dict[str, int]:
    try:
        text = header.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} line 1 is not text (a binary file?); expected a FER2013 CSV "
                        "whose header is 'emotion,pixels,Usage'") from None
    names = [c.strip().strip('"').strip().lower() for c in text.split(",")]
    if "emotion" not in names or "pixels" not in names:
        shown = text.strip()
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        raise DataError(
            f"{path} line 1: header {shown!r} lacks the "
            "columns 'emotion' and 'pixels'; expected 'emotion,pixels,Usage' (fer2013.csv), "
            "'emotion, Usage, pixels' (icml_face_data.csv) or 'emotion,pixels' (train.csv). "
            "Kaggle's test.csv has no labels and cannot be used"
        )
    return {name: i for i, name in enumerate(names)}


class _Report:
    """Problems found while parsing: the first :data:`MAX_LISTED` of each kind, in file
    order within a kind, and how many rows were unusable in all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.listed: list[str] = []
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, line: int, message: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_LISTED:
            self.listed.append(f"{self.path} line {line}: {message}")

    def too_long(self, line: int, length: int) -> None:
        self.add("long", line, f"the line is {length:,} bytes long; a FER2013 row needs under "
                               f"10 KB (expected 'emotion,pixels,Usage' with {PIXELS} grey "
                               "levels)")


def _line_blocks(stream, first_line: int, report: _Report
                 ) -> Iterator[tuple[bytes | None, int]]:
    """``(block, number of its first line)``: whole lines, about :data:`BLOCK_BYTES` at a
    time.  A line longer than :data:`MAX_LINE_BYTES` that does not fit a block is reported
    and skipped as it streams past (``(None, its number)`` keeps the row count right)."""
    line, carry, skipped = first_line, b"", 0
    while chunk := stream.read(BLOCK_BYTES):
        if skipped:
            end = chunk.find(b"\n")
            if end < 0:
                skipped += len(chunk)
                continue
            report.too_long(line, skipped + end)
            yield None, line
            line, skipped, chunk = line + 1, 0, chunk[end + 1:]
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        block, carry = data[:cut], data[cut:]
        if block:
            yield block, line
            line += block.count(b"\n")
        if len(carry) > MAX_LINE_BYTES:
            skipped, carry = len(carry), b""
    if skipped:
        report.too_long(line, skipped)
        yield None, line
    elif carry.strip():
        yield carry + b"\n", line


def _parse_pixels(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decimal numbers in ``buf[starts[i]:ends[i]]`` for each row i, vectorised.

    Returns ``(values, counts, too_long, bad_char)``: the numbers of all rows concatenated
    (int16), how many each row had (so rows with a wrong pixel count can be named), which
    rows hold a number of 4+ digits, and which hold characters other than digits/spaces.

    Elementwise array operations over the block only (memory linear in its bytes): a value
    is read at the last digit of each number as d0 + 10*d1 + 100*d2.
    """
    n = len(starts)
    too_long = np.zeros(n, bool)
    bad_char = np.zeros(n, bool)
    if n == 0:
        return np.zeros(0, np.int16), np.zeros(0, np.int64), too_long, bad_char
    lo, hi = int(starts[0]), int(ends[-1])
    seg = buf[lo:hi]
    digit = seg - np.uint8(48)  # wraps below '0', so "< 10" tests for a digit
    is_digit = digit < 10
    # Anything but digits, spaces, quotes and CR inside a pixel field ("-3", "1.5").
    odd = ~is_digit & (seg != 32) & (seg != 34) & (seg != 13)
    # Blank out the stretches between one row's pixels and the next's (the other columns,
    # e.g. the emotion digit), so only pixel numbers remain: +1 where a gap starts, -1 where
    # it ends, and a running sum (one byte per byte, however long a gap is; gaps never
    # overlap, so the sum is 0 or 1).
    edges = np.zeros(len(seg) + 1, np.int8)
    np.add.at(edges, ends[:-1] - lo, 1)
    np.add.at(edges, starts[1:] - lo, -1)
    in_gap = np.cumsum(edges[:-1], dtype=np.int8) > 0
    is_digit &= ~in_gap
    odd &= ~in_gap
    d = digit.astype(np.int16) * is_digit
    value = d.copy()
    value[1:] += 10 * d[:-1]
    value[2:] += 100 * d[:-2] * is_digit[1:-1]
    is_end = is_digit.copy()
    is_end[:-1] &= ~is_digit[1:]
    ends_at = np.flatnonzero(is_end)
    row_edges = np.searchsorted(ends_at, np.concatenate((starts, ends[-1:])) - lo)
    counts = np.diff(row_edges).astype(np.int64)
    four = is_digit[3:] & is_digit[2:-1] & is_digit[1:-2] & is_digit[:-3]
    for bad, mark in ((four, too_long), (odd, bad_char)):
        if bad.any():
            rows = np.searchsorted(starts - lo, np.flatnonzero(bad), side="right")
            mark[rows - 1] = True
    return value[ends_at], counts, too_long, bad_char


@dataclass
class _Rows:
    """Parsed rows of one block (every non-blank line; ``emotion`` -1 where unusable)."""

    images: np.ndarray
    emotion: np.ndarray
    usage: np.ndarray
    lines: np.ndarray


def _placeholder(line: int) -> _Rows:
    """The row of a line too long to parse: unusable, but it keeps row numbers aligned."""
    return _Rows(np.zeros((1, PIXELS), np.uint8), np.full(1, -1, np.int64),
                 np.full(1, -1, np.int8), np.array([line]))


def _parse_block(raw: bytes, first_line: int, columns: dict[str, int],
                 report: _Report) -> _Rows:
    buf = np.frombuffer(raw, np.uint8)
    newlines = np.flatnonzero(buf == 10)
    body_starts = np.concatenate(([0], newlines[:-1] + 1))
    body_ends = newlines
    n_columns = max(columns.values()) + 1
    keep = body_ends - body_starts > 1  # skip blank lines ("\n" or "\r\n")
    line_numbers = np.flatnonzero(keep) + first_line
    body_starts, body_ends = body_starts[keep], body_ends[keep]
    n = len(body_starts)

    commas = np.flatnonzero(buf == 44)
    first_comma = np.searchsorted(commas, body_starts)
    comma_count = np.searchsorted(commas, body_ends) - first_comma
    long_line = body_ends - body_starts > MAX_LINE_BYTES
    for i in np.flatnonzero(long_line):
        report.too_long(int(line_numbers[i]), int(body_ends[i] - body_starts[i]))
    good = (comma_count == n_columns - 1) & ~long_line
    for i in np.flatnonzero(~good & ~long_line):
        report.add("columns", int(line_numbers[i]), f"expected {n_columns} comma-separated "
                                                    f"columns ({', '.join(columns)})")
    # Field boundaries: field k of row i spans (comma k-1)+1 .. comma k.
    bounds = np.empty((n, n_columns + 1), np.int64)
    bounds[:, 0] = body_starts - 1
    bounds[:, n_columns] = body_ends
    safe = np.where(good, first_comma, 0)
    for k in range(1, n_columns):
        bounds[:, k] = commas[np.minimum(safe + k - 1, len(commas) - 1)] if len(commas) else 0
    # Unusable rows get empty fields at their line start: nothing of them is parsed.
    bounds[~good] = body_starts[~good, None] - 1

    def field(k: int) -> tuple[np.ndarray, np.ndarray]:
        return bounds[:, k] + 1, np.maximum(bounds[:, k + 1], bounds[:, k] + 1)

    values, counts, too_long, bad_char = _parse_pixels(buf, *field(columns["pixels"]))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    for i in np.flatnonzero(good & bad_char):
        report.add("chars", int(line_numbers[i]), "'pixels' holds characters other than "
                   "digits and spaces; expected integers 0..255 separated by spaces")
    ok = good & ~bad_char & (counts == PIXELS)
    for i in np.flatnonzero(good & ~bad_char & ~ok):
        report.add("count", int(line_numbers[i]), f"'pixels' has {counts[i]} numbers; "
                   f"expected {PIXELS} space-separated grey levels (48x48)")
    row_max = np.zeros(n, np.int32)
    nonempty = np.flatnonzero(counts > 0)
    if len(nonempty):
        row_max[nonempty] = np.maximum.reduceat(values, offsets[nonempty])
    too_big = ok & ((row_max > 255) | too_long)
    for i in np.flatnonzero(too_big):
        report.add("range", int(line_numbers[i]), "a pixel value exceeds 255")
    ok &= ~too_big
    if ok.all():
        images = values.reshape(n, PIXELS).astype(np.uint8)
    else:
        images = np.zeros((n, PIXELS), np.uint8)
        for i in np.flatnonzero(ok):
            images[i] = values[offsets[i]:offsets[i + 1]]

    emotion = np.full(n, -1, np.int64)
    usage = np.full(n, -1, np.int8)
    e_start, e_end = field(columns["emotion"])
    has_usage = "usage" in columns
    u_start, u_end = field(columns["usage"]) if has_usage else (e_start, e_start)
    usage_code = {name.lower(): code for code, name in enumerate(USAGES)}
    for i in np.flatnonzero(ok):
        text = raw[e_start[i]:e_end[i]].strip().strip(b'"')
        if not text.isdigit() or int(text) > 6:
            shown = text[:20].decode(errors="replace")
            report.add("emotion", int(line_numbers[i]), f"emotion {shown!r} is not a FER2013 "
                       "label; expected 0..6 (angry, disgust, fear, happy, sad, surprise, "
                       "neutral)")
            continue
        if has_usage:
            name = raw[u_start[i]:u_end[i]].strip().strip(b'"')[:40].decode(errors="replace")
            code = usage_code.get(name.lower())
            if code is None:
                report.add("usage", int(line_numbers[i]),
                           f"Usage {name!r} is not one of {', '.join(USAGES)}")
                continue
            usage[i] = code
        emotion[i] = int(text)
    return _Rows(images, emotion, usage, line_numbers)


def _parse_csv(path: Path) -> Fer2013Table:
    """Stream ``path`` (plain or gzipped) block by block into a :class:`Fer2013Table`."""
    _check_exists(path)
    report = _Report(path)
    parts: list[_Rows] = []
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as stream:
            header = stream.readline(MAX_LINE_BYTES + 1)
            if not header.strip():
                raise DataError(f"{path} is empty; expected a FER2013 CSV with the header "
                                "'emotion,pixels,Usage'")
            if len(header) > MAX_LINE_BYTES:
                raise DataError(f"{path} line 1 is over {MAX_LINE_BYTES // 1024} KB long: not "
                                "a FER2013 CSV header (expected 'emotion,pixels,Usage')")
            columns = _columns(header, path)
            for block, line in _line_blocks(stream, 2, report):
                parts.append(_placeholder(line) if block is None
                             else _parse_block(block, line, columns, report))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    parts = [p for p in parts if len(p.lines)]
    if not parts:
        raise DataError(f"{path} has a header but no rows")
    images = np.concatenate([p.images for p in parts])
    emotion = np.concatenate([p.emotion for p in parts])
    usage = np.concatenate([p.usage for p in parts])
    lines = np.concatenate([p.lines for p in parts])
    problems = list(report.listed)
    # More than MAX_LISTED problems of one kind: say how many without flooding the report.
    bad_rows = int((emotion < 0).sum())
    if bad_rows > len(problems):
        problems.append(f"{path}: {bad_rows} unusable rows in all")
    return Fer2013Table(str(path), images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), emotion, usage,
                        lines, tuple(problems), "usage" in columns)


def _read_npz(path: Path) -> Fer2013Table:
    try:
        with np.load(path, allow_pickle=False) as data:
            images, emotion, usage = data["images"], data["emotion"], data["usage"]
            lines = data["lines"] if "lines" in data else np.arange(len(images)) + 2
            has_usage = bool(data["has_usage"]) if "has_usage" in data else True
    except KeyError as exc:
        raise DataError(f"{path} is not a ferkit FER2013 cache: missing array {exc}; "
                        "write it with ferkit.data.fer2013.fer2013_to_npz") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: 'images' must be (N, 48, 48) uint8, got {images.shape} "
                        f"{images.dtype}")
    return Fer2013Table(str(path), images, emotion.astype(np.int64), usage.astype(np.int8),
                        lines, (), has_usage)


# Parsed tables by (path, mtime, size), least recently used first.  Bounded by bytes, not
# entries, so a few tiny files opened in between do not evict the 83 MB FER2013 table.
_CACHE: OrderedDict[tuple[str, float, int], Fer2013Table] = OrderedDict()
_CACHE_BYTES = 400_000_000


def load_fer2013_table(path: str | Path) -> Fer2013Table:
    """Parse (or fetch from the in-memory cache) every row of a FER2013 CSV or npz cache."""
    p = Path(path)
    _check_exists(p)
    stat = p.stat()
    key = (str(p.resolve()), stat.st_mtime, stat.st_size)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    table = _read_npz(p) if p.suffix == ".npz" else _parse_csv(p)
    _CACHE[key] = table
    while len(_CACHE) > 1 and sum(t.images.nbytes for t in _CACHE.values()) > _CACHE_BYTES:
        _CACHE.popitem(last=False)
    return table


def clear_table_cache() -> None:
    """Forget every parsed FER2013 table (frees memory; the next open parses again)."""
    _CACHE.clear()


def fer2013_to_npz(csv: str | Path, out: str | Path) -> Path:
    """Write FER2013 as a compact uint8 cache (about 80 MB, loads in well under a second).

    The cache keeps every row in file order (so FER+ labels still align with it), the native
    emotion and the Usage code; open it with :func:`open_fer2013` or ``open_dataset``.

    Example:
        >>> fer2013_to_npz("fer2013.csv.gz", "fer2013.npz")         # doctest: +SKIP
        PosixPath('fer2013.npz')
    """
    table = load_fer2013_table(csv)
    if table.problems:
        raise DataError(f"{csv} has malformed rows; fix them before caching: {table.problems[0]}")
    out = Path(out)
    if out.suffix != ".npz":
        out = out.with_suffix(".npz")
    # Written beside ``out`` and renamed: a full disk never leaves half a cache behind.
    with atomic_path(out) as tmp:
        np.savez(tmp, images=table.images, emotion=table.emotion.astype(np.int8),
                 usage=table.usage, lines=table.lines.astype(np.int32),
                 has_usage=np.array(table.has_usage), usage_names=np.array(USAGES))
    return out


def resolve_split(split: str, *, has_usage: bool, source: str) -> str | None:
    """The native Usage name of ``split`` (``None`` = every row)."""
    key = split.strip()
    if key.lower() == "all":
        return None
    usage = SPLIT_TO_USAGE.get(key.lower()) or next(
        (u for u in USAGES if u.lower() == key.lower()), None)
    if usage is None:
        raise DataError(f"unknown FER2013 split {split!r}; expected train, val, test (or "
                        "Training, PublicTest, PrivateTest, all)")
    if not has_usage:
        if usage == "Training":
            return None
        raise DataError(f"{source} has no Usage column (Kaggle's train.csv holds Training "
                        f"rows only), so it has no {split!r} split; use fer2013.csv or "
                        "icml_face_data.csv for PublicTest/PrivateTest")
    return usage


def fer2013_splits(source: str | Path) -> tuple[str, ...]:
    """Splits available in ``source``."""
    table = load_fer2013_table(source)
    return ("train", "val", "test") if table.has_usage else ("train",)


class FER2013(ArrayFERDataset):
    """One split of FER2013 (see the module docstring); built by :func:`open_fer2013`."""

    name = "FER2013"


def pixel_digests(images: np.ndarray) -> list[bytes]:
    """One digest per image of its exact pixels (for duplicate detection)."""
    flat = images.reshape(len(images), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def open_fer2013(
    source: str | Path,
    *,
    split: str = "train",
    drop_train_duplicates: bool = False,
    strict: bool = True,
    transform: Any = None,
) -> FER2013:
    """Open one split of a FER2013 CSV (``.csv``/``.csv.gz``) or its ``.npz`` cache.

    Args:
        source: ``fer2013.csv[.gz]``, ``icml_face_data.csv[.gz]``, ``train.csv[.gz]`` or a
            cache written by :func:`fer2013_to_npz`.
        split: ``train``/``val``/``test`` (= Training/PublicTest/PrivateTest) or ``all``.
        drop_train_duplicates: leave out val/test images whose exact pixels also occur in
            Training (for de-duplicated test accuracy); counted in ``dataset.dropped``.
        strict: raise :class:`DataError` at the first malformed row; with ``False`` such rows
            are skipped and listed in ``dataset.problems``.
        transform: applied to each PIL image in ``__getitem__``.
    """
    table = load_fer2013_table(source)
    problems = Problems(strict)
    for message in table.problems:
        problems.add(message)
    usage = resolve_split(split, has_usage=table.has_usage, source=table.source)
    valid = table.emotion >= 0
    select = valid if usage is None else valid & (table.usage == USAGES.index(usage))
    dropped: Counter[str] = Counter()
    if drop_train_duplicates and usage not in (None, "Training"):
        train_rows = np.flatnonzero(valid & (table.usage == 0))
        in_train = set(pixel_digests(table.images[train_rows]))
        rows = np.flatnonzero(select)
        dup = np.array([d in in_train for d in pixel_digests(table.images[rows])], bool)
        select[rows[dup]] = False
        dropped["same pixels in Training"] = int(dup.sum())
    rows = np.flatnonzero(select)
    if len(rows) == 0:
        raise DataError(f"{table.source}: split {split!r} is empty")
    mapping = canonical_mapping("fer2013")
    lookup = np.array([mapping[i] for i in range(7)], np.int64)
    sources = [f"{table.source} line {line}" for line in table.lines[rows]]
    dataset = FER2013(table.images[rows], lookup[table.emotion[rows]], split=split,
                      sources=sources, transform=transform, dropped=dict(dropped),
                      problems=problems.messages)
    #: Row index in the file (0-based, header excluded): aligns with FER+'s fer2013new.csv.
    dataset.rows = rows
    dataset.native_split = usage or ("Training" if not table.has_usage else "all")
    return dataset


def is_fer2013_file(path: Path) -> bool:
    """Whether ``path`` looks like a FER2013 CSV or cache (for format auto-detection)."""
    name = path.name.lower()
    if name.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                return "images" in data and "emotion" in data
        except (OSError, ValueError):
            return False
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        return False
    header = _first_line(path).lower()
    names = [c.strip().strip('"') for c in header.split(",")]
    return "emotion" in names and "pixels" in names


def _first_line(path: Path) -> str:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as f:
            return f.readline()
    except (OSError, EOFError):
        return ""


register_format(DatasetFormat("fer2013", open_fer2013, fer2013_splits, is_fer2013_file,
                              "FER2013 CSV (fer2013.csv, icml_face_data.csv, train.csv;"
                              " .gz) or .npz"))
