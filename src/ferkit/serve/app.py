"""The HTTP service: a FastAPI app around one :class:`ferkit.Recognizer`.

Endpoints: ``POST /v1/predict`` (an image as a multipart file or base64 JSON),
``POST /v1/explain`` (attention / Grad-CAM overlay PNG or maps), ``GET /v1/models``,
``GET /health``, the web page at ``/`` and OpenAPI docs at ``/docs`` (served locally).

The model is loaded once, when the server starts, in a dedicated worker thread that runs
every model call, so the event loop stays free and the model is never used from two
threads at once.  Predict requests that arrive together are run as one batch
(:class:`~ferkit.serve.batcher.MicroBatcher`).  Every error is a JSON body
``{"error": code, "message": text}`` without stack traces or server paths.

Examples:
    >>> from ferkit.serve import ServeSettings, create_app
    >>> app = create_app("default", settings=ServeSettings(max_batch=4))  # loads on startup
    >>> sorted(r.path for r in app.routes if r.path.startswith("/v1"))
    ['/v1/explain', '/v1/models', '/v1/predict']
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferkit.errors import FerkitError
from ferkit.serve.batcher import MicroBatcher, Overloaded
from ferkit.serve.images import ApiError, check_declared_type, decode_base64, decode_image
from ferkit.serve.settings import ServeSettings

log = logging.getLogger("ferkit.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page loads nothing from elsewhere; camera frames and results are blob:/data: URLs.
_PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
             "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
             "base-uri 'none'; frame-ancestors 'none'")


# --- response schemas (they document the API in /openapi.json) -----------------------

class FaceOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in image pixels",
                             examples=[[112.5, 80.1, 230.7, 228.9]])
    landmarks: list[list[float]] | None = Field(
        None, description="5 points (eyes, nose, mouth corners) as [x, y], if detected")
    detector_score: float | None = None
    label: str = Field(examples=["happy"])
    score: float = Field(description="probability of label", examples=[0.91])
    probs: dict[str, float] = Field(description="class -> probability (top_k of them)",
                                    examples=[{"happy": 0.91, "neutral": 0.05}])
    crop_matrix: list[list[float]] | None = Field(
        None, description="2x3 affine map from image pixels to the model's face crop")


class PredictOut(BaseModel):
    model: str = Field(examples=["default"])
    source: str = Field(description="the uploaded file name, or 'upload'")
    width: int
    height: int
    faces: list[FaceOut]
    error: str | None = None
    latency_ms: float = Field(description="time spent in the server for this request")


class ExplainFaceOut(BaseModel):
    face: FaceOut
    maps: dict[str, str] = Field(description="map name -> base64 PNG (8-bit grey, in crop "
                                             "coordinates; 255 = most attended)")
    map_size: list[int] = Field(description="height, width of every map")


class ExplainOut(BaseModel):
    model: str
    method: str
    width: int
    height: int
    faces: list[ExplainFaceOut]
    latency_ms: float


class ModelInfo(BaseModel):
    name: str
    architecture: str
    label_names: list[str]
    input_size: list[int]
    alignment: str
    backend: str | None = None
    metrics: dict[str, Any] = {}
    provenance: dict[str, Any] = {}


class ModelsOut(BaseModel):
    loaded: ModelInfo
    available: list[str] = Field(description="names of the weights shipped with ferkit")


class HealthOut(BaseModel):
    status: Literal["ok"]
    model: str
    uptime_s: float
    batching: dict[str, int]


class ErrorOut(BaseModel):
    error: str = Field(examples=["payload_too_large"])
    message: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


# The image body is parsed by hand (multipart or JSON on one URL); this documents it.
_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["image"],
                           "properties": {"image": {"type": "string", "format": "binary"}}},
            },
            "application/json": {
                "schema": {"type": "object", "required": ["image_base64"],
                           "properties": {
                               "image_base64": {"type": "string",
                                                "description": "base64 or data: URL"},
                               "filename": {"type": "string"}}},
            },
        },
    }
}


# --- the service object that lives for the app's lifetime -----------------------------

class _Service:
    def __init__(self, recognizer: Any, name: str, settings: ServeSettings) -> None:
        self.recognizer = recognizer
        self.name = name
        self.settings = settings
        self.started = time.monotonic()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ferkit-model")
        # Decoding gets a few threads of its own: bounded CPU use and memory (each thread
        # that decodes keeps its own malloc arena), and never queued behind the model.
        self.decoder = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)),
                                          thread_name_prefix="ferkit-decode")
        self.batcher = MicroBatcher(self._predict_batch, executor=self.executor,
                                    max_batch=settings.max_batch,
                                    max_wait_s=settings.batch_wait_ms / 1000,
                                    max_pending=settings.max_pending)

    def _predict_batch(self, images: list[np.ndarray]) -> list[Any]:
        try:
            return list(self.recognizer(images))
        except Exception:
            if len(images) == 1:
                raise
        # One bad image must not fail the others: retry one by one, errors per image.
        results: list[Any] = []
        for image in images:
            try:
                results.append(self.recognizer([image])[0])
            except Exception as exc:
                results.append(exc)
        return results

    async def run_model(self, fn: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await self._timed(loop.run_in_executor(self.executor, fn))

    async def predict(self, image: np.ndarray) -> Any:
        try:
            return await self._timed(self.batcher.submit(image))
        except Overloaded:
            raise ApiError(503, "overloaded", "too many requests are waiting for the "
                                              "model; retry shortly") from None

    async def _timed(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.settings.request_timeout_s)
        except asyncio.TimeoutError:  # not TimeoutError: distinct on Python 3.10
            raise ApiError(504, "timeout", f"the model did not answer within "
                                           f"{self.settings.request_timeout_s:g} s") from None


def _load_recognizer(spec: str | Callable[[], Any], settings: ServeSettings) -> Any:
    if callable(spec):
        recognizer = spec()
    else:
        from ferkit.inference.recognizer import Recognizer

        recognizer = Recognizer.from_pretrained(spec, device=settings.device,
                                                detector=settings.detector,
                                                backend=settings.backend)
    # The face detector is built on first use: build it now, not in the first request.
    recognizer([np.full((64, 64, 3), 128, np.uint8)])
    return recognizer


def _public_name(spec: str | Callable[[], Any], name: str | None) -> str:
    if name:
        return name
    if isinstance(spec, str):
        return PurePath(spec).name or spec  # a checkpoint directory: never show its path
    name = getattr(spec, "__name__", "")
    return "custom" if not name or name.startswith("<") else name  # "<lambda>" says nothing


def _scrub_paths(value: Any) -> Any:
    """Absolute paths in a model's provenance become their last component."""
    if isinstance(value, Mapping):
        return {k: _scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_paths(v) for v in value]
    if isinstance(value, str) and (value.startswith("/") or value[1:3] == ":\\"):
        return PurePath(value).name
    return value


