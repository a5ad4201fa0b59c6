"""Progress bars for long work, shown by the command line and silent everywhere else.

Library code marks its long loops with :func:`track` (or :func:`task` where there is no
loop to wrap); that costs nothing and shows nothing unless a caller opened
:func:`progress_display`, which every ``ferkit`` command that can run for more than a couple
of seconds does.  The display draws rich progress bars on stderr, and stays off with
``-q``/``--quiet`` or when stderr is not a terminal (a pipe, a file, CI), so redirected
output never carries bar fragments.

Example:
    >>> from ferkit.progress import progress_display, track
    >>> with progress_display(enabled=False):
    ...     sum(track(range(4), description="adding"))
    6
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class _Display:
    """The rich ``Progress`` of one :func:`progress_display` block, started at first use."""

    def __init__(self) -> None:
        self.progress: Any = None

    def add(self, description: str, total: float | None) -> int:
        if self.progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            # Printing to stdout goes above the bars only when stdout is the same terminal;
            # redirected stdout (--json > file) must not be rerouted to stderr.
            self.progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True, force_terminal=True), transient=True,
                redirect_stdout=_isatty(sys.stdout), redirect_stderr=False)
            self.progress.start()
        return self.progress.add_task(description, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


# None: no display was asked for (library use); a _Display: bars on; False: bars off.
_CURRENT: ContextVar[_Display | bool | None] = ContextVar("ferkit_progress", default=None)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def terminal() -> bool:
    """Whether stderr (where bars go) is an interactive terminal."""
    return _isatty(sys.stderr)


@contextlib.contextmanager
def progress_display(*, enabled: bool | None = None, quiet: bool = False) -> Iterator[bool]:
    """Show the progress of the work done in this block as bars on stderr.

    Args:
        enabled: force bars on or off; ``None`` (default) shows them when stderr is a
            terminal.
        quiet: no bars whatever ``enabled`` says (the commands' ``-q``).

    Yields whether bars are shown.
    """
    on = (terminal() if enabled is None else enabled) and not quiet
    display = _Display() if on else None
    token = _CURRENT.set(display if on else False)
    try:
        yield on
    finally:
        _CURRENT.reset(token)
        if display is not None:
            display.close()


def wanted(default: bool) -> bool:
    """Whether long work should show its own progress (e.g. Lightning's bar in training):
    what the enclosing :func:`progress_display` decided, else ``default`` when stderr is a
    terminal."""
    current = _CURRENT.get()
    if current is None:
        return default and terminal()
    return current is not False


@contextlib.contextmanager
def task(description: str, total: float | None = None) -> Iterator[Callable[[float], None]]:
    """A bar (or, with ``total=None``, a spinner) for the block; yields ``advance(n=1)``."""
    display = _CURRENT.get()
    if not isinstance(display, _Display):
        yield lambda n=1: None
        return
    task_id = display.add(description, total)
    try:
        yield lambda n=1: display.progress.advance(task_id, n)
    finally:
        display.progress.remove_task(task_id)


def track(iterable: Iterable[T], *, description: str, total: float | None = None,
          ) -> Iterator[T]:
    """Iterate ``iterable`` with a bar in the enclosing :func:`progress_display`, if any.

    ``total`` defaults to ``len(iterable)`` when it has one (else a spinner and a count).
    """
    if not isinstance(_CURRENT.get(), _Display):
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with task(description, total) as advance:
        for item in iterable:
            yield item
            advance(1)
