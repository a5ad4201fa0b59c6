"""``explain`` (whole photos, through a Recognizer) and ``explain_tensor`` (a batch).

The per-face pipeline is the Recognizer's own: ``recognizer.detect_and_align(image)`` →
crops → ``eval_transform(config.data)`` → the model, so a map explains exactly the crop the
prediction was made on.  Maps are returned at the crop's resolution and carry the crop's
alignment matrix, so they can be drawn on the photo (:mod:`ferkit.explain.projection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from ferkit.errors import FerkitError
from ferkit.explain.attention import AttentionExplainer
from ferkit.explain.base import BatchExplanation, Explainer
from ferkit.explain.cam import (
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    XGradCAM,
)
from ferkit.explain.projection import as_matrix, project_map
from ferkit.explain.targets import TargetLike

#: method name → explainer class; ``"cam"`` is Grad-CAM.
EXPLAINERS: dict[str, type[Explainer]] = {
    "gradcam": GradCAM,
    "cam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "hirescam": HiResCAM,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
    "attention": AttentionExplainer,
}

#: Map shown first, by method; attention picks the first key present in this order.
PREFERRED_MAPS = ("spatial", "mff_maps", "element_weights", "gfe_weights")


def create_explainer(model: nn.Module, method: str = "gradcam", *,
                     target_layer: nn.Module | str | None = None) -> Explainer:
    """The explainer for ``method`` (see :data:`EXPLAINERS`); use it in a ``with`` block."""
    cls = EXPLAINERS.get(method.lower())
    if cls is None:
        raise FerkitError(f"unknown explanation method {method!r}; choose one of "
                          f"{', '.join(EXPLAINERS)}")
    if cls is AttentionExplainer:
        if target_layer is not None:
            raise FerkitError("target_layer is for CAM methods; method='attention' reads the "
                              "architecture's own attention")
        return cls(model)
    return cls(model, target_layer)


def explain_tensor(model: nn.Module, x: Tensor, *, method: str = "gradcam",
                   target: TargetLike | Sequence[TargetLike] = None,
                   target_layer: nn.Module | str | None = None) -> BatchExplanation:
    """Explain a preprocessed batch ``(B, C, H, W)``; maps come at the input's size.

    Example:
        >>> import torch, ferkit
        >>> from ferkit.explain import explain_tensor
        >>> model = ferkit.create_model("baseline_test")
        >>> r = explain_tensor(model, torch.randn(1, 3, 32, 32), method="gradcam++")
        >>> m = r.maps["gradcam++"]
        >>> sorted(r.maps), m.shape, bool(0 <= m.min() <= m.max() <= 1)
        (['gradcam++'], (1, 32, 32), True)
    """
    with create_explainer(model, method, target_layer=target_layer) as explainer:
        return explainer(x, target)


@dataclass(frozen=True)
class FaceExplanation:
    """One face's explanation, in face-crop coordinates.

    Attributes:
        face: the recognition result (box, probabilities, ``crop_matrix`` image → crop).
        crop: ``(h, w, 3)`` uint8 RGB aligned face crop the model saw (before resizing).
        maps: name → ``(h, w)`` float32 in [0, 1] at the crop's size.
        method: the method that made the maps.
        target: the class explained (``None`` for a custom callable target).
        label_names: the model's classes in output order.
        vectors: non-spatial attention weights (DAN ``channel`` ``(N, C)``, DACL
            ``element_weights`` ``(512,)``, Deep-Emotion ``theta``).
        images: extra pictures in [0, 1] (Deep-Emotion: ``stn_input``, ``stn_warped`` at the
            model's resolution, ``stn_warped_crop`` the crop warped by the same transform).
        grids: ``stn`` → ``(gh, gw, 2)`` spatial-transformer sampling positions in crop pixels.
    """

    face: Any
    crop: np.ndarray
    maps: dict[str, np.ndarray]
    method: str
    target: str | None = None
    label_names: tuple[str, ...] = ()
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    grids: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def matrix(self) -> np.ndarray:
        """The ``(2, 3)`` image → crop alignment matrix."""
        return as_matrix(self.face.crop_matrix)

    @property
    def primary_map(self) -> str:
        """The map to show first: the CAM, DAN's mean head map, DSAN's mean subspace map…"""
        if not self.maps:
            raise FerkitError(f"this {self.method} explanation has no spatial maps")
        for name in (self.method, *PREFERRED_MAPS):
            if name in self.maps:
                return name
        return next(iter(self.maps))

    def project(self, map_name: str | None, image_size: tuple[int, int]) -> np.ndarray:
        """Map ``map_name`` (default :attr:`primary_map`) on the photo, ``(H, W)`` in [0, 1]."""
        name = map_name or self.primary_map
        if name not in self.maps:
            raise FerkitError(f"no map {name!r}; this explanation has {', '.join(self.maps)}")
        return project_map(self.maps[name], self.matrix, image_size)


def explain(recognizer: Any, image: Any, *, method: str = "gradcam",
            target: TargetLike = None, target_layer: nn.Module | str | None = None,
            boxes: Sequence[Sequence[float]] | None = None,
            detect: bool = True, color: str | None = None) -> list[FaceExplanation]:
    """Detect, align and explain every face in ``image`` (path, bytes, PIL or array).

    The faces, crops and preprocessing are the Recognizer's own
    (``detect_and_align`` → ``preprocess``), so the probabilities match ``recognizer(image)``
    and the maps explain exactly the crops it classified.  ``boxes``/``detect`` are passed
    to ``detect_and_align`` (known face boxes; ``detect=False`` for an already-cropped face);
    ``color`` is the channel order of a numpy ``image``, as for the Recognizer.

    Example:
        >>> import ferkit
        >>> from ferkit.explain import explain
        >>> from ferkit.explain.visualize import face_figure
        >>> rec = ferkit.Recognizer.from_pretrained("runs/dan/best")   # doctest: +SKIP
        >>> faces = explain(rec, "photo.jpg", method="gradcam++")     # doctest: +SKIP
        >>> face_figure(faces[0]).save("face0.png")                    # doctest: +SKIP
    """
    aligned = recognizer.detect_and_align(image, boxes=boxes, detect=detect, color=color)
    return explain_aligned(recognizer, aligned, method=method, target=target,
                           target_layer=target_layer)


def explain_aligned(recognizer: Any, aligned: Sequence[Any], *, method: str = "gradcam",
                    target: TargetLike = None,
                    target_layer: nn.Module | str | None = None) -> list[FaceExplanation]:
    """:func:`explain` for faces already found by ``recognizer.detect_and_align``.

    Lets a caller explain a crowded photo a few faces at a time (the HTTP service does,
    so that predictions run between the steps); each face's result is the same.
    """
    if getattr(recognizer, "model", None) is None:
        raise FerkitError(
            "explanations need the PyTorch model, and this Recognizer runs an ONNX file; "
            "explain with the checkpoint it was exported from (e.g. --model default or a "
            "checkpoint directory)")
    if not aligned:
        return []
    batch = torch.from_numpy(recognizer.preprocess([face.crop for face in aligned]))
    result = explain_tensor(recognizer.model, batch, method=method, target=target,
                            target_layer=target_layer)
    label_names = tuple(recognizer.config.label_names)
    return [
        _face_explanation(face, recognizer.face_result(face, result.probs[i]), result, i,
                          label_names, recognizer.config.data)
        for i, face in enumerate(aligned)
    ]


def _face_explanation(face: Any, face_result: Any, result: BatchExplanation, i: int,
                      label_names: Sequence[str], data: Any = None) -> FaceExplanation:
    crop = np.asarray(face.crop)
    h, w = crop.shape[:2]
    maps = {k: _on_crop(v[i], (h, w), data) for k, v in result.maps.items()}
    images = {k: v[i] for k, v in result.images.items()}
    grids = {}
    for key, grid in result.grids.items():
        gh, gw = grid.shape[1:3]
        # input pixels → crop pixels (centres aligned), then sample the crop at crop size.
        scale = np.array([w / gw, h / gh], dtype=np.float32)
        in_crop = (grid[i] + 0.5) * scale - 0.5
        grids[key] = in_crop
        dense = cv2.resize(in_crop, (w, h), interpolation=cv2.INTER_LINEAR)
        images[f"{key}_warped_crop"] = cv2.remap(
            crop, np.ascontiguousarray(dense[..., 0]), np.ascontiguousarray(dense[..., 1]),
            interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
        ).astype(np.float32) / 255.0
    index = result.target_index[i]
    return FaceExplanation(
        face=face_result,
        crop=crop, maps=maps, method=result.method,
        target=None if index is None else label_names[index],
        label_names=tuple(label_names),
        vectors={k: v[i] for k, v in result.vectors.items()},
        images=images, grids=grids,
    )


def _on_crop(heatmap: np.ndarray, size: tuple[int, int], data: Any) -> np.ndarray:
    """A model-input map at crop size.  With ``crop_pct < 1`` the model saw only the crop's
    centre (``input_size / resize_size`` of each side): the map covers that part, and the
    border it never saw stays 0."""
    if data is None or getattr(data, "crop_pct", 1.0) >= 1.0:
        return _resize(heatmap, size)
    h, w = size
    (resize_h, resize_w), (in_h, in_w) = data.resize_size, data.input_size[1:]
    seen_h, seen_w = round(h * in_h / resize_h), round(w * in_w / resize_w)
    out = np.zeros((h, w), np.float32)
    top, left = (h - seen_h) // 2, (w - seen_w) // 2
    out[top:top + seen_h, left:left + seen_w] = _resize(heatmap, (seen_h, seen_w))
    return out


def _resize(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if heatmap.shape == (h, w):
        return heatmap.astype(np.float32)
    out = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)
