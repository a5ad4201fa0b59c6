"""Feature extractors shared by the architectures.

* :func:`resnet18_trunk` is torchvision's ResNet-18 cut before ``avgpool``, as an
  ``nn.Sequential`` of its children: exactly what DAN, DACL and DSAN's references build,
  so their checkpoints' ``features.N.*`` keys and the MS-Celeb-1M ``state_dict``
  (torchvision key names) load without renaming.
* :class:`TimmBackbone` wraps any timm model as an unpooled feature-map extractor, so a
  timm backbone can stand wherever an architecture only needs "a map with C channels".
"""

from __future__ import annotations

import timm
import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from ferkit.errors import FerkitError

RESNET18_CHANNELS = 512


def resnet18_trunk(in_chans: int = 3) -> nn.Sequential:
    """ResNet-18 without ``avgpool``/``fc``: ``(B, in_chans, H, W) -> (B, 512, H/32, W/32)``."""
    net = resnet18(weights=None)
    if in_chans != 3:
        net.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return nn.Sequential(*list(net.children())[:-2])


class TimmBackbone(nn.Module):
    """Any timm model as a feature-map extractor: ``forward`` returns ``(B, C, H, W)``.

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``"convnext_tiny"``.
        in_chans: input channels (1 for grayscale).
        drop_path_rate: stochastic depth, for backbones that support it.
    """

    def __init__(self, name: str, *, in_chans: int = 3, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        kwargs = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
        try:
            self.body = timm.create_model(
                name, pretrained=False, num_classes=0, global_pool="", in_chans=in_chans, **kwargs
            )
        except RuntimeError as exc:
            # timm raises RuntimeError("Unknown model (...)") for bad names.
            close = timm.list_models(f"*{name.split('.')[0][:6]}*")[:5]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise FerkitError(f"timm has no backbone {name!r}{hint}") from exc
        self.name = name
        self.num_features: int = int(self.body.num_features)

    def forward(self, x: Tensor) -> Tensor:
        features = self.body.forward_features(x)
        if features.ndim == 3:
            # Token outputs (ViT-style): drop prefix tokens and fold the rest into a grid.
            prefix = getattr(self.body, "num_prefix_tokens", 0)
            tokens = features[:, prefix:]
            side = int(tokens.shape[1] ** 0.5)
            features = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)
        elif features.ndim == 4 and features.shape[1] != self.num_features:
            # Channels-last outputs (some Swin variants).
            features = features.permute(0, 3, 1, 2)
        return features


@torch.no_grad()
def feature_map_size(backbone: nn.Module, in_chans: int, input_size: tuple[int, int]) -> tuple:
    """``(C, H, W)`` of ``backbone``'s output for one input of ``input_size``."""
    was_training = backbone.training
    backbone.eval()
    out = backbone(torch.zeros(1, in_chans, *input_size))
    backbone.train(was_training)
    return tuple(out.shape[1:])
