"""Atomic file writes: every file ferkit writes appears whole or not at all.

A file is written to a temporary beside its target (same folder, so the same file system),
flushed to disk, and renamed over the target, which POSIX and Windows do in one step.  A
full disk, a kill or a crash mid-write leaves the previous file (or none), never half a
``.npz`` that a later ``ferkit data check`` trips over; the temporary is removed on any
error.  Operating-system failures (no space, no permission, a read-only or missing folder)
become one-line :class:`~ferkit.errors.FerkitError` s that say what to do.

Every writer takes a path, so one context manager serves them all::

    with atomic_path("report.png") as tmp:      # tmp keeps the suffix: formats still infer
        fig.savefig(tmp)
    with atomic_open("faces.csv", "w", newline="") as fh:
        csv.writer(fh).writerow(...)
    write_text("recipe.yaml", text)

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_text(folder / "a.txt", "hello").read_text()
    'hello'
    >>> sorted(p.name for p in folder.iterdir())   # no temporaries left behind
    ['a.txt']
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ferkit.errors import FerkitError

_HINTS = {
    errno.ENOSPC: "free some disk space or write elsewhere",
    errno.EDQUOT: "free some space (disk quota exceeded) or write elsewhere",
    errno.EACCES: "choose a folder you can write to",
    errno.EPERM: "choose a folder you can write to",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOENT: "check that the folder exists",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "that path is a folder: give a file name",
    errno.ENAMETOOLONG: "use a shorter name",
}


def os_error_message(exc: OSError, path: str | Path, action: str = "write") -> str:
    """``cannot write PATH: No space left on device; free some disk space …`` (one line)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno or -1)
    return f"cannot {action} {path}: {reason}" + (f"; {hint}" if hint else "")


def make_dirs(folder: str | Path) -> Path:
    """``mkdir -p`` with a one-line :class:`FerkitError` instead of an ``OSError``."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerkitError(os_error_message(exc, folder, "create the folder")) from None
    return folder


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path to write ``target`` through; renamed onto ``target`` on success.

    The temporary sits in the target's folder (created if missing), is hidden
    (``.NAME.RANDOM.tmpSUFFIX``) and keeps the target's suffix, so writers that infer the
    format from it (matplotlib, PIL, numpy) behave the same.  An ``OSError`` inside the block
    or while renaming becomes a one-line :class:`FerkitError`; any error removes the
    temporary and leaves an existing ``target`` untouched.
    """
    target = Path(target)
    make_dirs(target.parent)
    tmp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise FerkitError(os_error_message(exc, target)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(target, mode)`` that only replaces ``target`` when the block completes."""
    if not mode.startswith(("w", "x")):
        raise ValueError(f"atomic_open writes new files; mode {mode!r} is not 'w…'")
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(target: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically; returns ``target`` as a Path."""
    with atomic_open(target, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target`` as a Path."""
    with atomic_open(target, "wb") as fh:
        fh.write(data)
    return Path(target)


def _fsync(path: Path) -> None:
    # Flush the data before the rename publishes it: after a power cut the new name must
    # not point at an empty file.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
