"""DACL: Deep Attentive Center Loss (Farzaneh & Qi, WACV 2021).

"Facial Expression Recognition in the Wild via Deep Attentive Center Loss",
A. H. Farzaneh and X. Qi, WACV 2021.  Reference code: github.com/amirhfarzaneh/dacl
(``models/resnet.py``, ``loss.py``).

Layer by layer as the reference (103,042,311 parameters with 7 classes):

* ``features``: ResNet-18 cut before ``avgpool`` -> ``(B, 512, 7, 7)`` for 224x224 input.
* ``attention``: an MLP over the *flattened* last map, 25088 -> 3584 -> 512 -> 64, each
  Linear followed by BatchNorm1d, ReLU after the first two and tanh after the last.
* ``attention_heads``: Linear 64 -> 1024, read as 512 two-way logits; a softmax over each
  pair and its second entry is the weight of one feature element: ``(B, 512)`` in (0, 1).
* ``fc``: Linear 512 -> num_classes on the average-pooled feature.

The attention weights do **not** touch the logits: as in the paper they only weight the
sparse centre loss (:class:`ferkit.losses.SparseCenterLoss`), read from
``output.attention["element_weights"]`` together with ``output.embedding``.

What differs from the reference, and why:

* The trunk is :func:`ferkit.models.backbones.resnet18_trunk` (a ``features`` Sequential)
  instead of the reference's inlined ResNet; :func:`checkpoint_filter` renames the
  reference's torchvision-style keys (``conv1``, ``layer4.1.bn2`` …) onto it, so reference
  checkpoints import unchanged in value.
* The attention MLP's input width follows the input size (``512 * h * w`` of the last map);
  at the reference's 224x224 it is the reference's 25,088.

Preprocessing (``DACL_DATA``) is the reference's: its normalisation (mean 0.5752, 0.4495,
0.4012; std 0.2086, 0.1911, 0.1827) and, at evaluation, ``Resize(256)`` + ``CenterCrop(224)``
(``crop_pct`` 0.875), so imported reference weights see what they were validated on.

Example:
    >>> import torch, ferkit
    >>> model = ferkit.create_model("dacl").eval()          # doctest: +SKIP
    >>> out = model(torch.randn(2, 3, 224, 224))            # doctest: +SKIP
    >>> out.attention["element_weights"].shape              # doctest: +SKIP
    torch.Size([2, 512])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ferkit.config import IMAGENET_DATA
from ferkit.errors import FerkitError
from ferkit.models.backbones import RESNET18_CHANNELS, resnet18_trunk, trunk_stages
from ferkit.models.convert import strip_prefix, unwrap
from ferkit.models.output import FEROutput
from ferkit.models.registry import register_model

#: torchvision ResNet child names -> index in :func:`resnet18_trunk`'s Sequential.
_TORCHVISION_TRUNK_INDEX = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6,
                            "layer4": 7}


def resnet_map_side(side: int) -> int:
    """Side of ResNet-18's last map for an input side: five stride-2 stages, each
    ``floor((s - 1) / 2) + 1`` (conv1, maxpool, layer2-4)."""
    for _ in range(5):
        side = (side - 1) // 2 + 1
    return side


class DACL(nn.Module):
    """ResNet-18 + DACL's attention network (element weights for the sparse centre loss).

    Args:
        num_classes: number of expression classes.
        in_chans: input channels (the reference uses 3).
        input_size: ``(H, W)`` of the input; sets the attention MLP's input width
            (25,088 at the reference's 224x224).
    """

    def __init__(self, *, num_classes: int = 7, in_chans: int = 3,
                 input_size: Sequence[int] = (224, 224)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = RESNET18_CHANNELS
        self.map_size = (resnet_map_side(int(input_size[0])), resnet_map_side(int(input_size[1])))
        flat = RESNET18_CHANNELS * self.map_size[0] * self.map_size[1]
        self.features = resnet18_trunk(in_chans)
        self.attention = nn.Sequential(
            nn.Linear(flat, 3584),
            nn.BatchNorm1d(3584),
            nn.ReLU(inplace=True),
            nn.Linear(3584, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 64),
            nn.BatchNorm1d(64),
            nn.Tanh(),
        )
        # Two logits per feature element: "keep" vs "ignore" (softmax over each pair).
        self.attention_heads = nn.Linear(64, 2 * self.num_features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The reference's init: Kaiming for convs (fan_out) and the attention's linears, zero
        # biases.  Its init loop runs before ``fc`` exists (and main.py replaces ``fc`` by a
        # fresh ``nn.Linear``), so ``fc`` keeps PyTorch's default init, as here.
        for m in self.modules():
            if m is self.fc:
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, feature_map: Tensor, pre_logits: bool = False) -> Tensor:
        pooled = self.pool(feature_map).flatten(1)
        return pooled if pre_logits else self.fc(pooled)

    def element_weights(self, feature_map: Tensor) -> Tensor:
        """``(B, 512)`` attention weight of each pooled feature element, in (0, 1)."""
        if feature_map.shape[-2:] != self.map_size:
            raise FerkitError(
                f"DACL was built for a {self.map_size[0]}x{self.map_size[1]} feature map but "
                f"got {tuple(feature_map.shape[-2:])}; feed images of the model's input_size "
                "or build it with create_model('dacl', input_size=(3, H, W))"
            )
        pairs = self.attention_heads(self.attention(feature_map.flatten(1)))
        return pairs.view(-1, self.num_features, 2).softmax(dim=-1)[..., 1]

    def forward(self, x: Tensor) -> FEROutput:
        feature_map = self.forward_features(x)
        embedding = self.forward_head(feature_map, pre_logits=True)
        return FEROutput(
            logits=self.fc(embedding),
            embedding=embedding,
            feature_map=feature_map,
            attention={"element_weights": self.element_weights(feature_map)},
        )

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)

    def default_cam_layer(self) -> nn.Module:
        return self.features[-1]

    def cam_layers(self) -> list[nn.Module]:
        """CAM candidates, deepest first: explainers hook the deepest whose map has enough
        cells at the model's input size (:func:`ferkit.explain.cam.default_target_layer`)."""
        return trunk_stages(self.features)


def checkpoint_filter(raw: dict[str, Any]) -> dict[str, Tensor]:
    """The reference's saved dict -> this model's state dict.

    The reference saves ``{"epoch": …, "model_state_dict": DataParallel(model).state_dict()}``:
    keys ``module.conv1.weight``, ``module.layer4.1.bn2.running_var``,
    ``module.attention.0.weight``, ``module.fc.bias`` ….  A bare state dict (with or
    without ``module.``) is accepted too.
    """
    raw = strip_prefix(unwrap(raw, "model_state_dict", "state_dict"), "module.")
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. a stray "epoch" beside the tensors
        head, _, rest = key.partition(".")
        if head in _TORCHVISION_TRUNK_INDEX:
            key = f"features.{_TORCHVISION_TRUNK_INDEX[head]}.{rest}"
        state[key] = value
    return state


#: The reference's preprocessing (main.py): its RAF-DB statistics and Resize(256) +
#: CenterCrop(224) at evaluation.
DACL_DATA = IMAGENET_DATA.replace(mean=(0.5752, 0.4495, 0.4012), std=(0.2086, 0.1911, 0.1827),
                                  crop_pct=0.875)


@register_model(
    "dacl",
    data=DACL_DATA,
    summary="ResNet-18 + attention over feature elements for the sparse centre loss",
    reference="Farzaneh & Qi, Facial Expression Recognition in the Wild via Deep Attentive "
    "Center Loss, WACV 2021; github.com/amirhfarzaneh/dacl",
    checkpoint_filter=checkpoint_filter,
)
def dacl(*, num_classes: int = 7, in_chans: int = 3, input_size: Sequence[int] = (224, 224),
         backbone_weights: str | Path | Mapping[str, Tensor] | None = None) -> DACL:
    """DACL; ``backbone_weights`` is a ResNet-18 checkpoint (e.g. the MS-Celeb-1M
    ``resnet18_msceleb.pth`` in torchvision key names, or its state dict) loaded into the
    trunk; init-only, recorded in the config's provenance, not its kwargs."""
    model = DACL(num_classes=num_classes, in_chans=in_chans, input_size=input_size)
    if backbone_weights is not None:
        from ferkit.models.backbones import load_resnet18_trunk_weights

        load_resnet18_trunk_weights(model.features, backbone_weights)
    return model