# --- middleware -----------------------------------------------------------------------

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
    """Bound the request body: 413 above ``max_bytes`` (announced or streamed), 408 when
    the client stops sending it for ``read_timeout_s`` (slow-upload attacks).

    The excess of a too-large body is read and dropped (up to a cap) rather than left on
    the socket, so the client gets the 413 instead of a reset connection.
    """

    _DRAIN_CAP = 64 * 1024 * 1024

    def __init__(self, app: ASGIApp, *, max_bytes: int, read_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    def _refusal(self, status: int) -> tuple[int, str, str]:
        if status == 413:
            return (413, "payload_too_large",
                    f"the request body is larger than the limit of {self.max_bytes} bytes")
        return (408, "request_timeout",
                f"the request body did not arrive within {self.read_timeout_s:g} s")

    @staticmethod
    async def _reply(send: Send, refusal: tuple[int, str, str]) -> None:
        status, code, message = refusal
        body = json.dumps({"error": code, "message": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def _receive(self, receive: Receive) -> Message:
        return await asyncio.wait_for(receive(), self.read_timeout_s)

    async def _drain(self, receive: Receive, already: int) -> None:
        seen = already
        with contextlib.suppress(asyncio.TimeoutError):
            while seen < self._DRAIN_CAP:
                message = await self._receive(receive)
                if message["type"] != "http.request":
                    return
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive, 0)
            await self._reply(send, self._refusal(413))
            return
        received = 0
        refusal: tuple[int, str, str] | None = None
        replied = False

        async def guarded_receive() -> Message:
            nonlocal received, refusal
            if refusal is not None:
                return {"type": "http.request", "body": b"", "more_body": False}
            try:
                message = await self._receive(receive)
            except asyncio.TimeoutError:  # not TimeoutError: distinct on Python 3.10
                refusal = self._refusal(408)
                return {"type": "http.request", "body": b"", "more_body": False}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refusal = self._refusal(413)
                    if message.get("more_body", False):
                        await self._drain(receive, received)
                    # The app sees a truncated body; its answer is replaced below.
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replied
            if refusal is None:
                await send(message)
            elif not replied:
                replied = True
                await self._reply(send, refusal)

        await self.app(scope, guarded_receive, guarded_send)


# --- the app factory ------------------------------------------------------------------

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
    name = _public_name(recognizer_factory, model_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = ThreadPoolExecutor(1, thread_name_prefix="ferkit-load")
        try:
            recognizer = await asyncio.get_running_loop().run_in_executor(
                loader, _load_recognizer, recognizer_factory, settings)
        finally:
            loader.shutdown()
        service = _Service(recognizer, name, settings)
        await service.batcher.start()
        app.state.service = service
        log.info("model %s loaded; batching up to %d images / %g ms", name,
                 settings.max_batch, settings.batch_wait_ms)
        try:
            yield
        finally:
            await service.batcher.stop()
            service.executor.shutdown(wait=True, cancel_futures=True)
            service.decoder.shutdown(wait=True, cancel_futures=True)

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
    _install_error_handlers(app)
    app.add_middleware(RequestGuardMiddleware, max_bytes=settings.max_body_bytes,
                       read_timeout_s=settings.request_timeout_s)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(RequestLogMiddleware)  # outermost: logs the 413s too
    _install_routes(app, settings)
    _install_pages(app)
    return app


def _version() -> str:
    import ferkit

    return ferkit.__version__


def _service(request: Request) -> _Service:
    return request.app.state.service


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
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


async def _read_image(request: Request, settings: ServeSettings) -> tuple[str, np.ndarray]:
    """(file name, RGB array) from a multipart ``image`` field or JSON ``image_base64``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception:
            raise ApiError(422, "bad_multipart", "the multipart body could not be parsed; "
                                                 "send one file field named 'image'") from None
        try:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise ApiError(422, "missing_image",
                               "no file field named 'image' in the multipart form")
            check_declared_type(upload.content_type)
            data = await upload.read(settings.max_upload_bytes + 1)
            filename = PurePath(upload.filename or "upload").name or "upload"
        finally:
            await form.close()
    elif ctype == "application/json" or ctype.endswith("+json"):
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(422, "bad_json", "the body is not valid JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("image_base64"), str):
            raise ApiError(422, "missing_image",
                           'send a JSON object {"image_base64": "<base64 image>"}')
        data = decode_base64(payload["image_base64"], max_bytes=settings.max_upload_bytes)
        name = payload.get("filename")
        filename = PurePath(name).name if isinstance(name, str) and name else "upload"
    else:
        raise ApiError(415, "unsupported_media_type",
                       "send multipart/form-data with a file field 'image', or "
                       'application/json {"image_base64": ...}' +
                       (f"; got {ctype!r}" if ctype else ""))
    image = await asyncio.get_running_loop().run_in_executor(
        _service(request).decoder,
        functools.partial(decode_image, data, max_bytes=settings.max_upload_bytes,
                          max_pixels=settings.max_pixels))
    return filename, image


def _face_dict(face: Any, top_k: int | None) -> dict[str, Any]:
    raw = face.to_dict() if hasattr(face, "to_dict") else dict(face)
    probs = {str(k): float(v) for k, v in raw.get("probs", {}).items()}
    if top_k is not None:
        probs = dict(sorted(probs.items(), key=lambda kv: -kv[1])[:top_k])
    return {**raw, "probs": probs}


def _result_faces(result: Any, top_k: int | None) -> list[dict[str, Any]]:
    return [_face_dict(face, top_k) for face in result.faces]


def _install_routes(app: FastAPI, settings: ServeSettings) -> None:
    @app.post("/v1/predict", response_model=PredictOut, tags=["inference"],
              openapi_extra=_IMAGE_BODY,
              responses=_errors(413, 415, 422, 503, 504))
    async def predict(request: Request,
                      top_k: int | None = Query(None, ge=1, le=100,
                                                description="keep the k most likely classes "
                                                            "per face")) -> dict[str, Any]:
        """Faces, expressions and class probabilities in one photo.

        Send the photo as a multipart file field `image`
        (`curl -F image=@photo.jpg http://127.0.0.1:8000/v1/predict`) or as JSON
        `{"image_base64": "..."}`.
        """
        start = time.perf_counter()
        service = _service(request)
        filename, image = await _read_image(request, settings)
        result = await service.predict(image)
        return {"model": service.name, "source": filename,
                "width": int(image.shape[1]), "height": int(image.shape[0]),
                "faces": _result_faces(result, top_k), "error": getattr(result, "error", None),
                "latency_ms": round((time.perf_counter() - start) * 1000, 2)}

    @app.post("/v1/explain", tags=["inference"], openapi_extra=_IMAGE_BODY,
              responses={200: {"model": ExplainOut,
                               "content": {"image/png": {"schema": {"type": "string",
                                                                    "format": "binary"}}},
                               "description": "the overlay PNG, or maps as JSON"},
                         **_errors(413, 415, 422, 501, 503, 504)})
    async def explain(
        request: Request,
        method: Literal["gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam",
                        "attention"] = Query("gradcam", description=(
                            "a CAM method (any model; URL-encode gradcam++ as gradcam%2B%2B), "
                            "or attention: the architecture's own attention maps")),
        target: str | None = Query(None, description="class to explain (default: each face's "
                                                     "predicted class)"),
        format: Literal["png", "json"] = Query("png", description="png: heatmap overlaid on "
                                                                  "the photo; json: the maps"),
        map_name: str | None = Query(None, alias="map",
                                     description="which map to overlay when a method gives "
                                                 "several"),
    ) -> Response:
        """Where the model looked: attention or Grad-CAM heatmaps for each face."""
        start = time.perf_counter()
        service = _service(request)
        try:
            from ferkit.explain import explain as explain_fn
            from ferkit.explain.visualize import overlay_on_image
        except ImportError:
            raise ApiError(501, "explain_unavailable",
                           "this ferkit build has no ferkit.explain module") from None
        labels = list(service.recognizer.config.label_names)
        if target is not None and target not in labels:
            raise ApiError(422, "unknown_target",
                           f"target {target!r} is not a class of this model; one of "
                           f"{', '.join(labels)}")
        _, image = await _read_image(request, settings)

        def work() -> Any:
            explanations = explain_fn(service.recognizer, image, method=method, target=target)
            if format == "png":
                overlay = overlay_on_image(image, explanations, map_name=map_name)
                buf = io.BytesIO()
                overlay.save(buf, "PNG")
                return buf.getvalue()
            return explanations

        out = await service.run_model(work)
        if format == "png":
            return Response(out, media_type="image/png")
        faces = []
        for exp in out:
            maps = {k: _map_png(v) for k, v in exp.maps.items()}
            size = next(iter(exp.maps.values())).shape[:2] if exp.maps else (0, 0)
            faces.append({"face": _face_dict(exp.face, None), "maps": maps,
                          "map_size": [int(size[0]), int(size[1])]})
        body = ExplainOut(model=service.name, method=method, width=int(image.shape[1]),
                          height=int(image.shape[0]), faces=faces,
                          latency_ms=round((time.perf_counter() - start) * 1000, 2))
        return JSONResponse(body.model_dump())

    @app.get("/v1/models", response_model=ModelsOut, tags=["service"])
    async def models(request: Request) -> dict[str, Any]:
        """The model this server runs, and the weights shipped with ferkit."""
        from ferkit.weights import list_shipped

        service = _service(request)
        cfg = service.recognizer.config
        backend = getattr(getattr(service.recognizer, "backend", None), "name", None)
        return {"loaded": {"name": service.name, "architecture": cfg.architecture,
                           "label_names": list(cfg.label_names),
                           "input_size": list(cfg.data.input_size),
                           "alignment": cfg.data.alignment, "backend": backend,
                           "metrics": _scrub_paths(cfg.metrics),
                           "provenance": _scrub_paths(cfg.provenance)},
                "available": list_shipped()}

    @app.get("/health", response_model=HealthOut, tags=["service"])
    async def health(request: Request) -> dict[str, Any]:
        """Liveness: answers once the model is loaded."""
        service = _service(request)
        return {"status": "ok", "model": service.name,
                "uptime_s": round(time.monotonic() - service.started, 1),
                "batching": service.batcher.stats.to_dict()}


def _map_png(heatmap: np.ndarray) -> str:
    from PIL import Image

    grey = (np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0) * 255).round()
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint8), mode="L").save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _install_pages(app: FastAPI) -> None:
    page_headers = {"Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=page_headers)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

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
