"""HTTP service and web page for ferkit (``ferkit serve``).

Examples:
    Serve the default model on http://127.0.0.1:8000 (the web page is at ``/``)::

        from ferkit.serve import ServeSettings, run_server
        run_server(ServeSettings(model="default", port=8000))

    Or mount the app in your own ASGI server::

        from ferkit.serve import create_app
        app = create_app("default")
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from ferkit.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "run_server"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`ferkit.serve.app.create_app` (imported lazily: FastAPI is an extra)."""
    from ferkit.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)


def run_server(settings: ServeSettings | None = None, *,
               sock: socket.socket | None = None) -> None:
    """Serve ``settings.model`` with uvicorn until interrupted (Ctrl-C).

    ``sock``: an already bound socket to serve on instead of ``settings.host:port``.
    The process's open-file limit is raised to its hard limit and the connection cap kept
    below it, so idle sockets can never exhaust the descriptors.
    """
    import uvicorn

    from ferkit.errors import FerkitError

    settings = settings or ServeSettings.from_env()
    level = settings.log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise FerkitError(f"log level {settings.log_level!r} is not one of debug, info, "
                          "warning, error, critical")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ferkit.serve").setLevel(level)
    from pathlib import PurePath

    from ferkit.serve.loading import load_recognizer
    from ferkit.serve.server import (
        connection_cap,
        open_file_limit,
        quiet_accept_errors,
        uvicorn_config,
    )

    # Load before uvicorn starts so a bad --model is a one-line error, not a lifespan trace.
    recognizer = load_recognizer(settings.model, settings)
    app = create_app(lambda: recognizer, settings=settings,
                     model_name=PurePath(settings.model).name or settings.model)
    quiet_accept_errors()
    config = uvicorn_config(app, settings,
                            max_connections=connection_cap(settings, open_file_limit()))
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
