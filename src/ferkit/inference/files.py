"""Turning command-line arguments (files, folders, globs) into a list of image files.

Example:
    >>> from ferkit.inference.files import find_images
    >>> found, problems = find_images(["no/such/file.jpg"])
    >>> found, problems
    ([], [('no/such/file.jpg', 'no/such/file.jpg does not exist')])
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

#: Extensions picked up when scanning folders (explicitly named files are always tried).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff",
                              ".webp", ".ppm", ".pgm", ".pbm"})

_GLOB_CHARS = set("*?[")


def find_images(arguments: Iterable[str | Path], *,
                recursive: bool = True) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand ``arguments`` into image files, in a stable order without duplicates.

    * a file is taken as it is (whatever its extension: reading it says if it is no image);
    * a folder gives the image files under it (all levels with ``recursive``), sorted;
    * a pattern with ``*``, ``?`` or ``[`` is expanded (``**`` crosses folders).

    Returns ``(files, problems)``; ``problems`` lists ``(argument, message)`` for arguments
    that gave nothing (missing path, pattern matching no file, folder without images).
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in arguments:
        arg = str(raw)
        path = Path(arg)
        if path.is_file():
            add(path)
        elif path.is_dir():
            found = _scan_folder(path, recursive)
            if not found:
                problems.append((arg, f"{arg} is a folder with no image files "
                                      f"({', '.join(sorted(IMAGE_EXTENSIONS)[:5])}, …)"))
            for p in found:
                add(p)
        elif _GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            found = []
            for m in map(Path, matches):
                if m.is_dir():
                    found += _scan_folder(m, recursive)
                elif m.is_file():
                    found.append(m)
            if not found:
                problems.append((arg, f"pattern {arg} matched no file"))
            for p in found:
                add(p)
        else:
            problems.append((arg, f"{arg} does not exist"))
    return files, problems


def _scan_folder(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
