"""Turning command-line arguments (files, folders, globs) into a list of image files.

Folders and ``**`` patterns are walked by ferkit itself, not by :mod:`glob`, so that:

* a link to a folder is followed once: a link back to a folder already walked (a loop, or
  the same folder reached twice) is reported and not entered, so a symlink loop ends at
  once instead of expanding forever;
* what is passed over is reported in ``skipped`` (links that go nowhere or loop, named
  pipes, sockets and devices, unreadable folders) rather than dropped silently;
* files larger than ``max_bytes`` are refused (a ``problem``) before anything reads them
  (``ferkit predict --max-file-size`` raises the limit).

Hidden files and folders (names starting with ``.``) are left out of folder scans, as
shells do.  :func:`printable` escapes control characters in names before they are shown.

Example:
    >>> from ferkit.inference.files import find_images
    >>> found = find_images(["no/such/file.jpg"])
    >>> found.files, found.problems
    ([], [('no/such/file.jpg', 'no/such/file.jpg does not exist')])
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

#: Extensions picked up when scanning folders (explicitly named files are always tried).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff",
                              ".webp", ".ppm", ".pgm", ".pbm"})
#: Files above this size are refused unless the caller raises it (a 48 MP PNG is ~100 MB).
DEFAULT_MAX_BYTES = 200 * 2**20

_GLOB_CHARS = set("*?[")
#: Unicode categories escaped by printable(): controls, formatting (bidi overrides), line
#: and paragraph separators, surrogates (undecodable bytes), private use, unassigned.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


class FoundImages(NamedTuple):
    """What :func:`find_images` found: ``files`` to read, ``problems`` (arguments that gave
    nothing, files refused; each ``(argument, message)``) and ``skipped`` entries met while
    walking folders (``(path, why)``)."""

    files: list[Path]
    problems: list[tuple[str, str]]
    skipped: list[tuple[str, str]]


def find_images(arguments: Iterable[str | Path], *, recursive: bool = True,
                max_bytes: int | None = DEFAULT_MAX_BYTES) -> FoundImages:
    """Expand ``arguments`` into image files, in a stable order without duplicates.

    * a file is taken as it is (whatever its extension: reading it says if it is no image);
    * a folder gives the image files under it (all levels with ``recursive``), sorted;
    * a pattern with ``*``, ``?`` or ``[`` is expanded (``**`` crosses folders).

    ``max_bytes``: larger files become problems (``None``: no limit).
    """
    found = FoundImages([], [], [])
    seen: set[Path] = set()

    def add(path: Path, argument: str) -> None:
        try:
            info = path.stat()
        except OSError as exc:
            found.problems.append((argument, f"cannot read {path}: {exc.strerror or exc}"))
            return
        if not stat.S_ISREG(info.st_mode):
            found.problems.append((argument, f"{path} is {_kind(info.st_mode)}, not an image "
                                             "file"))
            return
        if max_bytes is not None and info.st_size > max_bytes:
            found.problems.append((argument, f"{path} is {_size(info.st_size)}, over the "
                                             f"{_size(max_bytes)} limit for one image; raise "
                                             "it with --max-file-size"))
            return
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.files.append(path)

    for raw in arguments:
        arg = str(raw)
        path = Path(arg)
        if path.is_dir():
            images = sorted(_images(_walk(path, recursive, found.skipped)))
            if not images:
                found.problems.append((arg, f"{arg} is a folder with no image files "
                                            f"({', '.join(sorted(IMAGE_EXTENSIONS)[:5])}, …)"))
            for p in images:
                add(p, arg)
        elif os.path.lexists(arg):
            add(path, arg)  # a file, or a pipe/device/broken link that add() reports
        elif _GLOB_CHARS & set(arg):
            matches = _expand(arg, recursive, found.skipped)
            if not matches:
                found.problems.append((arg, f"pattern {arg} matched no file"))
            for p in matches:
                add(p, arg)
        else:
            found.problems.append((arg, f"{arg} does not exist"))
    return found


def printable(text: str) -> str:
    r"""``text`` with control and bidi-formatting characters escaped (``\x1b``, ``\n``,
    ``\u202e``), so a file name cannot move the cursor, recolour or reorder a terminal.

    Example:
        >>> printable("evil\x1b[2J\nname.jpg")
        'evil\\x1b[2J\\nname.jpg'
    """
    if text.isprintable():
        return text
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in _UNSAFE else ch
                   for ch in text)


def _walk(root: Path, recursive: bool, skipped: list[tuple[str, str]]) -> Iterator[Path]:
    """Regular files under ``root`` (sorted, depth-first), entering every real folder once."""
    visited: set[tuple[int, int]] = set()
    try:
        info = root.stat()
        visited.add((info.st_dev, info.st_ino))
    except OSError as exc:
        skipped.append((str(root), f"cannot read the folder: {exc.strerror or exc}"))
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append((str(folder), f"cannot read the folder: {exc.strerror or exc}"))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                info = os.stat(entry.path)  # follows links; ELOOP/ENOENT for bad ones
            except OSError as exc:
                skipped.append((str(path), "a link that loops" if _is_loop(exc) else
                                "a link to nothing" if entry.is_symlink() else
                                f"unreadable: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(info.st_mode):
                if not recursive:
                    continue
                key = (info.st_dev, info.st_ino)
                if key in visited:
                    skipped.append((str(path), "a link to a folder already searched (a "
                                               "loop?): not entered again"))
                    continue
                visited.add(key)
                subfolders.append(path)
            elif stat.S_ISREG(info.st_mode):
                yield path
            else:
                skipped.append((str(path), f"{_kind(info.st_mode)}, not a file"))
        stack.extend(reversed(subfolders))


def _images(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS]


def _expand(pattern: str, recursive: bool, skipped: list[tuple[str, str]]) -> list[Path]:
    """Files matching a glob ``pattern`` (``**`` = any folders); matched folders give
    their images.  Walks from the pattern's fixed prefix with :func:`_walk`."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    wanted = parts[fixed:]
    if not root.is_dir():
        return []
    files: list[Path] = []
    for path in _walk(root, True, skipped):
        rel = path.relative_to(root).parts
        # The file itself matches, or (for images) a folder above it does: the pattern
        # named that folder, whose images it gives as a folder argument would.
        above = range(1, len(rel)) if recursive else range(len(rel) - 1, len(rel))
        if _match(rel, wanted) or (path.suffix.lower() in IMAGE_EXTENSIONS and any(
                _match(rel[:depth], wanted) for depth in above if depth > 0)):
            files.append(path)
    return sorted(files)


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """``parts`` (path segments) against glob segments, ``**`` spanning 0+ segments; ``*``
    does not match hidden names, as in shells."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1)
                   if not any(p.startswith(".") for p in parts[:i]))
    if not parts:
        return False
    name = parts[0]
    if name.startswith(".") and not head.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, head) and _match(parts[1:], rest)


def _is_loop(exc: OSError) -> bool:
    return exc.errno == errno.ELOOP


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"
