"""Grad-CAM and Grad-CAM++ for any ferkit model, on the well-kept ``grad-cam`` package.

Why the library and not our own: pytorch-grad-cam (``pip install grad-cam``, MIT) is the
reference implementation most FER papers cite, and it fits ferkit's models with one
10-line adapter: it expects ``model(x)`` to return a logits tensor, ferkit models return
:class:`~ferkit.models.output.FEROutput`, so :class:`~ferkit.models.output.LogitsOnly` (the
adapter the ONNX export uses too, here without the calibration temperature) returns
``.logits`` and keeps the whole output (probabilities, attention) from the same forward pass.  Its
targets are plain callables, like ours.  Two of its habits are kept out: its ``__exit__``
swallows ``IndexError`` (we never use its context manager and release its hooks
ourselves), and a target layer that never ran or received no gradient crashes deep inside
it (we check first and raise a :class:`~ferkit.errors.FerkitError`).

Example:
    >>> import torch, ferkit
    >>> from ferkit.explain import GradCAM
    >>> model = ferkit.create_model("baseline_test").eval()
    >>> with GradCAM(model) as cam:
    ...     result = cam(torch.randn(2, 3, 32, 32), target="happy")
    >>> result.maps["gradcam"].shape, result.target_index
    ((2, 32, 32), [1, 1])
"""

from __future__ import annotations

import difflib
import weakref
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ferkit.calibration import model_temperature
from ferkit.config import find_config
from ferkit.errors import FerkitError
from ferkit.explain.base import BatchExplanation, Explainer, target_indices
from ferkit.models.output import LogitsOnly

#: A map coarser than this many cells a side cannot say which part of a face mattered (the
#: 48 px DSAN's last map is 2x2); the default layer is the deepest with at least this many.
MIN_CAM_CELLS = 6
#: model -> ((its candidate layers, input size), the layer chosen for them)
_CHOSEN: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]] = weakref.WeakKeyDictionary()


def default_target_layer(model: nn.Module) -> nn.Module:
    """The layer CAM explainers hook when none is given.

    When the architecture lists candidates (``model.cam_layers()``, deepest first) and the
    model's config gives its input size, the deepest candidate whose map has at least
    :data:`MIN_CAM_CELLS` cells a side at that size (measured with one forward pass of a
    blank input); if none has, the deepest.  Otherwise ``model.default_cam_layer()`` when the
    architecture declares one, else its last Conv2d.
    """
    candidates = getattr(model, "cam_layers", None)
    if callable(candidates):
        layers = list(candidates())
        if not layers or not all(isinstance(layer, nn.Module) for layer in layers):
            raise FerkitError(f"{type(model).__name__}.cam_layers() must return a non-empty "
                              "list of nn.Modules")
        cfg = find_config(model)
        if cfg is None or len(layers) == 1:
            return layers[0]
        # Map sizes depend only on the architecture and the input size: measure them once
        # per model, not on every explainer (the server makes one per request).
        key = (tuple(id(layer) for layer in layers), tuple(cfg.data.input_size))
        cached = _CHOSEN.get(model)
        if cached is None or cached[0] != key:
            sides = _map_sides(model, layers, cfg.data.input_size)
            chosen = next((layer for layer, side in zip(layers, sides, strict=True)
                           if side >= MIN_CAM_CELLS), layers[0])
            cached = _CHOSEN[model] = (key, chosen)
        return cached[1]
    declared = getattr(model, "default_cam_layer", None)
    if callable(declared):
        layer = declared()
        if not isinstance(layer, nn.Module):
            raise FerkitError(f"{type(model).__name__}.default_cam_layer() returned "
                              f"{type(layer).__name__}, not an nn.Module")
        return layer
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise FerkitError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM; pass "
                          "target_layer= (a module or its dotted name)")
    return convs[-1]


