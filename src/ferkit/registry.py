"""``Registry[T]``: the one idiom behind every name ferkit looks up.

Models, shipped weights, face detectors, dataset formats and losses are each a
``Registry`` of their own entry type.  A registry maps names to entries, refuses duplicate
names, imports the modules that fill it only when it is first read (``loaders``: so
``import ferkit`` stays fast and optional dependencies stay optional), and answers an
unknown name with one line naming close matches and what is available.

Example:
    >>> colours: Registry[int] = Registry("colour")
    >>> colours.register("red", 1)
    1
    >>> colours.get("red")
    1
    >>> colours.get("rad")
    Traceback (most recent call last):
    ...
    ferkit.errors.FerkitError: unknown colour 'rad'. Did you mean 'red'? Available: red.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ferkit.errors import FerkitError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> entries of one kind.

    Args:
        kind: what an entry is, for messages (``"model"``, ``"face detector"``).
        loaders: modules imported (once, in order) before the first lookup; importing them
            registers their entries.
        error: the :class:`~ferkit.errors.FerkitError` subclass raised for unknown names.
        hint: appended to the unknown-name message (e.g. ``"(`ferkit models list`)"``).
        hidden: entries left out of the unknown-name message's "Available" list (tiny
            test-only models); they are still found by name.
    """

    def __init__(self, kind: str, *, loaders: tuple[str, ...] = (),
                 error: type[FerkitError] = FerkitError, hint: str = "",
                 hidden: Callable[[T], bool] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._loaders = loaders
        self._loaded = not loaders
        self._error = error
        self._hint = hint
        self._hidden = hidden

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before importing: the modules call register()
            for module in self._loaders:
                importlib.import_module(module)

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` and return it; a name already taken is an error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, wrap: Callable[[Callable], T] | None = None
                  ) -> Callable[[Callable], Callable]:
        """``@registry.decorator(name)``: register the decorated callable (or
        ``wrap(callable)``) and hand the callable back unchanged."""

        def decorate(fn: Callable) -> Callable:
            self.register(name, wrap(fn) if wrap is not None else fn)  # type: ignore[arg-type]
            return fn

        return decorate

    def get(self, name: str) -> T:
        """The entry for ``name``; unknown names raise ``error`` with close matches."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        did_you_mean = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        hidden = self._hidden
        available = ", ".join(n for n in sorted(self._entries)
                              if hidden is None or not hidden(self._entries[n])) or "none"
        hint = f" {self._hint}" if self._hint else ""
        raise self._error(f"unknown {self.kind} {name!r}.{did_you_mean} "
                          f"Available: {available}.{hint}")

    def names(self, pattern: str | None = None,
              where: Callable[[T], bool] | None = None) -> list[str]:
        """Sorted names, filtered by a shell wildcard and/or a predicate on the entry."""
        self._load()
        return sorted(n for n, e in self._entries.items()
                      if (pattern is None or fnmatch.fnmatch(n, pattern))
                      and (where is None or where(e)))

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order."""
        self._load()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
