"""Option checks shared by the command modules."""

from __future__ import annotations

from collections.abc import Sequence

from ferkit.errors import FerkitError


def check_choice(value: str, choices: Sequence[str] = ("human", "json", "quiet"), *,
                 option: str = "--format") -> str:
    """``value`` if it is one of ``choices``, else a one-line error naming the option."""
    if value not in choices:
        allowed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 \
            else choices[0]
        raise FerkitError(f"{option} must be {allowed}, not {value!r}")
    return value
