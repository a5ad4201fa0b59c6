"""The API's response bodies as pydantic models: they document it in ``/openapi.json`` and
FastAPI checks every answer against them.

A face's fields are not written here: :data:`FaceOut` is built from
:class:`ferkit.inference.results.FaceResult` (types, descriptions, examples), whose
``to_dict()`` is what the endpoints send, so the schema cannot drift from the results.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from ferkit.inference.results import FaceResult, documented_fields


def _model_of(cls: type, name: str) -> type[BaseModel]:
    """A pydantic model with the fields of a dataclass whose fields carry
    :func:`~ferkit.inference.results.doc` metadata (a tuple type is a JSON array of that
    length)."""
    fields: dict[str, Any] = {
        field: (kind, Field(description=doc.description,
                            examples=None if doc.example is None else [doc.example]))
        for field, (kind, doc) in documented_fields(cls).items()}
    summary = (cls.__doc__ or "").strip().splitlines()[0]
    return create_model(name, __doc__=summary, **fields)


FaceOut = _model_of(FaceResult, "FaceOut")


class PredictOut(BaseModel):
    model: str = Field(examples=["default"])
    source: str = Field(description="the uploaded file name, or 'upload'")
    width: int
    height: int
    faces: list[FaceOut]  # type: ignore[valid-type]  # a model built at import time
    error: str | None = None
    latency_ms: float = Field(description="time spent in the server for this request")


class ExplainFaceOut(BaseModel):
    face: FaceOut  # type: ignore[valid-type]  # a model built at import time
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


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these error statuses."""
    return {code: {"model": ErrorOut} for code in codes}


#: The image body is parsed by hand (multipart or JSON on one URL:
#: :func:`ferkit.serve.uploads.read_upload`); this documents it.
IMAGE_BODY: dict[str, Any] = {
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
