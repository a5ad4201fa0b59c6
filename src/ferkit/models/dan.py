"""DAN: Distract your Attention Network (multi-head cross attention).

Wen, Lin, Wang & Xu, "Distract Your Attention: Multi-head Cross Attention Network for Facial
Expression Recognition", Biomimetics 8(2):199, 2023 (arXiv:2109.07270).  Reference code:
github.com/yaoing/DAN (``networks/dan.py``).

Layer by layer as the reference:

* **Feature clustering network**: ResNet-18 cut before ``avgpool`` (``features``), in the
  reference initialised from a ResNet-18 trained on MS-Celeb-1M
  (``backbone_weights=<resnet18_msceleb.pth>``).
* **Multi-head cross attention**: ``num_head`` independent heads.  Each head's spatial unit
  squeezes the map with a 1x1 conv (C -> C/2) + BN, expands it with parallel 3x3, 1x3 and 3x1
  convs (C/2 -> C, each + BN), sums them, applies ReLU, sums over channels into one
  ``(B, 1, H, W)`` map and multiplies the input by it.  Its channel unit pools that product
  globally and re-weights it with an MLP C -> C/16 (BN1d, ReLU) -> C with a sigmoid.  A head
  outputs a ``(B, C)`` vector.
* **Attention fusion**: with more than one head, a log-softmax across the heads (per
  channel) then the sum over heads; a single head is used as is.  Then ``fc`` (C -> classes)
  and a BatchNorm1d on the logits (``bn``).

With 7 classes and 4 heads: 19,723,733 parameters, as the reference.

``dan_convnext`` is the same network on a ConvNeXt-Tiny trunk (768 channels); the heads keep
the reference's ratios (squeeze to C/2, MLP reduction 16).  ``dan_test`` is a tiny variant
for CI.

Output (:class:`~ferkit.models.output.FEROutput`):
    logits ``(B, classes)``; embedding ``(B, C)`` the globally pooled backbone map (what the
    reference's AffinityLoss pools from the map it is given); feature_map ``(B, C, H, W)``;
    attention ``"heads"`` ``(B, N, C)`` each head's output before fusion, ``"spatial"``
    ``(B, N, H, W)`` each head's spatial map (non-negative), ``"channel"`` ``(B, N, C)`` each
    head's sigmoid channel weights.

Example:
    >>> import torch, ferkit
    >>> model = ferkit.create_model("dan").eval()
    >>> out = model(torch.zeros(1, 3, 224, 224))
    >>> tuple(out.logits.shape), tuple(out.attention["spatial"].shape)
    ((1, 7), (1, 4, 7, 7))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ferkit.config import IMAGENET_DATA
from ferkit.errors import FerkitError
from ferkit.models.backbones import (
    RESNET18_CHANNELS,
    TimmBackbone,
    load_resnet18_trunk_weights,
    resnet18_trunk,
    trunk_stages,
)
from ferkit.models.convert import strip_prefix, unwrap
from ferkit.models.output import FEROutput
from ferkit.models.registry import register_model

__all__ = ["DAN", "ChannelAttention", "CrossAttentionHead", "SpatialAttention"]


def _conv_bn(in_ch: int, out_ch: int, kernel: tuple[int, int]) -> nn.Sequential:
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=padding), nn.BatchNorm2d(out_ch))


class SpatialAttention(nn.Module):
    """1x1 squeeze, then 3x3 + 1x3 + 3x1 expansions summed, ReLU, summed over channels.

    ``forward`` returns ``(x * map, map)`` with ``map`` of shape ``(B, 1, H, W)``.  Attribute
    names follow the reference so its checkpoints load by name.
    """

    def __init__(self, channels: int = 512) -> None:
        super().__init__()
        hidden = channels // 2
        self.conv1x1 = _conv_bn(channels, hidden, (1, 1))
        self.conv_3x3 = _conv_bn(hidden, channels, (3, 3))
        self.conv_1x3 = _conv_bn(hidden, channels, (1, 3))
        self.conv_3x1 = _conv_bn(hidden, channels, (3, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        squeezed = self.conv1x1(x)
        expanded = F.relu(self.conv_3x3(squeezed) + self.conv_1x3(squeezed)
                          + self.conv_3x1(squeezed))
        spatial = expanded.sum(dim=1, keepdim=True)
        return x * spatial, spatial


class ChannelAttention(nn.Module):
    """Global average pool, then an MLP C -> C/``reduction`` -> C with a sigmoid as weights.

    ``forward`` returns ``(pooled * weights, weights)``, both ``(B, C)``.
    """

    def __init__(self, channels: int = 512, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        # Sequential indices (0 Linear, 1 BN, 2 ReLU, 3 Linear, 4 Sigmoid) match the reference.
        self.attention = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pooled = x.mean(dim=(2, 3))
        weights = self.attention(pooled)
        return pooled * weights, weights


class CrossAttentionHead(nn.Module):
    """One DAN head: spatial attention followed by channel attention on its result."""

    def __init__(self, channels: int = 512, reduction: int = 16) -> None:
        super().__init__()
        self.sa = SpatialAttention(channels)
        self.ca = ChannelAttention(channels, reduction)
        self._init_weights()

    def _init_weights(self) -> None:
        # As the reference: He (fan_out) convs, unit BN, near-zero linears (std 1e-3).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, C, H, W)`` -> head output ``(B, C)``, spatial map ``(B, H, W)``,
        channel weights ``(B, C)``."""
        attended, spatial = self.sa(x)
        out, channel = self.ca(attended)
        return out, spatial[:, 0], channel


