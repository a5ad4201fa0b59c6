"""Plain backbone + linear head: the softmax / centre-loss baselines of the DACL paper.

Any timm backbone works (``backbone="resnet18"``, ``"convnext_tiny"``, ``"efficientnet_b0"``
…).  ``embedding`` is the globally pooled feature, which a centre loss can pull together
(the "softmax + center loss" baseline of Farzaneh & Qi, WACV 2021, Table 2).
"""

from __future__ import annotations

from torch import Tensor, nn

from ferkit.config import IMAGENET_DATA
from ferkit.models.backbones import TimmBackbone
from ferkit.models.output import FEROutput
from ferkit.models.registry import register_model


class BaselineClassifier(nn.Module):
    """timm backbone → global average pool → dropout → linear.

    Args:
        num_classes: number of expression classes.
        in_chans: input channels.
        backbone: timm model name.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth inside the backbone, where supported.
    """

    def __init__(
        self,
        *,
        num_classes: int = 7,
        in_chans: int = 3,
        backbone: str = "resnet18",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = TimmBackbone(backbone, in_chans=in_chans, drop_path_rate=drop_path_rate)
        self.num_features = self.backbone.num_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward_head(self, feature_map: Tensor, pre_logits: bool = False) -> Tensor:
        pooled = self.pool(feature_map).flatten(1)
        return pooled if pre_logits else self.fc(self.dropout(pooled))

    def forward(self, x: Tensor) -> FEROutput:
        feature_map = self.forward_features(x)
        embedding = self.forward_head(feature_map, pre_logits=True)
        return FEROutput(logits=self.fc(self.dropout(embedding)), embedding=embedding,
                         feature_map=feature_map)

    def default_cam_layer(self) -> nn.Module:
        """Grad-CAM's default layer: the backbone, whose output is the final feature map."""
        return self.backbone

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)


@register_model(
    "baseline",
    data=IMAGENET_DATA,
    summary="any timm backbone + linear head (softmax / centre-loss baselines)",
    reference="Farzaneh & Qi, Facial Expression Recognition in the Wild via Deep Attentive "
    "Center Loss, WACV 2021 (baselines)",
)
def baseline(*, num_classes: int = 7, in_chans: int = 3, backbone: str = "resnet18",
             drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> BaselineClassifier:
    return BaselineClassifier(num_classes=num_classes, in_chans=in_chans, backbone=backbone,
                              drop_rate=drop_rate, drop_path_rate=drop_path_rate)


@register_model(
    "baseline_test",
    data=IMAGENET_DATA.replace(input_size=(3, 32, 32)),
    summary="tiny baseline for tests (timm test_resnet-sized)",
    test_only=True,
)
def baseline_test(*, num_classes: int = 7, in_chans: int = 3,
                  backbone: str = "resnet10t") -> BaselineClassifier:
    return BaselineClassifier(num_classes=num_classes, in_chans=in_chans, backbone=backbone)
