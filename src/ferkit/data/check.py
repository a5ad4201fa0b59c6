"""``check_dataset``: counts per split and class, and every problem found in a dataset.

Opens each split leniently (``strict=False``: malformed lines and unknown labels are
collected rather than raised), decodes every image file (optional), and compares content
digests across splits to count exact duplicates (FER2013 has 280 PublicTest and 288
PrivateTest images whose pixels also occur in Training).  ``ferkit data check`` prints it.

Example:
    >>> report = check_dataset("fer2013.csv.gz")                        # doctest: +SKIP
    >>> [s.summary.total for s in report.splits]                         # doctest: +SKIP
    [28709, 3589, 3589]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferkit.data.base import ArrayFERDataset, DatasetSummary, FERDataset
from ferkit.data.registry import detect_format, get_format
from ferkit.errors import DataError, FerkitError
from ferkit.labels import CANONICAL

#: How many individual problems a report lists per split before summarising.
MAX_LISTED = 20


@dataclass
class SplitReport:
    """One split: its class counts, what the adapter dropped, and the problems found."""

    summary: DatasetSummary
    native_name: str | None = None
    problems: list[str] = field(default_factory=list)
    unreadable: int = 0
    duplicates_within: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary.to_dict(), "native_name": self.native_name,
                "problems": self.problems, "unreadable": self.unreadable,
                "duplicates_within": self.duplicates_within}


@dataclass
class DataReport:
    """The result of :func:`check_dataset`."""

    source: str
    format: str
    name: str
    splits: list[SplitReport]
    #: ``"val/train": n``: images of the first split whose exact content occurs in the second.
    duplicates_across: dict[str, int]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing is malformed (duplicates alone are reported, not failures)."""
        return not self.problems and not any(s.problems for s in self.splits)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "name": self.name, "ok": self.ok,
                "splits": [s.to_dict() for s in self.splits],
                "duplicates_across": self.duplicates_across, "problems": self.problems}

    def format_human(self) -> str:
        classes = [c for c in CANONICAL if any(c in s.summary.per_class for s in self.splits)]
        lines = [f"{self.name} ({self.format}) at {self.source}", ""]
        header = f"{'split':<22}{'total':>8}" + "".join(f"{c:>10}" for c in classes)
        lines.append(header)
        for split in self.splits:
            label = split.summary.split
            if split.native_name and split.native_name != label:
                label = f"{label} ({split.native_name})"
            row = f"{label:<22}{split.summary.total:>8,}"
            row += "".join(f"{split.summary.per_class.get(c, 0):>10,}" for c in classes)
            lines.append(row)
        dropped = [(s.summary.split, s.summary.dropped) for s in self.splits if s.summary.dropped]
        if dropped:
            lines += ["", "Left out by the adapter's rules:"]
            for split_name, reasons in dropped:
                lines += [f"  {split_name}: {reason}: {n:,}" for reason, n in reasons.items()]
        lines += ["", "Duplicates (identical content):"]
        within = [(s.summary.split, s.duplicates_within) for s in self.splits
                  if s.duplicates_within]
        if not self.duplicates_across and not within:
            lines.append("  none")
        lines += [f"  {pair.replace('/', ' also in ')}: {n:,}"
                  for pair, n in self.duplicates_across.items()]
        lines += [f"  {name}: {n:,} repeated within the split" for name, n in within]
        problems = list(self.problems)
        for split in self.splits:
            problems += split.problems
        lines += ["", f"Problems: {len(problems) or 'none'}"]
        lines += [f"  {p}" for p in problems]
        return "\n".join(lines)


def _native_split(dataset: FERDataset) -> str | None:
    return getattr(dataset, "native_split", None)


def check_dataset(
    source: str | Path,
    *,
    format: str | None = None,
    splits: list[str] | None = None,
    verify_images: bool = True,
    **options: Any,
) -> DataReport:
    """Open every split of ``source`` and report counts, duplicates and problems.

    Args:
        format: dataset format (``None``: detect from the path).
        splits: splits to check (default: all the format finds).
        verify_images: decode every image file to find unreadable ones (arrays skip this).
        **options: adapter options, as for :func:`ferkit.data.open_dataset`.
    """
    path = Path(source)
    fmt = get_format(format if format is not None else detect_format(path))
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist")
    options.pop("strict", None)  # check always opens leniently, to list every problem
    fmt.check_options(options)
    split_names = list(splits) if splits else list(fmt.splits(path, **options))
    if not split_names:
        raise DataError(f"{path}: no splits found for format {fmt.name!r}")
    reports: list[SplitReport] = []
    digests: dict[str, list[bytes]] = {}
    problems: list[str] = []
    name = fmt.name
    for split in split_names:
        try:
            dataset = fmt.open(path, split=split, strict=False, **options)
        except FerkitError as exc:
            problems.append(f"split {split}: {exc}")
            continue
        name = dataset.name
        report = SplitReport(dataset.summary(), _native_split(dataset),
                             problems=list(dataset.problems))
        seen: set[bytes] = set()
        ordered: list[bytes] = []
        for index in range(len(dataset)):
            if verify_images and not isinstance(dataset, ArrayFERDataset):
                try:
                    dataset.load_image(index)
                except FerkitError as exc:
                    report.unreadable += 1
                    if report.unreadable <= MAX_LISTED:
                        report.problems.append(str(exc))
                    continue
            try:
                digest = dataset.fingerprint(index)
            except FerkitError:
                continue
            if digest in seen:
                report.duplicates_within += 1
            seen.add(digest)
            ordered.append(digest)
        if report.unreadable > MAX_LISTED:
            report.problems.append(f"split {split}: {report.unreadable} unreadable images in all")
        digests[split] = ordered
        reports.append(report)
    duplicates: dict[str, int] = {}
    names = list(digests)
    for i, later in enumerate(names):
        for earlier in names[:i]:
            earlier_set = set(digests[earlier])
            count = sum(d in earlier_set for d in digests[later])
            if count:
                duplicates[f"{later}/{earlier}"] = count
    return DataReport(str(path), fmt.name, name, reports, duplicates, problems)
