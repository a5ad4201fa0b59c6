"""The HTTP service: a FastAPI app around one :class:`ferkit.Recognizer`.

Endpoints: ``POST /v1/predict`` (an image as a multipart file or base64 JSON),
``POST /v1/explain`` (attention / Grad-CAM overlay PNG or maps), ``GET /v1/models``,
``GET /health``, the web page at ``/`` and OpenAPI docs at ``/docs`` (served locally).

The model is loaded once, when the server starts, and must answer a real face (a warm-up
through detector, alignment and classifier) before the server reports healthy.  One
dedicated thread runs every model call (:class:`~ferkit.serve.scheduler.ModelThread`), so
the event loop stays free and the model is never used from two threads at once; predict
batches and the face detection of explanations queue in weighted lanes there.  The
explanations themselves (backward passes) run in a thread of their own at lower CPU
priority, on a copy of the classifier, so they cannot starve predictions.  Predict
requests that arrive together are run as one batch
(:class:`~ferkit.serve.batcher.MicroBatcher`).  Decoding runs in a small pool of its own,
inside the request's deadline and within a memory budget.  Every error is a JSON body
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
import math
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ferkit.errors import FerkitError
from ferkit.serve.batcher import MicroBatcher, Overloaded
from ferkit.serve.budget import ByteBudget
from ferkit.serve.images import (
    ApiError,
    check_declared_type,
    decode_base64,
    decode_image,
    inspect_image,
)
from ferkit.serve.scheduler import ModelThread
from ferkit.serve.settings import ServeSettings

log = logging.getLogger("ferkit.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: a real face (public-domain NASA portrait of Eileen Collins, from scikit-image's
#: ``astronaut``, cropped to 160x176) that every model must answer before the server starts
WARMUP_FACE = Path(__file__).resolve().parent / "warmup_face.jpg"
#: where that face is (x1, y1, x2, y2), for detectors that miss it
WARMUP_FACE_BOX = (58.0, 42.0, 135.0, 139.0)
#: predict batches run per explanation's face detection while both wait for the model thread
PREDICT_WEIGHT = 4
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
    def __init__(self, recognizer: Any, name: str, settings: ServeSettings, *,
                 explainer: Any = None) -> None:
        self.recognizer = recognizer
        # Explanations (backward passes, seconds each) run in a thread of their own on a
        # copy of the classifier: predictions never wait behind them.  Face detection for
        # them runs in the model thread's explain lane.
        self.explainer = explainer if explainer is not None else recognizer
        self.explain_thread = ThreadPoolExecutor(1, thread_name_prefix="ferkit-explain",
                                                 initializer=_yield_cpu)
        if explainer is not None:  # the explain thread's first job, while serving starts
            self.explain_thread.submit(_warm_up_explainer, explainer)
        self.name = name
        self.settings = settings
        self.started = time.monotonic()
        self.model_thread = ModelThread({"predict": PREDICT_WEIGHT, "explain": 1})
        # Decoding gets a few threads of its own: bounded CPU use and memory (each thread
        # that decodes keeps its own malloc arena), and never queued behind the model.
        self.decoder = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)),
                                          thread_name_prefix="ferkit-decode")
        self.decode_budget = ByteBudget(settings.max_decode_bytes)
        self.batcher = MicroBatcher(self._predict_batch,
                                    executor=self.model_thread.lane("predict"),
                                    max_batch=settings.max_batch,
                                    max_wait_s=settings.batch_wait_ms / 1000,
                                    max_pending=settings.max_pending)
        self.explain_lane = self.model_thread.lane("explain")
        self.explaining = 0
        self.explain_seconds = 5.0  # running mean of an explanation's duration

    def shutdown(self) -> None:
        self.model_thread.shutdown(wait=True, cancel_futures=True)
        self.explain_thread.shutdown(wait=True, cancel_futures=True)
        self.decoder.shutdown(wait=True, cancel_futures=True)

    def _predict_batch(self, images: list[np.ndarray]) -> list[Any]:
        try:
            return list(self.recognizer(images, color="rgb"))
        except Exception:
            if len(images) == 1:
                raise
        # One bad image must not fail the others: retry one by one, errors per image.
        results: list[Any] = []
        for image in images:
            try:
                results.append(self.recognizer([image], color="rgb")[0])
            except Exception as exc:
                results.append(exc)
        return results

    async def explain_detect(self, image: np.ndarray) -> list[Any]:
        """Faces found and aligned for an explanation: the model thread's explain lane,
        one turn per ``PREDICT_WEIGHT`` predict batches."""
        return await asyncio.get_running_loop().run_in_executor(
            self.explain_lane, functools.partial(self.recognizer.detect_and_align, image,
                                                  color="rgb"))

    async def explain_faces(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(explainer)`` in the explain thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self.explain_thread, fn, self.explainer)

    async def predict(self, image: np.ndarray) -> Any:
        try:
            return await self.batcher.submit(image)
        except Overloaded:
            raise ApiError(503, "overloaded", "too many requests are waiting for the "
                                              "model; retry shortly") from None

    async def within_deadline(self, awaitable: Any) -> Any:
        """``awaitable``'s result, or 504 after ``request_timeout_s`` (decode + model)."""
        try:
            return await asyncio.wait_for(awaitable, self.settings.request_timeout_s)
        except asyncio.TimeoutError:  # not TimeoutError: distinct on Python 3.10
            raise ApiError(504, "timeout", f"the image was not decoded and run through the "
                                           f"model within {self.settings.request_timeout_s:g}"
                                           f" s") from None

    @contextlib.asynccontextmanager
    async def explain_slot(self) -> AsyncIterator[None]:
        """Admit one explanation, or 503 with a ``Retry-After`` when the lane is full."""
        if self.explaining >= self.settings.max_pending_explain:
            raise ApiError(503, "overloaded",
                           f"{self.explaining} explanations are already queued or running "
                           f"(the limit is {self.settings.max_pending_explain}); retry later",
                           retry_after=max(1, math.ceil(self.explain_seconds)))
        self.explaining += 1
        start = time.monotonic()
        try:
            yield
        finally:
            self.explaining -= 1
            self.explain_seconds = 0.7 * self.explain_seconds + 0.3 * (time.monotonic() - start)

    @contextlib.asynccontextmanager
    async def decoded(self, data: bytes) -> AsyncIterator[np.ndarray]:
        """The upload as an RGB array, decoded within the memory budget.

        The header is read first; the decoding's peak memory (from size and bit depth) is
        reserved before a pixel is decoded and given back once the request is answered and
        the decoding thread has finished (it cannot be interrupted), so decoded images never
        take more than ``max_decode_bytes`` together.
        """
        loop = asyncio.get_running_loop()
        limits = {"max_bytes": self.settings.max_upload_bytes,
                  "max_pixels": self.settings.max_pixels}
        header = await loop.run_in_executor(self.decoder,
                                            functools.partial(inspect_image, data, **limits))
        reserved = await self.decode_budget.take(header.decode_bytes)
        holders = 2  # this request and the decoding job

        def let_go() -> None:
            nonlocal holders
            holders -= 1
            if holders == 0:
                self.decode_budget.give_back(reserved)

        def job_done(_: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                loop.call_soon_threadsafe(let_go)

        job = self.decoder.submit(decode_image, data, header=header, **limits)
        job.add_done_callback(job_done)
        try:
            yield await asyncio.wrap_future(job)
        finally:
            let_go()


def _load_recognizer(spec: str | Callable[[], Any], settings: ServeSettings) -> Any:
    if callable(spec):
        recognizer = spec()
    else:
        from ferkit.inference.recognizer import Recognizer

        recognizer = Recognizer.from_pretrained(spec, device=settings.device,
                                                detector=settings.detector,
                                                backend=settings.backend)
    _warm_up(recognizer)
    return recognizer


def _warm_up(recognizer: Any) -> None:
    """Run a real face through the whole model; refuse to serve one that cannot answer it.

    Builds the face detector (built on first use) before the first request, and catches
    a checkpoint that loads but cannot predict (e.g. ``std: [0]`` in its config.json),
    which would otherwise report healthy and answer 500 to every face.
    """
    from ferkit.inference.io import load_image

    image = load_image(WARMUP_FACE)
    labels = list(recognizer.config.label_names)
    try:
        result = recognizer([image], color="rgb")[0]
        if not result.faces and not getattr(result, "error", None):
            log.warning("the face detector found no face in the warm-up photo; "
                        "warming up the model on the known face box instead")
            result = recognizer([image], boxes=[[WARMUP_FACE_BOX]], color="rgb")[0]
    except Exception as exc:
        raise FerkitError(f"the model failed on the warm-up face ({type(exc).__name__}: "
                          f"{exc}); check the checkpoint's config.json (mean, std, "
                          f"input_size) and weights") from exc
    if getattr(result, "error", None):
        raise FerkitError(f"the model failed on the warm-up face: {result.error}")
    if not result.faces:
        raise FerkitError("the model found no face in the warm-up photo, even with its box "
                          "given; check --detector and the checkpoint's config.json")
    for face in result.faces:
        probs = np.asarray([float(face.probs.get(n, np.nan)) for n in labels])
        if not np.isfinite(probs).all() or abs(float(probs.sum()) - 1.0) > 1e-3:
            raise FerkitError(
                f"the model gave invalid probabilities on the warm-up face "
                f"({', '.join(f'{n}={p:.3g}' for n, p in zip(labels, probs, strict=True))}); "
                "its weights or config.json (mean, std, label_names) are broken")


#: how much lower the explain thread's CPU priority is (Linux nice; 10 ~ a tenth of the CPU
#: share of the prediction thread when both compete for a core)
EXPLAIN_NICENESS = 10


def _yield_cpu() -> None:
    """Lower this thread's CPU priority (Linux: per-thread nice; the threads torch starts
    from it inherit it), so explanations use the cores predictions leave free."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere PRIO_PROCESS takes a process id, not a thread's
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                       + EXPLAIN_NICENESS)


def _explainer_for(recognizer: Any) -> Any:
    """A copy of ``recognizer`` with its own classifier, for the explain thread.

    Its own copy because explaining registers hooks and runs backward passes on the
    classifier, which must not meet a prediction running at the same time.
    ``ferkit.explain`` is imported here too, not on the event loop.
    """
    import copy

    import torch

    try:
        from ferkit.explain import explain_aligned  # noqa: F401
        from ferkit.explain.visualize import overlay_on_image  # noqa: F401
    except ImportError:
        return None
    model = getattr(recognizer, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None  # not a ferkit Recognizer: explanations share it
    explainer = copy.copy(recognizer)
    explainer.model = copy.deepcopy(model)
    return explainer


def _warm_up_explainer(explainer: Any) -> None:
    """One explanation of the warm-up face: the first in a process takes seconds of
    one-off set-up, better spent before a client waits for it."""
    from ferkit.explain import explain_aligned
    from ferkit.inference.io import load_image

    try:
        face = explainer.detect_and_align(load_image(WARMUP_FACE), color="rgb")
        explain_aligned(explainer, face, method="gradcam")
    except Exception as exc:  # the first request will say what is wrong, as a 4xx/5xx
        log.warning("explanations did not warm up (%s: %s)", type(exc).__name__, exc)


def _public_name(spec: str | Callable[[], Any], name: str | None) -> str:
    if name:
        return name
    if isinstance(spec, str):
        return PurePath(spec).name or spec  # a checkpoint directory: never show its path
    name = getattr(spec, "__name__", "")
    return "custom" if not name or name.startswith("<") else name  # "<lambda>" says nothing


# A file path inside text: absolute, ~/, ./, ../, C:\\, file:// or relative with a
# separator; not a web URL (http(s)://...).  Each is cut to its last component.
_PATH_IN_TEXT = re.compile(r"(?:file://|(?<![\w/\\:.~-])(?!https?://))"
                           r"(?:[a-zA-Z]:)?[\w.~-]*(?:[/\\][\w.~ -]*)*[/\\][\w.~-]*")


def _last_part(match: re.Match[str]) -> str:
    parts = [p for p in re.split(r"[/\\]", match.group(0)) if p.strip()]
    return parts[-1].strip() if parts else ""


def _scrub_paths(value: Any) -> Any:
    """Paths in a model's metadata become their last component: no server paths leak.

    Examples:
        >>> _scrub_paths({"data": "runs/../data/raf-db", "w": ["C:\\\\x\\\\y.pt", "~/a/b/"]})
        {'data': 'raf-db', 'w': ['y.pt', 'b']}
        >>> _scrub_paths("trained on /home/ann/fer2013.csv, see https://x.org/p")
        'trained on fer2013.csv, see https://x.org/p'
    """
    if isinstance(value, Mapping):
        return {k: _scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_paths(v) for v in value]
    if isinstance(value, str):
        return _PATH_IN_TEXT.sub(_last_part, value)
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
        body = json.dumps({"error": code, "message": message}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

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
        body = json.dumps({"error": "invalid_host", "message": (
            f"this server does not answer to the host name {host[:100]!r}; it is set up "
            f"for {', '.join(self.allowed)} (ferkit serve --allowed-host NAME, or "
            f"FERKIT_SERVE_ALLOWED_HOSTS)")}).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


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
            loop = asyncio.get_running_loop()
            recognizer = await loop.run_in_executor(
                loader, _load_recognizer, recognizer_factory, settings)
            explainer = await loop.run_in_executor(loader, _explainer_for, recognizer)
        finally:
            loader.shutdown()
        service = _Service(recognizer, name, settings, explainer=explainer)
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
    _install_error_handlers(app)
    app.add_middleware(RequestGuardMiddleware, max_bytes=settings.max_body_bytes,
                       body_timeout_s=settings.body_timeout_s,
                       budget=ByteBudget(settings.max_buffered_bytes))
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(HostCheckMiddleware, allowed=settings.effective_allowed_hosts)
    app.add_middleware(RequestLogMiddleware)  # outermost: logs the 400s and 413s too
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


class _InMemoryMultiPartParser(MultiPartParser):
    # The body is already in memory (bounded): never copy it to a temporary file, which an
    # unfinished upload could keep on disk.
    spool_max_size = 2**62


async def _read_upload(request: Request, settings: ServeSettings) -> tuple[str, bytes]:
    """(file name, encoded image) from a multipart ``image`` field or JSON ``image_base64``.

    The whole body is read first (the guard middleware bounds its size, time and the
    memory all bodies take), then parsed in memory.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data" or ctype == "application/json" or ctype.endswith("+json"):
        try:
            body = await request.body()
        except ClientDisconnect:  # nobody is left to answer; the log line says 400
            raise ApiError(400, "client_disconnected",
                           "the client closed the connection before sending the whole "
                           "body") from None
    if ctype == "multipart/form-data":

        async def stream() -> AsyncIterator[bytes]:
            yield body

        try:
            form = await _InMemoryMultiPartParser(request.headers, stream(), max_files=1,
                                                  max_fields=4).parse()
        except (MultiPartException, ValueError, KeyError, AssertionError):
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
        return filename, data
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(422, "bad_json", "the body is not valid JSON") from None
        except RecursionError:
            raise ApiError(422, "bad_json", "the JSON is nested too deeply; send "
                                            '{"image_base64": "..."}') from None
        if not isinstance(payload, dict) or not isinstance(payload.get("image_base64"), str):
            raise ApiError(422, "missing_image",
                           'send a JSON object {"image_base64": "<base64 image>"}')
        data = decode_base64(payload["image_base64"], max_bytes=settings.max_upload_bytes)
        name = payload.get("filename")
        return PurePath(name).name if isinstance(name, str) and name else "upload", data
    raise ApiError(415, "unsupported_media_type",
                   "send multipart/form-data with a file field 'image', or "
                   'application/json {"image_base64": ...}' +
                   (f"; got {ctype!r}" if ctype else ""))


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
        filename, data = await _read_upload(request, settings)

        async def run() -> dict[str, Any]:
            async with service.decoded(data) as image:
                result = await service.predict(image)
                return {"model": service.name, "source": filename,
                        "width": int(image.shape[1]), "height": int(image.shape[0]),
                        "faces": _result_faces(result, top_k),
                        "error": getattr(result, "error", None)}

        out = await service.within_deadline(run())
        return {**out, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}

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
            from ferkit.explain import explain_aligned
            from ferkit.explain.visualize import overlay_on_image
        except ImportError:
            raise ApiError(501, "explain_unavailable",
                           "this ferkit build has no ferkit.explain module") from None
        labels = list(service.recognizer.config.label_names)
        if target is not None and target not in labels:
            raise ApiError(422, "unknown_target",
                           f"target {target!r} is not a class of this model; one of "
                           f"{', '.join(labels)}")
        # The body first: a slow upload must not hold one of the few explain slots.
        _, data = await _read_upload(request, settings)
        async with service.explain_slot():
            step = settings.max_batch

            async def run() -> tuple[np.ndarray, Any]:
                async with service.decoded(data) as image:
                    aligned = await service.explain_detect(image)
                    explanations: list[Any] = []
                    for i in range(0, len(aligned), step):  # a timeout stops between steps
                        explanations += await service.explain_faces(functools.partial(
                            explain_aligned, aligned=aligned[i:i + step], method=method,
                            target=target))
                    if format == "json":
                        return image, explanations

                    def draw() -> bytes:
                        buf = io.BytesIO()
                        overlay_on_image(image, explanations, map_name=map_name,
                                         color="rgb").save(buf, "PNG")
                        return buf.getvalue()

                    # Drawing needs no model: the decoding pool does it, off the model thread.
                    loop = asyncio.get_running_loop()
                    return image, await loop.run_in_executor(service.decoder, draw)

            image, out = await service.within_deadline(run())
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


class _PageFiles(StaticFiles):
    """Static files with the page's security headers (``/static/index.html`` is the page)."""

    def __init__(self, headers: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_headers = dict(headers)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.extra_headers)
        return response


def _install_pages(app: FastAPI) -> None:
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
