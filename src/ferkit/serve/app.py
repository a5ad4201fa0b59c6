"""The HTTP service: a FastAPI app around one :class:`ferkit.Recognizer`.

Endpoints: ``POST /v1/predict`` (an image as a multipart file or base64 JSON),
``POST /v1/explain`` (attention / Grad-CAM overlay PNG or maps), ``GET /v1/models``,
``GET /health``, the web page at ``/`` and OpenAPI docs at ``/docs`` (served locally).

The model is loaded once, when the server starts, and must answer a real face (a warm-up
through detector, alignment and classifier) before the server reports healthy.  Every error
is a JSON body ``{"error": code, "message": text}`` without stack traces or server paths.

This module puts the app together; each part has a module of its own in ``ferkit.serve``:

========================  ==================================================================
``loading``               the model loaded and warmed up on a real face; the explain copy
``service``               model thread, micro-batching, explain lane, decoding budget
``uploads``               the image a request carries (multipart or base64 JSON)
``routes``                ``/v1/predict``, ``/v1/explain``, ``/v1/models``, ``/health``
``schemas``               response models (``/openapi.json``); a face's from ``FaceResult``
``errors``                ``ApiError`` and the JSON error answers
``middleware``            request log, body limits and deadline, ``Host`` check
``pages``                 the web page and ``/docs``
``redact``                server paths cut out of model metadata
========================  ==================================================================

Examples:
    >>> from ferkit.serve import ServeSettings, create_app
    >>> app = create_app("default", settings=ServeSettings(max_batch=4))  # loads on startup
    >>> sorted(r.path for r in app.routes if r.path.startswith("/v1"))
    ['/v1/explain', '/v1/models', '/v1/predict']
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ferkit.serve import middleware
from ferkit.serve.budget import ByteBudget
from ferkit.serve.errors import install_error_handlers
from ferkit.serve.loading import explainer_for, load_recognizer, public_name
from ferkit.serve.pages import install_pages
from ferkit.serve.routes import install_routes
from ferkit.serve.service import Service
from ferkit.serve.settings import ServeSettings

log = logging.getLogger("ferkit.serve")


def create_app(recognizer_factory: str | Callable[[], Any] = "default", *,
               settings: ServeSettings | None = None,
               model_name: str | None = None) -> FastAPI:
    """The FastAPI app serving one recognizer.

    Args:
        recognizer_factory: weights name or checkpoint directory for
            :meth:`ferkit.Recognizer.from_pretrained`, or a function with no arguments
            returning a recognizer (called once, at startup, in the model thread).
        settings: limits and batching (:class:`ServeSettings`); defaults when ``None``.
        model_name: the name shown by ``/v1/models`` (default: from the factory).

    Run it with any ASGI server, e.g. ``uvicorn.run(create_app("default"))``, or use
    :func:`ferkit.serve.run_server` / ``ferkit serve``.
    """
    settings = settings or ServeSettings()
    name = public_name(recognizer_factory, model_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = ThreadPoolExecutor(1, thread_name_prefix="ferkit-load")
        try:
            loop = asyncio.get_running_loop()
            recognizer = await loop.run_in_executor(
                loader, load_recognizer, recognizer_factory, settings)
            explainer = await loop.run_in_executor(loader, explainer_for, recognizer)
        finally:
            loader.shutdown()
        service = Service(recognizer, name, settings, explainer=explainer)
        await service.batcher.start()
        app.state.service = service
        log.info("model %s loaded; batching up to %d images / %g ms", name,
                 settings.max_batch, settings.batch_wait_ms)
        try:
            yield
        finally:
            await service.batcher.stop()
            service.shutdown()

    app = FastAPI(
        title="ferkit",
        summary="Facial expression recognition over HTTP",
        description=("Send a photo, get every face's box, expression and class "
                     "probabilities; or an attention/Grad-CAM overlay. Errors are JSON "
                     "`{\"error\": code, \"message\": text}`."),
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(middleware.RequestGuardMiddleware, max_bytes=settings.max_body_bytes,
                       body_timeout_s=settings.body_timeout_s,
                       budget=ByteBudget(settings.max_buffered_bytes))
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(middleware.HostCheckMiddleware, allowed=settings.effective_allowed_hosts)
    app.add_middleware(middleware.RequestLogMiddleware)  # outermost: logs the 400s and 413s too
    install_routes(app, settings)
    install_pages(app)
    return app


def _version() -> str:
    import ferkit

    return ferkit.__version__


# Names this module had before the split, now in their own modules: still importable from
# here for one release, with a DeprecationWarning that says where they went.
_MOVED = {
    "FaceOut": "schemas", "PredictOut": "schemas", "ExplainFaceOut": "schemas",
    "ExplainOut": "schemas", "ModelInfo": "schemas", "ModelsOut": "schemas",
    "HealthOut": "schemas", "ErrorOut": "schemas",
    "RequestLogMiddleware": "middleware", "RequestGuardMiddleware": "middleware",
    "HostCheckMiddleware": "middleware",
    "WARMUP_FACE": "loading", "WARMUP_FACE_BOX": "loading",
    "PREDICT_WEIGHT": "service", "EXPLAIN_NICENESS": "service",
    "STATIC_DIR": "pages",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"ferkit.serve.app.{name} moved to ferkit.serve.{module}.{name}; the old "
                  f"name goes in the next release", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(f"ferkit.serve.{module}"), name)
