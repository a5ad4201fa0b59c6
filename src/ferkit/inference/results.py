"""Typed results of :class:`ferkit.Recognizer`: one :class:`ImageResult` per input image,
holding one :class:`FaceResult` per face.  Both are frozen and turn into plain JSON-ready
dicts with ``to_dict()`` (the CLI and the HTTP service print exactly that).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ferkit.boxes import Box

Matrix = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass(frozen=True)
class FieldDoc:
    """What a result field means and how ``to_dict`` writes it: the one place both the
    class docstring and the HTTP service's response schema (``ferkit.serve.schemas``) read.

    Attributes:
        description: one sentence for humans (docstring, OpenAPI).
        example: a JSON value for the API docs, or ``None``.
        digits: decimals kept for every number in the field in ``to_dict`` (``None``: as is).
    """

    description: str
    example: Any = None
    digits: int | None = None


_DOC_KEY = "ferkit.doc"


def doc(description: str, *, example: Any = None,
        digits: int | None = None) -> dict[str, FieldDoc]:
    """The ``metadata`` of a dataclass ``field`` that carries its :class:`FieldDoc`."""
    return {_DOC_KEY: FieldDoc(description, example, digits)}


@functools.cache
def documented_fields(cls: type) -> dict[str, tuple[Any, FieldDoc]]:
    """``name -> (type, FieldDoc)`` of a dataclass whose fields all have :func:`doc` metadata,
    in declaration order (the order of ``to_dict``'s keys)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata[_DOC_KEY]) for f in dataclasses.fields(cls)}


def _document(cls: type) -> type:
    """Append an ``Attributes:`` section written from the fields' :class:`FieldDoc`."""
    lines = [f"        {name}: {about.description}"
             for name, (_, about) in documented_fields(cls).items()]
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Attributes:\n" + "\n".join(lines) + "\n"
    return cls


def _json_value(value: Any, digits: int | None) -> Any:
    """``value`` as plain JSON types (tuples and arrays become lists), numbers rounded."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping):
        return {k: _json_value(v, digits) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_json_value(v, digits) for v in value]
    return value if digits is None else round(value, digits)


@_document
@dataclass(frozen=True)
class FaceResult:
    """One face and its expression."""

    box: Box = field(metadata=doc(
        "``(x1, y1, x2, y2)`` in image pixels.",
        example=[112.5, 80.1, 230.7, 228.9], digits=2))
    landmarks: tuple[tuple[float, float], ...] | None = field(metadata=doc(
        "five ``(x, y)`` image points (eyes, nose, mouth corners), or ``None`` when the "
        "detector gives none.", digits=2))
    detector_score: float | None = field(metadata=doc(
        "the face detector's confidence, ``None`` when the caller gave the box or detection "
        "was skipped.", example=0.998, digits=6))
    probs: dict[str, float] = field(metadata=doc(
        "class name → probability (all classes in the model's order, or the ``top_k`` best, "
        "highest first).", example={"happy": 0.91, "neutral": 0.05}, digits=6))
    label: str = field(metadata=doc("the most probable class.", example="happy"))
    score: float = field(metadata=doc(
        "the probability of ``label``.", example=0.91, digits=6))
    crop_matrix: Matrix = field(metadata=doc(
        "2x3 affine map from image pixels to the model's face crop.", digits=6))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists/dicts/floats, ready for ``json.dumps``."""
        return {name: _json_value(getattr(self, name), about.digits)
                for name, (_, about) in documented_fields(type(self)).items()}


@dataclass(frozen=True)
class ImageResult:
    """All faces found in one image (or why the image could not be used).

    Attributes:
        source: the file path, or a short description of an in-memory image.
        width, height: image size in pixels after EXIF rotation (0 when ``error`` is set).
        faces: one :class:`FaceResult` per face, in detector order (most confident first);
            empty when the image has no face.
        error: ``None``, or the message of the :class:`~ferkit.errors.InputError` that made
            this image unusable (set only for images in a list, so the others go on).
    """

    source: str
    width: int
    height: int
    faces: tuple[FaceResult, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "error": self.error,
            "faces": [face.to_dict() for face in self.faces],
        }


def ranked(probs: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """``(class, probability)`` pairs, most probable first, the ``k`` best (all when ``None``).

    Equal probabilities keep the order of ``probs`` (the model's class order): the one
    ranking behind ``top_k``, the extra label lines and every "next most probable" list.

    Example:
        >>> ranked({"neutral": 0.2, "happy": 0.7, "sad": 0.1}, 2)
        [('happy', 0.7), ('neutral', 0.2)]
    """
    order = sorted(probs.items(), key=lambda item: -item[1])
    return order if k is None else order[:k]
