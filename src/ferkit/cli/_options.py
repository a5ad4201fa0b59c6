"""Options shared by the command modules: one declaration each, so every command spells,
defaults and explains them the same way, plus the checks they share."""

from __future__ import annotations

import copy
import typing
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from ferkit.devices import DEVICE_HELP
from ferkit.errors import FerkitError

DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="'default' (the shipped model), a model name from `ferkit models "
    "list`, a checkpoint directory, or an .onnx file from `ferkit export` (runs on ONNX "
    "Runtime)")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="torch; onnx (ONNX Runtime: exports the model once into ~/.cache/ferkit); "
    "or auto (on CPU: times both once per set of weights and keeps the faster, worth it for "
    "big folders and videos)")]
DetectorOpt = Annotated[str, typer.Option(
    "--detector", help="face detector: retinaface, yunet or haar")]

# The label-list dataset form (as DSAN's train.py): a folder and 'path label' list files.
DataDirOpt = Annotated[str | None, typer.Option(
    "--data-dir", help="label-list form: folder the listed image paths are relative to (as "
    "DSAN's train.py --data_dir)")]
TrainLabelOpt = Annotated[str | None, typer.Option(
    "--train-label", help="label-list form: 'path label' file for training")]
ValLabelOpt = Annotated[str | None, typer.Option(
    "--val-label", help="label-list form: 'path label' file for validation")]

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


def unset_by_default(option: Any, *, default: str) -> Any:
    """``option`` (one of the ``...Opt`` above) taking ``None`` for "not given", with
    ``default`` said in its help: for a command whose real defaults are resolved later
    (``ferkit serve`` merges FERKIT_SERVE_* environment settings under its options)."""
    base, info, *rest = typing.get_args(option)
    info = copy.copy(info)
    info.help = f"{info.help} (default {default})"
    return Annotated[(base | None, info, *rest)]
