"""ASGI middlewares around the app: a log line per request, bounded request bodies, and the
``Host`` check against DNS rebinding.  They answer in raw ASGI
(:func:`~ferkit.serve.errors.send_error`), so they hold under any ASGI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferkit.serve.budget import ByteBudget
from ferkit.serve.errors import send_error

log = logging.getLogger("ferkit.serve")


class RequestLogMiddleware:
    """One log line per request with status and latency; adds ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %s %d %.1fms id=%s", client[0], scope["method"], scope["path"],
                     status, (time.perf_counter() - start) * 1000, request_id)


class RequestGuardMiddleware:
    """Bound each request body: 413 above ``max_bytes`` (announced or streamed), 408 when
    the whole body has not arrived ``body_timeout_s`` after the request head (however it
    is chunked: slow-upload attacks), 503 when bodies held in memory by all requests would
    exceed the shared ``budget`` (bodies are kept in memory, never in temporary files).

    The excess of a too-large body is read and dropped (up to a cap, within the deadline)
    rather than left on the socket, so the client gets the 413 instead of a reset.
    """

    _DRAIN_CAP = 64 * 1024 * 1024

    def __init__(self, app: ASGIApp, *, max_bytes: int, body_timeout_s: float,
                 budget: ByteBudget) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.budget = budget

    def _refusal(self, status: int) -> tuple[int, str, str]:
        if status == 413:
            return (413, "payload_too_large",
                    f"the request body is larger than the limit of {self.max_bytes} bytes")
        if status == 503:
            return (503, "overloaded", "the server holds too many request bodies right now; "
                                       "retry shortly")
        return (408, "request_timeout",
                f"the request body did not arrive within {self.body_timeout_s:g} s")

    @staticmethod
    async def _reply(send: Send, refusal: tuple[int, str, str]) -> None:
        status, code, message = refusal
        headers = [(b"connection", b"close")]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        await send_error(send, status, code, message, headers=headers)

    @staticmethod
    async def _receive_by(receive: Receive, deadline: float) -> Message:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise asyncio.TimeoutError
        return await asyncio.wait_for(receive(), remaining)

    async def _drain(self, receive: Receive, already: int, deadline: float) -> None:
        seen = already
        with contextlib.suppress(asyncio.TimeoutError):
            while seen < self._DRAIN_CAP:
                message = await self._receive_by(receive, deadline)
                if message["type"] != "http.request":
                    return
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive, 0, deadline)
            await self._reply(send, self._refusal(413))
            return
        received = 0
        held = 0
        body_done = False
        refusal: tuple[int, str, str] | None = None
        replied = False

        async def guarded_receive() -> Message:
            nonlocal received, held, body_done, refusal
            if body_done:  # e.g. a response listening for the client's disconnect
                return await receive()
            if refusal is not None:
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                message = await self._receive_by(receive, deadline)
            except asyncio.TimeoutError:  # not TimeoutError: distinct on Python 3.10
                refusal = self._refusal(408)
                return {"type": "http.request", "body": b"", "more_body": False}
            if message["type"] != "http.request":
                return message
            chunk = len(message.get("body", b""))
            received += chunk
            if received > self.max_bytes:
                refusal = self._refusal(413)
            elif not self.budget.try_take(chunk):
                refusal = self._refusal(503)
            else:
                held += chunk
                body_done = not message.get("more_body", False)
                return message
            if refusal[0] == 413 and message.get("more_body", False):
                await self._drain(receive, received, deadline)  # not for 503: no memory
            # The app sees a truncated body; its answer is replaced below.
            return {"type": "http.request", "body": b"", "more_body": False}

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if refusal is None:
                await send(message)
            elif not replied:
                replied = True
                await self._reply(send, refusal)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            self.budget.give_back(held)


class HostCheckMiddleware:
    """Answer 400 ``invalid_host`` unless the ``Host`` header names this server.

    Stops DNS-rebinding: a web page on evil.example whose name is made to resolve to
    127.0.0.1 would otherwise reach a loopback server from the victim's browser.
    ``allowed``: names without port; ``*.example.com`` matches subdomains, ``*`` anything.
    """

    def __init__(self, app: ASGIApp, *, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = [h.strip().lower().rstrip(".") for h in allowed]
        self.allow_all = "*" in self.allowed

    @staticmethod
    def host_name(host: str) -> str:
        """The name in a Host header, without port or IPv6 brackets, lower case."""
        host = host.strip().lower()
        if host.startswith("["):
            return host[1:host.find("]")] if "]" in host else host
        if host.count(":") == 1:
            host = host.partition(":")[0]
        return host.rstrip(".")

    def accepts(self, host: str) -> bool:
        name = self.host_name(host)
        return bool(name) and any(
            name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))
            for pattern in self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allow_all:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if self.accepts(host):
            await self.app(scope, receive, send)
            return
        await send_error(send, 400, "invalid_host", (
            f"this server does not answer to the host name {host[:100]!r}; it is set up "
            f"for {', '.join(self.allowed)} (ferkit serve --allowed-host NAME, or "
            f"FERKIT_SERVE_ALLOWED_HOSTS)"))
