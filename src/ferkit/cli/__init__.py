"""The ``ferkit`` command line: ``ferkit COMMAND [ARGS]``.

Each command group lives in its own module with a ``register(app)`` function and imports
heavy libraries inside its commands, so ``ferkit --help`` stays fast.  Errors a user can fix
(:class:`ferkit.errors.FerkitError`) print as one line and exit with status 2; set
``FERKIT_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import click
import typer

from ferkit.errors import FerkitError

# Newer typer parses with its own vendored copy of click, whose exceptions are not click's:
# catch both families, so a usage error never surfaces as a traceback.
try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # typer on the real click
    _TyperClickException = click.ClickException
_EXIT = (click.exceptions.Exit, typer.Exit)
_USAGE = (click.ClickException, _TyperClickException)
_ABORT = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="ferkit",
    help=(
        "Facial expression recognition with attention networks.\n\n"
        "Examples:\n\n"
        "  ferkit models list\n\n"
        "  ferkit predict photo.jpg\n\n"
        "  ferkit --version"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



def _print_version(value: bool) -> None:
    if value:
        from ferkit import __version__

        print(f"ferkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", "-V", is_eager=True, callback=_print_version,
        help="print ferkit's version and exit")] = False,
) -> None:
    # Options of `ferkit` itself (before the command); the commands are registered below.
    pass


# Modules that add commands to ``app``; each defines ``register(app: typer.Typer)``.
_COMMAND_MODULES = (
    "ferkit.cli.info",
    "ferkit.cli.export",
    "ferkit.cli.video",
    "ferkit.cli.data",
    "ferkit.cli.predict",
    "ferkit.cli.batch",
    "ferkit.cli.explain",
    "ferkit.cli.serve",
    "ferkit.cli.train",
    "ferkit.cli.evaluate",
)

for _module in _COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ferkit`` console script; returns the exit status."""
    debug = os.environ.get("FERKIT_DEBUG", "") not in ("", "0")
    try:
        result = app(args=argv, standalone_mode=False, prog_name="ferkit")
        return result if isinstance(result, int) else 0
    except FerkitError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except _EXIT as exc:
        return exc.exit_code
    except _USAGE as exc:
        exc.show()
        return exc.exit_code
    except _ABORT:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
