"""Deep-Emotion: an attentional (spatial-transformer) CNN for 48x48 grayscale faces.

"Deep-Emotion: Facial Expression Recognition Using Attentional Convolutional Network",
S. Minaee, M. Minaei and A. Abdolrashidi, Sensors 21(9), 2021.  Reference code:
github.com/omarsayed7/Deep-Emotion (``deep_emotion.py``).

Layer by layer as the reference (66,877 parameters with 7 classes), with the same
attribute names so its plain ``state_dict`` loads unchanged:

* ``localization`` (conv 1->8 k7, maxpool 2, ReLU, conv 8->10 k5, maxpool 2, ReLU) and
  ``fc_loc`` (640 -> 32 -> 6, the last layer initialised to the identity transform)
  predict an affine ``theta``; the input is resampled with it (spatial transformer).
* ``conv1``-``conv4`` (10 channels, 3x3), ``pool2``/``pool4``, BatchNorm ``norm`` after
  ``conv4``; dropout p=0.5; ``fc1`` 810 -> 50, ``fc2`` 50 -> num_classes.

What differs from the reference, and why:

* **Dropout respects eval mode.**  The reference calls ``F.dropout(out)`` whose
  ``training`` flag defaults to True, so its predictions are random even after
  ``model.eval()``.  Here it is an ``nn.Dropout(0.5)`` module: identical in training,
  off (deterministic) in eval.
* ``affine_grid``/``grid_sample`` are called with ``align_corners=False`` explicitly:
  the default of every torch since 1.3 (which the reference ran on), without the warning.
* ``fc2``'s width follows ``num_classes`` (the reference hard-codes 7).

Example:
    >>> import torch, ferkit
    >>> model = ferkit.create_model("deep_emotion").eval()
    >>> out = model(torch.zeros(2, 1, 48, 48))
    >>> tuple(out.logits.shape), tuple(out.attention["theta"].shape)
    ((2, 7), (2, 2, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ferkit.config import GRAY48_DATA
from ferkit.errors import FerkitError
from ferkit.models.convert import strip_prefix, unwrap
from ferkit.models.output import FEROutput
from ferkit.models.registry import register_model

INPUT_SIDE = 48


class DeepEmotion(nn.Module):
    """Spatial transformer + small CNN on ``(B, 1, 48, 48)`` faces.

    Args:
        num_classes: number of expression classes.
        drop_rate: dropout before ``fc1`` (the reference's ``F.dropout`` default, 0.5).
    """

    def __init__(self, *, num_classes: int = 7, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 50
        self.conv1 = nn.Conv2d(1, 10, 3)
        self.conv2 = nn.Conv2d(10, 10, 3)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(10, 10, 3)
        self.conv4 = nn.Conv2d(10, 10, 3)
        self.pool4 = nn.MaxPool2d(2, 2)
        self.norm = nn.BatchNorm2d(10)
        self.dropout = nn.Dropout(drop_rate)
        self.fc1 = nn.Linear(810, 50)
        self.fc2 = nn.Linear(50, num_classes)
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
        )
        self.fc_loc = nn.Sequential(nn.Linear(640, 32), nn.ReLU(True), nn.Linear(32, 6))
        # Start from the identity warp, so early training sees the face unchanged.
        nn.init.zeros_(self.fc_loc[2].weight)
        with torch.no_grad():
            self.fc_loc[2].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def stn(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(warped input (B, 1, 48, 48), theta (B, 2, 3))``."""
        if x.shape[-3:] != (1, INPUT_SIDE, INPUT_SIDE):
            raise FerkitError(
                f"Deep-Emotion takes (B, 1, 48, 48) grayscale faces, got {tuple(x.shape)}; "
                "use ferkit.data.transforms.eval_transform(model.ferkit_config.data)"
            )
        theta = self.fc_loc(self.localization(x).flatten(1)).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False), theta

    def _convs(self, warped: Tensor) -> Tensor:
        out = F.relu(self.conv1(warped))
        out = F.relu(self.pool2(self.conv2(out)))
        out = F.relu(self.conv3(out))
        return F.relu(self.pool4(self.norm(self.conv4(out))))

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, 10, 9, 9)``: the last conv block's map, computed on the warped input."""
        return self._convs(self.stn(x)[0])

    def forward_head(self, feature_map: Tensor, pre_logits: bool = False) -> Tensor:
        hidden = F.relu(self.fc1(self.dropout(feature_map).flatten(1)))
        return hidden if pre_logits else self.fc2(hidden)

    def forward(self, x: Tensor) -> FEROutput:
        warped, theta = self.stn(x)
        feature_map = self._convs(warped)
        embedding = self.forward_head(feature_map, pre_logits=True)
        return FEROutput(logits=self.fc2(embedding), embedding=embedding,
                         feature_map=feature_map,
                         attention={"theta": theta, "warped": warped})

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc2 = nn.Linear(self.num_features, num_classes)

    def default_cam_layer(self) -> nn.Module:
        return self.conv4


def checkpoint_filter(raw: dict[str, Any]) -> dict[str, Tensor]:
    """The reference saves ``net.state_dict()`` as is (``conv1.weight`` … ``fc_loc.2.bias``);
    a ``module.`` prefix (DataParallel) or a ``{"state_dict": …}`` wrapper is tolerated."""
    state = strip_prefix(unwrap(raw, "model_state_dict", "state_dict"), "module.")
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


@register_model(
    "deep_emotion",
    data=GRAY48_DATA,
    summary="48x48 grayscale spatial-transformer CNN (Deep-Emotion)",
    reference="Minaee, Minaei & Abdolrashidi, Deep-Emotion: Facial Expression Recognition "
    "Using Attentional Convolutional Network, Sensors 2021; github.com/omarsayed7/Deep-Emotion",
    checkpoint_filter=checkpoint_filter,
)
def deep_emotion(*, num_classes: int = 7, in_chans: int = 1,
                 input_size: Sequence[int] = (INPUT_SIDE, INPUT_SIDE),
                 drop_rate: float = 0.5) -> DeepEmotion:
    if in_chans != 1 or tuple(int(v) for v in input_size) != (INPUT_SIDE, INPUT_SIDE):
        raise FerkitError(
            f"deep_emotion is fixed to 1x48x48 grayscale input (its layer sizes depend on it); "
            f"got in_chans={in_chans}, input_size={tuple(input_size)}. Leave input_size unset "
            "or pick an architecture such as 'baseline' for other sizes"
        )
    return DeepEmotion(num_classes=num_classes, drop_rate=drop_rate)
