"""The results folder of a batch job: Parquet part files written atomically, and resume.

``OUT/part-<uuid>.parquet`` files each hold whole inputs: every row of an input lands in the
same file (:class:`PartWriter` holds back an input until all its ``source_rows`` rows have
arrived).  A part appears under its final name only once complete (written to a hidden
temporary and renamed by :func:`ferkit.atomic.atomic_path`; object stores publish an object
only when its upload completes), so a job killed at any moment leaves whole inputs or nothing, and
:func:`completed_sources` tells a re-run which inputs to skip: no input is lost and none is
written twice.

Read the results with any Parquet reader: ``pandas.read_parquet(OUT)``,
``ray.data.read_parquet(OUT)``, ``duckdb "SELECT … FROM 'OUT/*.parquet'"`` (files whose name
starts with ``.`` are ignored by all of them).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from ferkit.batch.sources import is_uri
from ferkit.errors import FerkitError

if TYPE_CHECKING:
    import pyarrow as pa

PART_GLOB = "part-*.parquet"


def _local(out: str) -> Path | None:
    if out.startswith("file://"):
        return Path(out[len("file://"):])
    return None if is_uri(out) else Path(out)


def _filesystem(out: str):
    from ferkit.batch.sources import _filesystem as filesystem_of

    return filesystem_of(out.rstrip("/") + "/")


def list_parts(out: str) -> list[str]:
    """The finished part files in ``out`` (paths or URIs), sorted."""
    local = _local(out)
    if local is not None:
        return sorted(str(p) for p in local.glob(PART_GLOB)) if local.is_dir() else []
    import pyarrow.fs as pafs

    filesystem, path = _filesystem(out)
    infos = filesystem.get_file_info(pafs.FileSelector(path.rstrip("/"), allow_not_found=True))
    names = [i.path for i in infos if i.type == pafs.FileType.File
             and i.base_name.startswith("part-") and i.base_name.endswith(".parquet")]
    return sorted(f"{out.rstrip('/')}/{Path(n).name}" for n in names)


def completed_sources(out: str, *, model_version: str | None = None) -> set[str]:
    """Inputs that already have rows in ``out`` (a re-run skips them).

    Raises:
        FerkitError: ``out`` holds results of another model version (mixing them would
            make one table with two models' probabilities), or a part cannot be read.
    """
    done: set[str] = set()
    for part in list_parts(out):
        try:
            table = _read(part, columns=["source", "model", "model_version"])
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise FerkitError(f"cannot read the results file {part} ({exc}); move it away "
                              "and run again (its inputs will be redone)") from exc
        if model_version is not None:
            versions = set(table.column("model_version").to_pylist())
            if versions - {model_version}:
                other = table.column("model").to_pylist()[0]
                raise FerkitError(
                    f"{out} holds results of model {other} version {sorted(versions)[0]}, not "
                    f"of this model (version {model_version}); write to another --out")
        done.update(table.column("source").to_pylist())
    return done


def _read(part: str, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    local = _local(part)
    if local is not None:
        return pq.read_table(local, columns=columns)
    filesystem, path = _filesystem(part)
    return pq.read_table(path, columns=columns, filesystem=filesystem)


def remove_partial(out: str) -> int:
    """Delete leftovers of a killed run (``.part-*.tmp*``) from a local ``out``; their count."""
    local = _local(out)
    if local is None or not local.is_dir():
        return 0
    leftovers = list(local.glob(".part-*.tmp*"))  # ferkit.atomic's temporaries
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


class PartWriter:
    """Buffers result rows and writes them as part files of whole inputs.

    A part is written when ``rows_per_part`` rows of complete inputs are waiting or
    ``seconds_per_part`` have passed since the last one (so a kill loses at most that much
    work), and by :meth:`close`.
    """

    def __init__(self, out: str, *, rows_per_part: int = 20_000,
                 seconds_per_part: float = 30.0) -> None:
        self.out = out.rstrip("/") if is_uri(out) else out
        self.rows_per_part = rows_per_part
        self.seconds_per_part = seconds_per_part
        self.parts: list[str] = []
        self.rows_written = 0
        self.sources_written = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._last = time.monotonic()
        local = _local(out)
        if local is not None:
            try:
                local.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FerkitError(f"cannot create the results folder {local}: "
                                  f"{exc.strerror or exc}") from exc

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
        if (self._pending_rows >= self.rows_per_part
                or time.monotonic() - self._last >= self.seconds_per_part):
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._last = time.monotonic()
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        sources = table.column("source").to_pylist()
        expected = dict(zip(sources, table.column("source_rows").to_pylist(), strict=True))
        seen = Counter(sources)
        complete = {s for s, n in seen.items() if n >= expected[s]}
        if final:
            complete = set(seen)
        mask = pc.is_in(table.column("source"), value_set=pa.array(sorted(complete), pa.string()))
        ready, held = table.filter(mask), table.filter(pc.invert(mask))
        self._pending = [held] if held.num_rows else []
        self._pending_rows = held.num_rows
        if ready.num_rows:
            self._write(ready)
            self.sources_written += len(complete)

    def close(self) -> None:
        self.flush(final=True)

    def _write(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        name = f"part-{uuid.uuid4().hex}.parquet"
        local = _local(self.out)
        if local is not None:
            from ferkit.atomic import atomic_path

            with atomic_path(local / name) as tmp:  # readers see all of it or nothing
                pq.write_table(table, tmp)
            self.parts.append(str(local / name))
        else:
            filesystem, path = _filesystem(self.out)
            pq.write_table(table, f"{path.rstrip('/')}/{name}", filesystem=filesystem)
            self.parts.append(f"{self.out}/{name}")
        self.rows_written += table.num_rows
