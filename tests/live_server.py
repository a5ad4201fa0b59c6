"""A real uvicorn server on 127.0.0.1 (a free port) in a thread, for tests of ferkit.serve.

It runs with ferkit's own server setup (:func:`ferkit.serve.server.uvicorn_config`: the
guarded h11 protocol, header deadline, connection cap) and the app's settings.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def live_server(app: Any, *, startup_timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL ``http://127.0.0.1:PORT``."""
    import uvicorn

    from ferkit.serve import ServeSettings
    from ferkit.serve.server import uvicorn_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port: no race with other tests
    port = sock.getsockname()[1]
    settings = getattr(app.state, "settings", None) or ServeSettings()
    config = uvicorn_config(app, settings, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server exited during startup (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the test server did not start within {startup_timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
