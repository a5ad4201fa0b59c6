"""Each architecture's own attention, read from ``FEROutput.attention`` by name.

The names are a contract between the models and this module:

========================  ===========================  =====================================
architecture              attention key                shown as
========================  ===========================  =====================================
dan, dan_convnext         ``spatial`` (B,N,H,W)         one map per head + their mean
                          ``channel`` (B,N,C)           per-head channel-weight strips
dacl                      ``element_weights`` (B,512)   weight strip; projected on the
                                                        feature map as a map
dsan                      ``mff_maps`` (B,S,H,W)        one map per subspace + their mean
                          ``gfe_weights`` (B,D)         weight strip (+ projected map)
deep_emotion              ``theta`` (B,2,3)             sampling grid over the input
                          ``warped`` (B,1,48,48)        the warped face
========================  ===========================  =====================================

Other 4-D attention tensors become maps and 2-D ones weight strips, so a new architecture
shows something before this table learns its names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ferkit.calibration import model_temperature
from ferkit.config import find_config
from ferkit.errors import FerkitError
from ferkit.explain.base import (
    BatchExplanation,
    Explainer,
    TopClassTarget,
    normalise_maps,
    resize_maps,
)

#: spatial stacks (B, N, H, W): one map per head/subspace plus the mean
SPATIAL_KEYS = ("spatial", "mff_maps")
#: per-sample weights over feature channels, projected onto the feature map when they fit
CHANNEL_WEIGHT_KEYS = ("element_weights", "gfe_weights")
#: shown, never mapped: per-head features carry no spatial meaning
SKIPPED_KEYS = ("heads",)
#: the methods that work for every model, named in the error for attention-less models
GENERIC_METHODS = ("gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "eigencam")


class AttentionExplainer(Explainer):
    """The architecture's own attention for a batch (one forward pass, no gradients).

    Example:
        >>> import torch, ferkit
        >>> from ferkit.explain import AttentionExplainer
        >>> model = ferkit.create_model("baseline_test").eval()
        >>> AttentionExplainer(model)(torch.zeros(1, 3, 32, 32))
        Traceback (most recent call last):
        ...
        ferkit.errors.FerkitError: BaselineClassifier has no attention of its own ...
    """

    method = "attention"

    def explain_batch(self, x: Tensor, targets: list[Callable[[Tensor], Tensor]]
                      ) -> BatchExplanation:
        if not all(isinstance(t, TopClassTarget) for t in targets):
            raise FerkitError("method='attention' shows what the architecture attends to for "
                              "any class, so it takes no target; use a CAM method "
                              f"({', '.join(GENERIC_METHODS)}) to explain a chosen class")
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(x.to(device).float())
        finally:
            self.model.train(was_training)
        if not out.attention:
            raise FerkitError(
                f"{type(self.model).__name__} has no attention of its own (its forward returns "
                "no FEROutput.attention); use one of the methods that work for any model: "
                f"{', '.join(GENERIC_METHODS)}"
            )
        logits = out.logits.detach().float().cpu()
        result = BatchExplanation(
            method=self.method, label_names=self.label_names,
            probs=torch.softmax(logits / model_temperature(self.model), -1).numpy(),
            target_index=[None] * x.shape[0],
        )
        size = tuple(x.shape[-2:])
        attention = {k: v.detach().float().cpu() for k, v in out.attention.items()}
        feature_map = None if out.feature_map is None else out.feature_map.detach().float().cpu()
        for key, value in attention.items():
            if key in SKIPPED_KEYS or key in ("theta", "warped") or key.endswith("logits"):
                continue  # (DSAN's auxiliary "gfe_logits" are predictions, not attention)
            if value.ndim == 4 and (key in SPATIAL_KEYS or key not in CHANNEL_WEIGHT_KEYS):
                _add_stack(result, key, value, size)
            elif value.ndim == 2:
                result.vectors[key] = value.numpy()
                if feature_map is not None and feature_map.shape[1] == value.shape[1]:
                    # Weights over feature channels, projected like a CAM: sum_c w_c A_c.
                    projected = torch.relu(torch.einsum("bc,bchw->bhw", value, feature_map))
                    result.maps[key] = normalise_maps(resize_maps(projected[:, None], size)[:, 0])
            elif value.ndim == 3 and key == "channel":
                result.vectors[key] = value.numpy()
        if "theta" in attention:
            _add_stn(result, attention["theta"], attention.get("warped"), x, self.model, size)
        if not (result.maps or result.vectors or result.images):
            raise FerkitError(
                f"{type(self.model).__name__}'s attention ({', '.join(attention)}) has no "
                f"shape ferkit can draw; use one of: {', '.join(GENERIC_METHODS)}"
            )
        return result


def _add_stack(result: BatchExplanation, key: str, value: Tensor, size: tuple[int, int]
               ) -> None:
    """``(B, N, h, w)`` → ``key[i]`` maps (scaled jointly, so heads keep their relative
    strength) and ``key`` = their mean (scaled on its own)."""
    upsampled = resize_maps(value, size)
    joint = normalise_maps(upsampled, joint_dims=1)
    for i in range(value.shape[1]):
        result.maps[f"{key}[{i}]"] = joint[:, i]
    result.maps[key] = normalise_maps(upsampled.mean(1))


def _add_stn(result: BatchExplanation, theta: Tensor, warped: Tensor | None, x: Tensor,
             model: torch.nn.Module, size: tuple[int, int]) -> None:
    """Deep-Emotion's spatial transformer: the sampling grid in input pixels and the warped
    input (the model's own ``warped`` when given, else re-sampled from ``x`` by ``theta``)."""
    b, h, w = x.shape[0], *size
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    # normalised [-1, 1] (align_corners=False) → pixel coordinates, pixel centres at i.
    pixels = torch.stack([((grid[..., 0] + 1) * w - 1) / 2, ((grid[..., 1] + 1) * h - 1) / 2],
                         dim=-1)
    result.grids["stn"] = pixels.numpy().astype(np.float32)
    if warped is None:
        warped = F.grid_sample(x.detach().float().cpu(), grid, align_corners=False)
    result.images["stn_input"] = _to_display(x.detach().float().cpu(), model)
    result.images["stn_warped"] = _to_display(warped, model)
    result.vectors["theta"] = theta.numpy()


def _to_display(batch: Tensor, model: torch.nn.Module) -> np.ndarray:
    """Undo the input normalisation: ``(B, C, H, W)`` → ``(B, H, W[, 3])`` in [0, 1]."""
    cfg = find_config(model)
    if cfg is not None and len(cfg.data.mean) == batch.shape[1]:
        mean = torch.tensor(cfg.data.mean).view(1, -1, 1, 1)
        std = torch.tensor(cfg.data.std).view(1, -1, 1, 1)
        batch = batch * std + mean
    arr = batch.clamp(0, 1).permute(0, 2, 3, 1).numpy().astype(np.float32)
    return arr[..., 0] if arr.shape[-1] == 1 else arr
