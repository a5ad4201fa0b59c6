"""The API's endpoints: ``POST /v1/predict``, ``POST /v1/explain``, ``GET /v1/models`` and
``GET /health``, answered by the app's :class:`~ferkit.serve.service.Service`."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import time
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from ferkit.inference.results import ranked
from ferkit.serve.errors import ApiError
from ferkit.serve.redact import scrub_paths
from ferkit.serve.schemas import (
    IMAGE_BODY,
    ExplainOut,
    HealthOut,
    ModelsOut,
    PredictOut,
    error_responses,
)
from ferkit.serve.service import Service
from ferkit.serve.settings import ServeSettings
from ferkit.serve.uploads import read_upload


def service_of(request: Request) -> Service:
    """The :class:`Service` the app's lifespan started."""
    return request.app.state.service


def _face_dict(face: Any, top_k: int | None) -> dict[str, Any]:
    raw = face.to_dict() if hasattr(face, "to_dict") else dict(face)
    probs = {str(k): float(v) for k, v in raw.get("probs", {}).items()}
    if top_k is not None:
        probs = dict(ranked(probs, top_k))
    return {**raw, "probs": probs}


def _map_png(heatmap: np.ndarray) -> str:
    from PIL import Image

    grey = (np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0) * 255).round()
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint8), mode="L").save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def install_routes(app: FastAPI, settings: ServeSettings) -> None:
    """Add the API's endpoints to ``app``."""

    @app.post("/v1/predict", response_model=PredictOut, tags=["inference"],
              openapi_extra=IMAGE_BODY,
              responses=error_responses(413, 415, 422, 503, 504))
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
        service = service_of(request)
        filename, data = await read_upload(request, settings)

        async def run() -> dict[str, Any]:
            async with service.decoded(data) as image:
                result = await service.predict(image)
                return {"model": service.name, "source": filename,
                        "width": int(image.shape[1]), "height": int(image.shape[0]),
                        "faces": [_face_dict(face, top_k) for face in result.faces],
                        "error": getattr(result, "error", None)}

        out = await service.within_deadline(run())
        return {**out, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}

    @app.post("/v1/explain", tags=["inference"], openapi_extra=IMAGE_BODY,
              responses={200: {"model": ExplainOut,
                               "content": {"image/png": {"schema": {"type": "string",
                                                                    "format": "binary"}}},
                               "description": "the overlay PNG, or maps as JSON"},
                         **error_responses(413, 415, 422, 501, 503, 504)})
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
        service = service_of(request)
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
        _, data = await read_upload(request, settings)
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
        return JSONResponse(body.model_dump(mode="json"))

    @app.get("/v1/models", response_model=ModelsOut, tags=["service"])
    async def models(request: Request) -> dict[str, Any]:
        """The model this server runs, and the weights shipped with ferkit."""
        from ferkit.weights import list_shipped

        service = service_of(request)
        cfg = service.recognizer.config
        backend = getattr(getattr(service.recognizer, "backend", None), "name", None)
        return {"loaded": {"name": service.name, "architecture": cfg.architecture,
                           "label_names": list(cfg.label_names),
                           "input_size": list(cfg.data.input_size),
                           "alignment": cfg.data.alignment, "backend": backend,
                           "metrics": scrub_paths(cfg.metrics),
                           "provenance": scrub_paths(cfg.provenance)},
                "available": list_shipped()}

    @app.get("/health", response_model=HealthOut, tags=["service"])
    async def health(request: Request) -> dict[str, Any]:
        """Liveness: answers once the model is loaded."""
        service = service_of(request)
        return {"status": "ok", "model": service.name,
                "uptime_s": round(time.monotonic() - service.started, 1),
                "batching": service.batcher.stats.to_dict()}