class DAN(nn.Module):
    """DAN on a ResNet-18 (faithful) or any timm trunk.

    Args:
        num_classes: number of expression classes.
        in_chans: input channels.
        num_head: number of cross-attention heads (the paper's best: 4).
        backbone: ``"resnet18"`` for the reference's torchvision trunk (``features.N.*`` keys,
            MS-Celeb weights loadable), or a timm model name (e.g. ``"convnext_tiny"``).
        backbone_weights: a ResNet-18 file or state dict in torchvision key names (the
            MS-Celeb-1M ``resnet18_msceleb.pth``) loaded into the trunk
            (:func:`~ferkit.models.backbones.load_resnet18_trunk_weights`); only for
            ``backbone="resnet18"``.
        reduction: channel-attention MLP reduction (16: 512 -> 32 -> 512 as the reference).
    """

    def __init__(
        self,
        *,
        num_classes: int = 7,
        in_chans: int = 3,
        num_head: int = 4,
        backbone: str = "resnet18",
        backbone_weights: str | Path | Mapping[str, Tensor] | None = None,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        if num_head < 1:
            raise FerkitError(f"DAN needs num_head >= 1, got {num_head}")
        self.num_classes = num_classes
        self.num_head = num_head
        if backbone == "resnet18":
            self.features: nn.Module = resnet18_trunk(in_chans)
            self.num_features = RESNET18_CHANNELS
            if backbone_weights is not None:
                load_resnet18_trunk_weights(self.features, backbone_weights)
        else:
            if backbone_weights is not None:
                raise FerkitError(
                    f"backbone_weights loads a torchvision ResNet-18 file; it does not apply to "
                    f"backbone={backbone!r}"
                )
            self.features = TimmBackbone(backbone, in_chans=in_chans)
            self.num_features = self.features.num_features
        self.heads = nn.ModuleList(
            CrossAttentionHead(self.num_features, reduction) for _ in range(num_head)
        )
        self.fc = nn.Linear(self.num_features, num_classes)
        self.bn = nn.BatchNorm1d(num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W)`` -> backbone map ``(B, C, H/32, W/32)``."""
        return self.features(x)

    def attend(self, feature_map: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """All heads on ``feature_map``: outputs ``(B, N, C)``, spatial maps ``(B, N, H, W)``,
        channel weights ``(B, N, C)``."""
        outs, spatial, channel = zip(*(head(feature_map) for head in self.heads), strict=True)
        return torch.stack(outs, 1), torch.stack(spatial, 1), torch.stack(channel, 1)

    def fuse(self, heads: Tensor) -> Tensor:
        """``(B, N, C)`` -> ``(B, C)``: log-softmax across heads (when N > 1), then the sum."""
        if heads.shape[1] > 1:
            heads = F.log_softmax(heads, dim=1)
        return heads.sum(dim=1)

    def forward_head(self, feature_map: Tensor, pre_logits: bool = False) -> Tensor:
        """Heads, fusion and classifier; ``pre_logits=True`` returns the fused ``(B, C)``."""
        fused = self.fuse(self.attend(feature_map)[0])
        return fused if pre_logits else self.bn(self.fc(fused))

    def forward(self, x: Tensor) -> FEROutput:
        feature_map = self.forward_features(x)
        heads, spatial, channel = self.attend(feature_map)
        logits = self.bn(self.fc(self.fuse(heads)))
        return FEROutput(
            logits=logits,
            embedding=feature_map.mean(dim=(2, 3)),
            feature_map=feature_map,
            attention={"heads": heads, "spatial": spatial, "channel": channel},
        )

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)
        self.bn = nn.BatchNorm1d(num_classes)

    def default_cam_layer(self) -> nn.Module:
        """The trunk's last stage (ResNet ``layer4``).  The reference's Grad-CAM script used
        each head's ``sa`` instead; pass that as ``target_layer`` to reproduce its figures."""
        if isinstance(self.features, TimmBackbone):
            return self.features.last_stage()
        return self.features[-1]

    def cam_layers(self) -> list[nn.Module]:
        """CAM candidates, deepest first: explainers hook the deepest whose map has enough
        cells at the model's input size (:func:`ferkit.explain.cam.default_target_layer`)."""
        if isinstance(self.features, TimmBackbone):
            return self.features.stages()
        return trunk_stages(self.features)


_REFERENCE_HEAD = re.compile(r"^cat_head(\d+)\.")


def checkpoint_filter(raw: dict[str, Any]) -> dict[str, Any]:
    """The reference's checkpoint -> ``DAN`` keys.

    Accepts ``{"model_state_dict": …}`` (what yaoing/DAN's training scripts save, beside
    ``optimizer_state_dict``), ``{"state_dict": …}`` or a plain state dict, with or without
    DataParallel's ``module.`` prefix; renames ``cat_head{i}.`` to ``heads.{i}.``.
    """
    state = strip_prefix(unwrap(raw, "model_state_dict", "state_dict"), "module.")
    return {_REFERENCE_HEAD.sub(r"heads.\1.", k): v for k, v in state.items()}


_REFERENCE = ("Wen et al., Distract Your Attention: Multi-head Cross Attention Network for "
              "Facial Expression Recognition, Biomimetics 2023; github.com/yaoing/DAN")


@register_model("dan", data=IMAGENET_DATA, reference=_REFERENCE,
                summary="DAN: ResNet-18 + multi-head cross attention (faithful, 19.7M params)",
                checkpoint_filter=checkpoint_filter)
def dan(*, num_classes: int = 7, in_chans: int = 3, num_head: int = 4,
        backbone_weights: str | Path | Mapping[str, Tensor] | None = None) -> DAN:
    """DAN; ``backbone_weights`` (init-only, see ``registry.INIT_ONLY_KWARGS``) is the
    MS-Celeb-1M ResNet-18 file or state dict the reference starts from."""
    return DAN(num_classes=num_classes, in_chans=in_chans, num_head=num_head,
               backbone_weights=backbone_weights)


@register_model("dan_convnext", data=IMAGENET_DATA, reference=_REFERENCE,
                summary="DAN heads (768 ch) on a ConvNeXt-Tiny trunk")
def dan_convnext(*, num_classes: int = 7, in_chans: int = 3, num_head: int = 4,
                 backbone: str = "convnext_tiny") -> DAN:
    return DAN(num_classes=num_classes, in_chans=in_chans, num_head=num_head, backbone=backbone)


@register_model("dan_test", data=IMAGENET_DATA.replace(input_size=(3, 64, 64)),
                summary="tiny DAN for tests (timm test_convnext trunk, 64 ch)", test_only=True)
def dan_test(*, num_classes: int = 7, in_chans: int = 3, num_head: int = 2) -> DAN:
    return DAN(num_classes=num_classes, in_chans=in_chans, num_head=num_head,
               backbone="test_convnext")