def _map_sides(model: nn.Module, layers: list[nn.Module],
               input_size: tuple[int, int, int]) -> list[int]:
    """The shorter side of each layer's output map for one blank input of ``input_size``
    (0 for a layer that did not run or gave no map)."""
    sides = [0] * len(layers)

    def recorder(i: int):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if isinstance(output, Tensor) and output.ndim == 4:
                sides[i] = min(output.shape[-2:])
        return hook

    handles = [layer.register_forward_hook(recorder(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return sides


def resolve_layer(model: nn.Module, layer: nn.Module | str | None) -> nn.Module:
    """A module, a dotted module name (``"backbone.body.layer4"``) or ``None`` (default)."""
    if layer is None:
        return default_target_layer(model)
    if isinstance(layer, nn.Module):
        return layer
    names = dict(model.named_modules())
    if layer not in names:
        close = difflib.get_close_matches(layer, list(names), n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise FerkitError(f"{type(model).__name__} has no layer {layer!r}{hint}")
    return names[layer]


@cache
def _library_cams() -> dict[str, type]:
    """The grad-cam classes we expose, each with a check that the layer ran and got
    gradients before the library's own code would fail with an opaque error."""
    try:
        import pytorch_grad_cam as pgc
    except ImportError as exc:
        raise FerkitError("Grad-CAM needs the grad-cam package: pip install 'ferkit[explain]'"
                          ) from exc

    class _Checked:
        def compute_cam_per_layer(self, input_tensor: Tensor, targets: Any,
                                  eigen_smooth: bool) -> Any:
            grads = self.activations_and_grads
            if not grads.activations:
                raise FerkitError("the Grad-CAM target layer did not run in the forward "
                                  "pass; choose a layer the model uses (target_layer=)")
            if self.uses_gradients and not grads.gradients:
                raise FerkitError("no gradient reached the Grad-CAM target layer; choose a "
                                  "layer between the input and the logits (target_layer=)")
            return super().compute_cam_per_layer(input_tensor, targets, eigen_smooth)

    return {
        name: type(f"Checked{cls.__name__}", (_Checked, cls), {})
        for name, cls in {
            "gradcam": pgc.GradCAM,
            "gradcam++": pgc.GradCAMPlusPlus,
            "hirescam": pgc.HiResCAM,
            "xgradcam": pgc.XGradCAM,
            "layercam": pgc.LayerCAM,
            "eigencam": pgc.EigenCAM,
        }.items()
    }


class CAMExplainer(Explainer):
    """Class-activation maps on one layer (default: :func:`default_target_layer`).

    Args:
        model: a ferkit model (forward returns FEROutput).
        target_layer: the layer whose activations are weighted: a module, a dotted name,
            or ``None`` for the architecture's default.
        reshape_transform: turns a token output ``(B, T, C)`` into ``(B, C, H, W)``
            (pytorch-grad-cam's ViT/Swin helpers fit here).
    """

    method = "gradcam"

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None, *,
                 reshape_transform: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__(model)
        self.target_layer = resolve_layer(model, target_layer)
        self._was_training = model.training
        self._wrapper = LogitsOnly(model, temperature=1.0, keep_output=True)
        cam_class = _library_cams()[self.method]
        self._cam = cam_class(self._wrapper, [self.target_layer],
                              reshape_transform=reshape_transform)

    def close(self) -> None:
        self._cam.activations_and_grads.release()
        self.model.train(self._was_training)

    def explain_batch(self, x: Tensor, targets: list[Callable[[Tensor], Tensor]]
                      ) -> BatchExplanation:
        device = next(self.model.parameters()).device
        # A leaf input that needs grad: gradients reach the layer even if weights are frozen.
        x = x.detach().to(device).float().requires_grad_(True)
        try:
            with torch.enable_grad():
                cams = self._cam(input_tensor=x, targets=targets)
        finally:
            self._cam.activations_and_grads.clear()
        output = self._wrapper.last_output
        self._wrapper.last_output = None
        logits = output.logits.detach().float().cpu()
        cams = np.asarray(cams, dtype=np.float32)
        if not np.isfinite(cams).all():
            raise FerkitError("Grad-CAM produced non-finite values; the model's output or "
                              "gradients contain NaN/inf")
        return BatchExplanation(
            method=self.method,
            label_names=self.label_names,
            probs=torch.softmax(logits / model_temperature(self.model), -1).numpy(),
            target_index=target_indices(targets, logits),
            maps={self.method: np.clip(cams, 0.0, 1.0)},
        )


class GradCAM(CAMExplainer):
    """Grad-CAM (Selvaraju et al., ICCV 2017): channels weighted by mean gradient."""

    method = "gradcam"


class GradCAMPlusPlus(CAMExplainer):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018): higher-order gradient weights, better
    for several instances of the evidence (DAN's paper uses it)."""

    method = "gradcam++"


class HiResCAM(CAMExplainer):
    method = "hirescam"


class XGradCAM(CAMExplainer):
    method = "xgradcam"


class LayerCAM(CAMExplainer):
    method = "layercam"


class EigenCAM(CAMExplainer):
    """Gradient-free: first principal component of the layer's activations (class-agnostic)."""

    method = "eigencam"
