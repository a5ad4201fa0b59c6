"""The configuration that travels with a model's weights.

Like timm's ``pretrained_cfg`` and torchvision's ``Weights.meta``: everything needed to use
a checkpoint correctly (architecture, classes, input size, normalisation, face alignment)
lives in one frozen object, saved as ``config.json`` beside ``model.safetensors`` and
attached to every model built by :func:`ferkit.create_model` as ``model.ferkit_config``.
Preprocessing is derived from it (:func:`ferkit.data.transforms.eval_transform`), never
re-typed at call sites.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ferkit.errors import CheckpointError

CONFIG_VERSION = 1


@dataclass(frozen=True)
class DataConfig:
    """How a face crop must be prepared for the model.

    Attributes:
        input_size: ``(channels, height, width)``; channels is 1 (grayscale) or 3 (RGB).
        mean, std: per-channel normalisation applied after scaling pixels to [0, 1].
        interpolation: resize filter name (``"bilinear"``, ``"bicubic"``, ``"nearest"``).
        alignment: face-crop recipe: ``"five_point"`` (similarity transform from 5
            landmarks to a canonical template) or ``"box"`` (square crop around the box).
        face_margin: extra context around the face, as a fraction of the face size.
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    alignment: str = "five_point"
    face_margin: float = 0.2

    def __post_init__(self) -> None:
        channels = self.input_size[0]
        if channels not in (1, 3):
            raise ValueError(f"input_size channels must be 1 or 3, got {self.input_size}")
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"mean/std need {channels} values for input_size {self.input_size}, "
                f"got mean={self.mean} std={self.std}"
            )
        if self.alignment not in ("five_point", "box"):
            raise ValueError(f"alignment must be 'five_point' or 'box', got {self.alignment!r}")

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    def replace(self, **changes: Any) -> DataConfig:
        return dataclasses.replace(self, **changes)


#: ImageNet statistics for 3-channel models; 0.5/0.5 for the 48x48 grayscale models.
IMAGENET_DATA = DataConfig()
#: FER2013 faces are loose box crops: RetinaFace finds the face box in 148 of 150 FER2013
#: images with the 48 px frame = 0.96 x the box's longer side (median; quartiles 0.87-1.02),
#: so the "box" recipe with no margin reproduces that framing (tests/test_faces.py).
GRAY48_DATA = DataConfig(input_size=(1, 48, 48), mean=(0.5,), std=(0.5,), alignment="box",
                         face_margin=0.0)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that makes a set of weights usable: written as ``config.json``.

    Attributes:
        architecture: registry name, e.g. ``"dan"``.
        label_names: canonical class names in output order; ``num_classes`` derives from it.
        data: preprocessing (:class:`DataConfig`).
        model_kwargs: extra constructor arguments the architecture was built with.
        metrics: measured results, e.g. ``{"fer2013_privatetest_acc": 0.72}``.
        provenance: dataset, recipe, licence, training details: free-form but JSON.
    """

    architecture: str
    label_names: tuple[str, ...]
    data: DataConfig = field(default_factory=DataConfig)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ferkit_config_version": CONFIG_VERSION,
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "label_names": list(self.label_names),
            "data": {
                **dataclasses.asdict(self.data),
                "input_size": list(self.data.input_size),
                "mean": list(self.data.mean),
                "std": list(self.data.std),
            },
            "model_kwargs": _jsonable(self.model_kwargs),
            "metrics": _jsonable(self.metrics),
            "provenance": _jsonable(self.provenance),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> ModelConfig:
        try:
            version = raw.get("ferkit_config_version", CONFIG_VERSION)
            if version > CONFIG_VERSION:
                raise CheckpointError(
                    f"{source} was written by a newer ferkit (config version {version}); "
                    "upgrade ferkit to load it"
                )
            data_raw = dict(raw.get("data", {}))
            for key in ("input_size", "mean", "std"):
                if key in data_raw:
                    data_raw[key] = tuple(data_raw[key])
            label_names = tuple(raw["label_names"])
            if "num_classes" in raw and raw["num_classes"] != len(label_names):
                raise CheckpointError(
                    f"{source}: num_classes={raw['num_classes']} but label_names has "
                    f"{len(label_names)} entries"
                )
            return cls(
                architecture=str(raw["architecture"]),
                label_names=label_names,
                data=DataConfig(**data_raw),
                model_kwargs=dict(raw.get("model_kwargs", {})),
                metrics=dict(raw.get("metrics", {})),
                provenance=dict(raw.get("provenance", {})),
            )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source} is not a valid ferkit config: {exc}") from exc


def _jsonable(value: Any) -> Any:
    """Tuples to lists, recursively, so the JSON round trip is exact."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
