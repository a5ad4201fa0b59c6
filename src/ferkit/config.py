"""The configuration that travels with a model's weights.

Like timm's ``pretrained_cfg`` and torchvision's ``Weights.meta``: everything needed to use
a checkpoint correctly (architecture, classes, input size, normalisation, face alignment)
lives in one frozen object, saved as ``config.json`` beside ``model.safetensors`` and
attached to every model built by :func:`ferkit.create_model` as ``model.ferkit_config``.
Preprocessing is derived from it (:func:`ferkit.data.transforms.eval_transform`), never
re-typed at call sites.

Both classes are typed, validated pydantic models: every way a config comes into being
(``create_model``, :meth:`ModelConfig.from_dict` for ``config.json`` and ONNX metadata,
:meth:`~DataConfig.replace`) checks every field, and a bad one raises
:class:`~ferkit.errors.ConfigError` naming the field, what is wrong and what to do, so a
hand-edited ``std: [0]`` fails at load time instead of dividing by zero at inference.
Adding a field is one annotated line here (its type and limits are its validation).

Example:
    >>> DataConfig(input_size=(1, 48, 48), mean=(0.5,), std=(0.5,)).in_chans
    1
    >>> ModelConfig.from_dict({"architecture": "dan", "label_names": ["happy", "sad"],
    ...                        "data": {"std": [0.2, 0.2, 0]}}, source="config.json")
    Traceback (most recent call last):
    ...
    ferkit.errors.ConfigError: config.json: field data.std[2] = 0 is invalid: must be \
greater than 0; fix that field (or re-save the checkpoint with ferkit)
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ferkit.errors import ConfigError, FerkitError

CONFIG_VERSION = 1

_FROZEN = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


#: ints and floats only: ``"0.5"`` or ``true`` in a config.json is a mistake, not a number.
Number = Annotated[StrictInt | StrictFloat, AfterValidator(_finite)]
Side = Annotated[StrictInt, Field(ge=1, le=4096)]


class _Frozen(BaseModel):
    """Frozen, no unknown fields, and :meth:`replace` like a frozen dataclass's."""

    model_config = _FROZEN

    def replace(self, **changes: Any):
        """A copy with ``changes`` applied, validated like a new object (one-line
        :class:`ConfigError` naming the bad field)."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        try:
            return type(self)(**{**fields, **changes})
        except ValidationError as exc:
            raise ConfigError(describe(exc, type(self).__name__)) from None


class DataConfig(_Frozen):
    """How a face crop must be prepared for the model.

    Attributes:
        input_size: ``(channels, height, width)``; channels is 1 (grayscale) or 3 (RGB).
        mean, std: per-channel normalisation applied after scaling pixels to [0, 1]
            (``std`` > 0: it divides).
        interpolation: resize filter name (``"bilinear"``, ``"bicubic"``, ``"nearest"``).
        alignment: face-crop recipe: ``"five_point"`` (similarity transform from 5
            landmarks to a canonical template) or ``"box"`` (square crop around the box).
        face_margin: extra context around the face, as a fraction of the face size (0..3).
        crop_pct: centre-crop fraction at evaluation (timm's ``crop_pct``, in (0, 1]): below 1
            the face crop is resized to ``input_size / crop_pct`` and the centre
            ``input_size`` cut out (DACL: 0.875, i.e. ``Resize(256)`` + ``CenterCrop(224)``);
            1 resizes straight to ``input_size``.
    """

    input_size: tuple[Literal[1, 3], Side, Side] = (3, 224, 224)
    mean: tuple[Number, ...] = (0.485, 0.456, 0.406)
    std: tuple[Annotated[Number, Field(gt=0)], ...] = (0.229, 0.224, 0.225)
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    alignment: Literal["five_point", "box"] = "five_point"
    face_margin: Annotated[Number, Field(ge=0, le=3)] = 0.2
    crop_pct: Annotated[Number, Field(gt=0, le=1)] = 1.0

    @field_validator("input_size", mode="before")
    @classmethod
    def _channels_first(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 3 and value[0] not in (1, 3):
            raise ValueError("channels (the first value) must be 1 or 3")
        return value

    @model_validator(mode="after")
    def _stats_per_channel(self) -> DataConfig:
        channels = self.input_size[0]
        for name in ("mean", "std"):
            if len(getattr(self, name)) != channels:
                raise ValueError(f"{name} needs {channels} value(s), one per channel of "
                                 f"input_size {list(self.input_size)}; got "
                                 f"{list(getattr(self, name))}")
        return self

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    @property
    def resize_size(self) -> tuple[int, int]:
        """``(H, W)`` before the centre crop: ``input_size`` / ``crop_pct``, floored (timm)."""
        _, height, width = self.input_size
        return math.floor(height / self.crop_pct), math.floor(width / self.crop_pct)


#: ImageNet statistics for 3-channel models; 0.5/0.5 for the 48x48 grayscale models.
IMAGENET_DATA = DataConfig()
#: FER2013 faces are loose box crops: RetinaFace finds the face box in 148 of 150 FER2013
#: images with the 48 px frame = 0.96 x the box's longer side (median; quartiles 0.87-1.02),
#: so the "box" recipe with no margin reproduces that framing (tests/test_faces.py).
GRAY48_DATA = DataConfig(input_size=(1, 48, 48), mean=(0.5,), std=(0.5,), alignment="box",
                         face_margin=0.0)


class ModelConfig(_Frozen):
    """Everything that makes a set of weights usable: written as ``config.json``.

    Attributes:
        architecture: registry name, e.g. ``"dan"``.
        label_names: canonical class names in output order (2 or more, no repeats);
            ``num_classes`` derives from it.
        data: preprocessing (:class:`DataConfig`).
        model_kwargs: extra constructor arguments the architecture was built with.
        metrics: measured results, e.g. ``{"fer2013_privatetest_acc": 0.72}``.
        provenance: dataset, recipe, licence, training details: free-form but JSON.
        temperature: softmax temperature from calibration (:mod:`ferkit.calibration`):
            probabilities are ``softmax(logits / temperature)`` everywhere ferkit reports
            them; 1.0 means uncalibrated.  Dividing by a positive number keeps the argmax,
            so accuracy does not depend on it.
    """

    architecture: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    label_names: Annotated[tuple[StrictStr, ...], Field(min_length=2)]
    data: DataConfig = DataConfig()
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    temperature: Annotated[Number, Field(gt=0, lt=1000)] = 1.0

    @field_validator("label_names")
    @classmethod
    def _canonical_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from ferkit.labels import normalise_label_names

        try:
            return normalise_label_names(names)
        except FerkitError as exc:
            raise ValueError(str(exc)) from None

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` form (lists, not tuples; ``num_classes`` and the version)."""
        return {
            "ferkit_config_version": CONFIG_VERSION,
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "label_names": list(self.label_names),
            # crop_pct only where it crops: configs of plain-resize models stay byte-identical
            # to those written before the field existed (and readable by that ferkit).
            "data": _jsonable(self.data.model_dump(
                exclude={"crop_pct"} if self.data.crop_pct == 1.0 else None)),
            "model_kwargs": _jsonable(self.model_kwargs),
            "metrics": _jsonable(self.metrics),
            "provenance": _jsonable(self.provenance),
            "temperature": float(self.temperature),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "config") -> ModelConfig:
        """Validate a ``config.json`` object; the first bad field raises :class:`ConfigError`
        naming ``source``, the field, what is wrong and what to do."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source} must hold a JSON object (a ferkit model config), "
                              f"not {type(raw).__name__}")
        raw = dict(raw)
        version = raw.pop("ferkit_config_version", CONFIG_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ConfigError(f"{source}: field ferkit_config_version = {version!r} is invalid: "
                              f"must be an integer 1..{CONFIG_VERSION}")
        if version > CONFIG_VERSION:
            raise ConfigError(f"{source} was written by a newer ferkit (config version "
                              f"{version}); upgrade ferkit to load it")
        num_classes = raw.pop("num_classes", None)
        try:
            cfg = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(describe(exc, source)) from None
        if num_classes is not None and num_classes != cfg.num_classes:
            raise ConfigError(f"{source}: field num_classes = {num_classes!r} but label_names "
                              f"has {cfg.num_classes} entries; make them agree")
        return cfg


def describe(exc: ValidationError, source: str) -> str:
    """One line for the first error in ``exc``: where, which field, what is wrong, what to do."""
    error = exc.errors(include_url=False)[0]
    field = ""
    for part in error["loc"]:
        if isinstance(part, int):
            field += f"[{part}]"
        elif not (isinstance(part, str) and _is_type_tag(part)):
            field += ("." if field else "") + str(part)
    message = _plain(error)
    # A whole section's value says nothing the message does not: show leaf values only.
    leaf = not isinstance(error.get("input"), dict)
    given = f"= {_short(error.get('input'))} " if leaf else ""
    what = "is missing" if error["type"] == "missing" else f"{given}is invalid: {message}"
    name = field or "config"
    return f"{source}: field {name} {what}; fix that field (or re-save the checkpoint with ferkit)"


def _is_type_tag(part: str) -> bool:
    # Union members appear in error locations as "int", "float", "function-after[...]".
    return part in ("int", "float", "str") or "[" in part


#: pydantic error type -> what it means in plain words (``{...}`` filled from its context)
_PLAIN = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "int_type": "must be a number", "float_type": "must be a number",
    "string_type": "must be a string",
    "dict_type": "must be a JSON object", "model_type": "must be a JSON object",
    "tuple_type": "must be a list",
    "literal_error": "must be one of {expected}",
    "too_short": "needs at least {min_length} entries",
    "too_long": "takes at most {max_length} entries",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must match {pattern}",
    "extra_forbidden": "is not a ferkit config field (a typo?)",
}


def _plain(error: dict[str, Any]) -> str:
    template = _PLAIN.get(error["type"])
    if template is not None:
        return template.format(**(error.get("ctx") or {}))
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if isinstance(value, (int, float, str, list, dict, bool)) or \
        value is None else repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    """Tuples to lists, recursively, so the JSON round trip is exact."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def find_config(model: object) -> ModelConfig | None:
    """``model``'s :class:`ModelConfig` (``model.ferkit_config``), or ``None`` if it has none.

    For callers that work with any ``nn.Module`` and only use the config when present
    (explainers fall back to generic class names); everything that needs it calls
    :func:`config_of`.
    """
    cfg = getattr(model, "ferkit_config", None)
    return cfg if isinstance(cfg, ModelConfig) else None


def config_of(model: object, purpose: str = "this") -> ModelConfig:
    """``model``'s :class:`ModelConfig`; one clear error when the model has none.

    ``purpose`` names what needs it (``"Recognizer"``, ``"export_onnx"``) for the message.

    Example:
        >>> config_of(object(), "Recognizer")
        Traceback (most recent call last):
        ...
        ferkit.errors.FerkitError: Recognizer needs a ferkit model: object has no ferkit_config \
(the architecture, classes and preprocessing that travel with the weights); build it with \
ferkit.create_model(...) or load it with ferkit.load_checkpoint(...)
    """
    cfg = find_config(model)
    if cfg is None:
        raise FerkitError(
            f"{purpose} needs a ferkit model: {type(model).__name__} has no ferkit_config (the "
            "architecture, classes and preprocessing that travel with the weights); build it "
            "with ferkit.create_model(...) or load it with ferkit.load_checkpoint(...)"
        )
    return cfg


_SHA256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
_TEXT = Annotated[StrictStr, Field(min_length=1)]
WEIGHTS_CONFIG_VERSION = 1


class WeightsConfig(_Frozen):
    """What a set of published weights is: written as ``weights.json`` beside the checkpoint.

    ``config.json`` (:class:`ModelConfig`) says how to *use* the weights; this says what they
    *are*: their name, the file's checksum (checked before loading, so a truncated or
    replaced file fails with one line instead of loading garbage), the licence they may be
    used under, the data and recipe that made them and their headline metrics.

    Attributes:
        name: ``architecture.tag``, e.g. ``"dsan.fer2013"`` (timm's naming): the tag says
            what the weights were trained on or for.
        sha256: hex SHA-256 of ``model.safetensors``.
        licence: the terms the weights may be used under (they inherit the dataset's).
        dataset: the training data, as a person would cite it.
        recipe: the shipped recipe that reproduces them (``ferkit train -r RECIPE``).
        metrics: headline numbers (``{"fer2013_privatetest_accuracy": 0.6726, …}``).
        card: the model card page, relative to the repository.
    """

    name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$")]
    sha256: _SHA256
    licence: _TEXT
    dataset: _TEXT
    recipe: _TEXT
    metrics: dict[str, Number] = Field(default_factory=dict)
    card: StrictStr = ""

    @property
    def architecture(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def to_json(self) -> str:
        body = {"weights_config_version": WEIGHTS_CONFIG_VERSION,
                **_jsonable(self.model_dump())}
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "weights config") -> WeightsConfig:
        """Validate a ``weights.json`` object (one-line :class:`ConfigError` for a bad field)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source} must hold a JSON object (a ferkit weights config), "
                              f"not {type(raw).__name__}")
        raw = dict(raw)
        version = raw.pop("weights_config_version", WEIGHTS_CONFIG_VERSION)
        if version != WEIGHTS_CONFIG_VERSION:
            raise ConfigError(f"{source}: weights_config_version {version!r} is not one this "
                              f"ferkit reads ({WEIGHTS_CONFIG_VERSION}); upgrade ferkit")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(describe(exc, source)) from None
