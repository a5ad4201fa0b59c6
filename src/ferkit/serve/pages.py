"""The pages a browser gets: the web page at ``/`` (files in ``static/``, nothing loaded from
elsewhere) and the OpenAPI docs at ``/docs``, served from swagger-ui-py's files, not a CDN."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page loads nothing from elsewhere; camera frames and results are blob:/data: URLs.
_PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
             "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
             "base-uri 'none'; frame-ancestors 'none'")


class _PageFiles(StaticFiles):
    """Static files with the page's security headers (``/static/index.html`` is the page)."""

    def __init__(self, headers: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_headers = dict(headers)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.extra_headers)
        return response


def install_pages(app: FastAPI) -> None:
    """Add ``/``, ``/static/*``, ``/docs`` and ``/docs/assets/*`` to ``app``."""
    page_headers = {"Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=page_headers)

    app.mount("/static", _PageFiles(page_headers, directory=STATIC_DIR), name="static")

    try:
        import swagger_ui  # swagger-ui-py ships Swagger UI's files: no CDN needed
    except ImportError:
        swagger_ui = None

    if swagger_ui is not None:
        from fastapi.openapi.docs import get_swagger_ui_html

        assets = Path(swagger_ui.__file__).resolve().parent / "static"
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="ferkit API",
                                       swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                       swagger_css_url="/docs/assets/swagger-ui.css",
                                       swagger_favicon_url="/docs/assets/favicon-32x32.png")
    else:
        @app.get("/docs", include_in_schema=False)
        async def docs_missing() -> HTMLResponse:
            return HTMLResponse("<p>Interactive docs need <code>pip install "
                                "'ferkit[serve]'</code> (swagger-ui-py). The schema is at "
                                "<a href='/openapi.json'>/openapi.json</a>.</p>")
