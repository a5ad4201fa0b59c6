"""Which inputs a batch job reads, and reading their bytes wherever they live.

An input argument is one of:

* a local file, folder (searched recursively) or glob, as for ``ferkit predict``
  (:func:`ferkit.inference.files.find_images`);
* a list file: ``.txt`` (one path or URI per line; blank lines and ``#`` comments skipped) or
  ``.parquet`` (a ``source``, ``path`` or ``uri`` column);
* a URI that pyarrow's filesystems understand (``s3://bucket/key.jpg``, ``gs://…``,
  ``hdfs://…``, ``file:///…``): a single object, or a prefix ending in ``/`` that is listed
  recursively for files with an image (or, for videos, video) extension.

Every input is named by a string (its path or URI); that string is the ``source`` column of
the results and the key that resume uses.

Example:
    >>> from ferkit.batch.sources import is_uri
    >>> is_uri("s3://bucket/a.jpg"), is_uri("photos/a.jpg")
    (True, False)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from ferkit.errors import FerkitError, InputError
from ferkit.inference.files import IMAGE_EXTENSIONS, find_images

#: Extensions picked up when listing folders or prefixes for ``ferkit batch --video``.
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg",
                              ".mpeg", ".wmv"})

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")
_LIST_COLUMNS = ("source", "path", "uri")


def is_uri(text: str) -> bool:
    """True for ``scheme://…`` (object storage, HDFS, ``file://``), False for plain paths."""
    return bool(_URI.match(text))


def list_sources(arguments: Iterable[str | Path], *,
                 video: bool = False) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand ``arguments`` into input names, in a stable order without duplicates.

    Returns ``(sources, problems)``; ``problems`` lists ``(argument, message)`` for
    arguments that gave nothing (as :func:`~ferkit.inference.files.find_images` does).
    """
    extensions = VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS
    sources: list[str] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            sources.append(name)

    for raw in arguments:
        arg = str(raw)
        if is_uri(arg):
            found = _list_uri(arg, extensions)
            if not found:
                problems.append((arg, f"{arg} holds no files with "
                                      f"{'a video' if video else 'an image'} extension"))
        elif arg.lower().endswith((".txt", ".parquet")) and Path(arg).is_file():
            found = _read_list(Path(arg))
            if not found:
                problems.append((arg, f"list file {arg} names no inputs"))
        else:
            found, missing = _find_local(arg, video, extensions)
            problems += missing
        for name in found:
            add(name)
    return sources, problems


def read_bytes(source: str) -> bytes:
    """The bytes of a local path or a pyarrow-filesystem URI; :class:`InputError` if unreadable."""
    try:
        if not is_uri(source):
            return Path(source).read_bytes()
        filesystem, path = _filesystem(source)
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    except FileNotFoundError as exc:
        raise InputError(f"{source} does not exist") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{source} is a folder, not an image") from exc
    except OSError as exc:  # permissions, network, object store errors (pyarrow raises OSError)
        raise InputError(f"cannot read {source}: {exc}") from exc


def local_copy(source: str, folder: Path) -> Path:
    """A local path for ``source``: itself when local, else a copy downloaded into ``folder``
    (OpenCV reads videos from files only)."""
    if not is_uri(source):
        return Path(source)
    target = folder / Path(source.rstrip("/")).name
    target.write_bytes(read_bytes(source))
    return target


def _find_local(path: str, video: bool,
                extensions: frozenset[str]) -> tuple[list[str], list[tuple[str, str]]]:
    if not video:
        found = find_images([path])
        return [str(f) for f in found.files], found.problems + found.skipped
    candidate = Path(path)
    if candidate.is_file():
        return [path], []
    if candidate.is_dir():
        found = sorted(str(p) for p in candidate.rglob("*")
                       if p.suffix.lower() in extensions and p.is_file())
        return found, [] if found else [(path, f"{path} is a folder with no video files")]
    if set("*?[") & set(path):
        import glob

        found = sorted(p for p in glob.glob(path, recursive=True) if Path(p).is_file())
        return found, [] if found else [(path, f"pattern {path} matched no file")]
    return [], [(path, f"{path} does not exist")]


def _read_list(path: Path) -> list[str]:
    if path.suffix.lower() == ".txt":
        lines = (line.strip() for line in path.read_text().splitlines())
        return [line for line in lines if line and not line.startswith("#")]
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet vary
        raise FerkitError(f"cannot read the list {path} as Parquet: {exc}") from exc
    column = next((c for c in _LIST_COLUMNS if c in schema.names), None)
    if column is None:
        raise FerkitError(f"list {path} needs a column named one of {', '.join(_LIST_COLUMNS)}; "
                          f"it has {', '.join(schema.names)}")
    values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    return [str(v) for v in values if v]


def _list_uri(uri: str, extensions: frozenset[str]) -> list[str]:
    if not uri.endswith("/"):
        return [uri]
    import pyarrow.fs as pafs

    try:
        filesystem, path = _filesystem(uri)
        infos = filesystem.get_file_info(pafs.FileSelector(path.rstrip("/"), recursive=True))
    except (InputError, OSError) as exc:
        raise FerkitError(f"cannot list {uri}: {exc}") from exc
    scheme, rest = uri.split("://", 1)
    prefix = f"{scheme}://" if scheme in _BUCKET_SCHEMES else f"{scheme}://{rest.split('/')[0]}"
    return sorted(prefix + info.path for info in infos
                  if info.type == pafs.FileType.File
                  and Path(info.path).suffix.lower() in extensions)


#: Schemes whose pyarrow paths are ``bucket/key`` (the URI without its scheme).
_BUCKET_SCHEMES = frozenset({"s3", "gs", "gcs", "abfs", "abfss", "az"})


@functools.lru_cache(maxsize=16)
def _filesystem_for(scheme_and_host: str):
    import pyarrow.fs as pafs

    filesystem, _ = pafs.FileSystem.from_uri(scheme_and_host + "/")
    return filesystem


def _filesystem(uri: str):
    """``(pyarrow filesystem, path inside it)``; one filesystem object per bucket and process
    (creating an S3 client per file would cost a region lookup per file)."""
    scheme, rest = uri.split("://", 1)
    host, _, key = rest.partition("/")
    try:
        filesystem = _filesystem_for(f"{scheme}://{host}")
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"cannot open {uri}: {exc} (is this filesystem supported by the "
                         "installed pyarrow, and are its credentials set?)") from exc
    return filesystem, rest if scheme in _BUCKET_SCHEMES else "/" + key
