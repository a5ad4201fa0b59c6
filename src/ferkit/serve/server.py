"""The HTTP server under the app: uvicorn (h11) with connection-level guards it lacks.

uvicorn closes idle keep-alive connections and bounds header size (h11), but nothing else
on a connection's way in: a client may connect and never send a request, trickle its
headers one byte at a time, or open sockets until the process runs out of file
descriptors, after which every new connection fails and asyncio logs each failed
``accept()``.  :class:`GuardedH11Protocol` adds, per connection:

* a **header deadline**: the request head must be complete ``header_timeout_s`` after the
  connection opens or after the previous response, however the bytes trickle in;
* a **connection cap**: at ``max_connections`` a new connection displaces the one that has
  waited longest for a request head (idle or slowloris), or is refused when every
  connection is busy with a request, so descriptors never run out and clients that send
  requests are served while idle sockets pile up.

Body deadlines and sizes are the app's job
(:class:`ferkit.serve.middleware.RequestGuardMiddleware`), so they also hold under any other
ASGI server.

Examples:
    >>> from ferkit.serve import ServeSettings
    >>> config = uvicorn_config(object(), ServeSettings(max_connections=50))
    >>> config.http.max_connections, config.h11_max_incomplete_event_size
    (50, 16384)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

from ferkit.serve.settings import ServeSettings

log = logging.getLogger("ferkit.serve")

#: request heads larger than this (request line + headers) get 400 from h11
MAX_HEADER_BYTES = 16 * 1024
#: descriptors kept free for the model's files, logs and imports when capping connections
FD_RESERVE = 128
#: listen backlog; also how many connections asyncio accepts in one go, before the cap
#: sees any of them, so it is kept free of the cap as well
BACKLOG = 128


class _Throttled:
    """Log a repeated warning at most once per ``every_s`` seconds, with a count."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last = -float("inf")
        self._suppressed = 0

    def __call__(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        log.warning(message + extra, *args)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap.

    Configured by subclassing (:func:`guarded_protocol`): uvicorn builds one instance per
    connection with its own arguments only.
    """

    header_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 1000
    _cap_warning: ClassVar[_Throttled]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: loop time since which this connection waits for a request head; None while busy
        self.waiting_since: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._current_cycle: Any = None

    # --- connection lifecycle ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.waiting_since = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        # uvicorn starts a new request/response cycle once a request head is complete.
        if self.cycle is not None and self.cycle is not self._current_cycle:
            self._current_cycle = self.cycle
            self.waiting_since = None
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        # Armed before uvicorn looks at pipelined data, which may start the next request.
        if not self.transport.is_closing():
            self._await_request_head()
        super().on_response_complete()

    # --- header deadline ----------------------------------------------------------------

    def _await_request_head(self) -> None:
        self._cancel_head_timer()
        self.waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.waiting_since is not None:
            self._drop()

    def _drop(self) -> None:
        """Close now, without a response: the client has not sent a request to answer."""
        self._cancel_head_timer()
        self.waiting_since = None
        self.connections.discard(self)  # room for the next one before the loop gets to it
        if not self.transport.is_closing():
            self.transport.abort()

    # --- connection cap -----------------------------------------------------------------

    def _make_room(self) -> None:
        waiting = [c for c in self.connections
                   if c is not self and getattr(c, "waiting_since", None) is not None]
        if waiting:
            victim = min(waiting, key=lambda c: c.waiting_since)
            self._cap_warning("connection cap (%d) reached: closed the connection idle "
                              "longest (%.1f s without a request)", self.max_connections,
                              self.loop.time() - victim.waiting_since)
            victim._drop()
        else:
            self._cap_warning("connection cap (%d) reached and every connection is busy: "
                              "refused a new one", self.max_connections)
            self._drop()


def guarded_protocol(settings: ServeSettings, *,
                     max_connections: int | None = None) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass configured from ``settings``."""
    return type("FerkitH11Protocol", (GuardedH11Protocol,), {
        "header_timeout_s": settings.header_timeout_s,
        "max_connections": max_connections or settings.max_connections,
        "_cap_warning": _Throttled(),
    })


def open_file_limit() -> int | None:
    """This process's soft limit on open files, raised to the hard limit first (Unix)."""
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def connection_cap(settings: ServeSettings, file_limit: int | None) -> int:
    """``settings.max_connections``, lowered to fit under ``file_limit`` descriptors."""
    if file_limit is None:
        return settings.max_connections
    fits = max(16, file_limit - FD_RESERVE - BACKLOG)
    if fits < settings.max_connections:
        log.warning("max_connections %d lowered to %d to stay under this process's limit of "
                    "%d open files (raise it with `ulimit -n`)", settings.max_connections,
                    fits, file_limit)
    return min(settings.max_connections, fits)


class _AcceptErrorFilter(logging.Filter):
    """Lets one asyncio "accept() out of system resource" error through per 10 s."""

    def __init__(self) -> None:
        super().__init__()
        self._last = -float("inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if "socket.accept() out of system resource" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < 10.0:
            return False
        self._last = now
        record.exc_info = None  # the traceback says nothing the message does not
        record.msg = ("socket.accept() failed: too many open files; further reports "
                      "suppressed for 10 s")
        record.args = None
        return True


def quiet_accept_errors() -> None:
    """Stop asyncio from logging every failed ``accept()`` when descriptors run out."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _AcceptErrorFilter) for f in logger.filters):
        logger.addFilter(_AcceptErrorFilter())


def uvicorn_config(app: Any, settings: ServeSettings, *, max_connections: int | None = None,
                   **overrides: Any) -> Any:
    """The ``uvicorn.Config`` ferkit serves ``app`` with: guarded h11, ferkit's limits."""
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port,
        "http": guarded_protocol(settings, max_connections=max_connections),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "backlog": BACKLOG,
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": 10,
        "log_level": settings.log_level.lower(),
        "access_log": False,  # ferkit.serve logs each request with its latency
        "lifespan": "on",
    }
    return uvicorn.Config(app, **{**options, **overrides})
