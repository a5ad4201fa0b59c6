"""How the service answers errors: always a JSON body ``{"error": code, "message": text}``,
never a stack trace or a server path.

:class:`ApiError` is raised anywhere in the service with its status and code;
:func:`install_error_handlers` turns it, ferkit's own errors, validation errors, 404/405 and
anything unexpected into that body.  The middlewares answer below FastAPI, in raw ASGI,
with :func:`send_error`.

FastAPI is imported inside :func:`install_error_handlers` only: :mod:`ferkit.serve.images`
(used by the Streamlit app, which runs without the ``serve`` extra) raises :class:`ApiError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import Send

log = logging.getLogger("ferkit.serve")


class ApiError(Exception):
    """An error answered to the client as ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str, *,
                 retry_after: int | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        #: seconds for the ``Retry-After`` header of a 503 (default 1)
        self.retry_after = retry_after


async def send_error(send: Send, status: int, code: str, message: str, *,
                     headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with the error body straight through ASGI ``send`` (for middlewares)."""
    body = json.dumps({"error": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: Any) -> None:
    """Register the error answers on a FastAPI ``app``."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from ferkit.errors import FerkitError

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after or 1)} if exc.status == 503 else None
        return JSONResponse({"error": exc.code, "message": exc.message},
                            status_code=exc.status, headers=headers)

    @app.exception_handler(FerkitError)
    async def ferkit_error(request: Request, exc: FerkitError) -> JSONResponse:
        return JSONResponse({"error": "invalid_input", "message": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body echoes the input back; say only where and what.
        parts = [f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
                 for err in exc.errors()]
        return JSONResponse({"error": "invalid_request", "message": "; ".join(parts)},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = request.scope.get("state", {}).get("request_id", "-")
        log.exception("internal error in %s (id=%s)", request.url.path, request_id)
        return JSONResponse({"error": "internal_error",
                             "message": f"internal server error; the server log has the "
                                        f"details under request id {request_id}"},
                            status_code=500)
