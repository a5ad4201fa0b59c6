"""Options shared by the command modules: one declaration each, so every command spells,
defaults and explains them the same way, plus the checks they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from ferkit.devices import DEVICE_HELP
from ferkit.errors import FerkitError

DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="'default' (the shipped model), a model name from `ferkit models "
    "list`, or a checkpoint directory")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="torch; onnx (ONNX Runtime: exports the model once into ~/.cache/ferkit); "
    "or auto (on CPU: times both once per set of weights and keeps the faster, worth it for "
    "big folders and videos)")]

#: ``-q``: no progress bars (they are also off when stderr is not a terminal).
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]


def check_choice(value: str, choices: Sequence[str] = ("human", "json", "quiet"), *,
                 option: str = "--format") -> str:
    """``value`` if it is one of ``choices``, else a one-line error naming the option."""
    if value not in choices:
        allowed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 \
            else choices[0]
        raise FerkitError(f"{option} must be {allowed}, not {value!r}")
    return value
