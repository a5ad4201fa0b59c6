"""Feature extractors shared by the architectures.

* :func:`resnet18_trunk` is torchvision's ResNet-18 cut before ``avgpool``, as an
  ``nn.Sequential`` of its children: exactly what DAN, DACL and DSAN's references build,
  so their checkpoints' ``features.N.*`` keys and the MS-Celeb-1M ``state_dict``
  (torchvision key names) load without renaming.
* :func:`load_resnet18_trunk_weights` loads the MS-Celeb-1M ResNet-18 that DAN, DACL and
  DSAN start from (a torchvision-keyed ``{"state_dict": …}`` file) into such a trunk.
* :class:`TimmBackbone` wraps any timm model as an unpooled feature-map extractor, so a
  timm backbone can stand wherever an architecture only needs "a map with C channels".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from ferkit.errors import CheckpointError, FerkitError

RESNET18_CHANNELS = 512


def resnet18_trunk(in_chans: int = 3, *, stem_pool: bool = True,
                   stem_stride: int = 2, output_stride: int = 32) -> nn.Sequential:
    """ResNet-18 without ``avgpool``/``fc``: ``(B, in_chans, H, W) -> (B, 512, H/32, W/32)``.

    ``stem_pool=False`` replaces the stem's max-pool with an identity, so the map is
    ``H/16 x W/16``: for small faces (FER2013's 48x48 gives a 3x3 final map instead of 2x2).
    ``stem_stride=1`` (with ``stem_pool=False``) makes it ``H/8 x W/8``: a 6x6 map for a
    48x48 face, the resolution FER2013 models above 72 % keep and a Grad-CAM can resolve.
    ``output_stride=16`` or ``8`` replaces the stride of ``layer4`` (and ``layer3``) with
    dilation (Chen et al., DeepLab): the map is 2x or 4x denser while every unit keeps the
    receptive field it was trained with, so weights trained at stride 32 still fit (a 6x6 map
    for a 48x48 face from the default stem at ~3.5x its compute, where ``stem_stride=1``
    costs ~14x).  None of these options changes a weight's shape, so the state dict (and
    every checkpoint) is the same.
    """
    if stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    net = resnet18(weights=None)
    if in_chans != 3 or stem_stride != 2:
        net.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=stem_stride, padding=3,
                              bias=False)
    if not stem_pool:
        net.maxpool = nn.Identity()
    dilated = {32: (), 16: (net.layer4,), 8: (net.layer3, net.layer4)}[output_stride]
    dilation = 1
    for layer in dilated:
        entry, dilation = dilation, dilation * 2
        for i, block in enumerate(layer):
            _dilate(block.conv1, entry if i == 0 else dilation)
            _dilate(block.conv2, dilation)
            if block.downsample is not None:
                block.downsample[0].stride = (1, 1)
    return nn.Sequential(*list(net.children())[:-2])


def trunk_stages(trunk: nn.Sequential) -> list[nn.Module]:
    """The four residual stages of a :func:`resnet18_trunk`, deepest first (``layer4`` …
    ``layer1``): the layers a CAM can hook, from the coarsest map to the finest."""
    return [trunk[i] for i in (7, 6, 5, 4)]


def _dilate(conv: nn.Conv2d, dilation: int) -> None:
    """Make a 3x3 convolution stride 1 with ``dilation`` (and the padding that keeps size)."""
    conv.stride, conv.dilation, conv.padding = (1, 1), (dilation, dilation), (dilation, dilation)


#: torchvision ResNet child name -> index in :func:`resnet18_trunk`'s ``nn.Sequential``
#: (2 = relu and 3 = maxpool have no weights; ``avgpool``/``fc`` are cut).
_RESNET_CHILD_INDEX = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}


def load_resnet18_trunk_weights(
    trunk: nn.Sequential, weights: str | Path | Mapping[str, Tensor]
) -> nn.Sequential:
    """Load a torchvision-keyed ResNet-18 (e.g. the MS-Celeb-1M face model) into ``trunk``.

    ``weights`` is a file (``.pth``/``.pt`` read without unpickling code, or
    ``.safetensors``) or a state dict.  Accepted layouts: the MS-Celeb-1M release's
    ``{"state_dict": {...}}``, a plain torchvision ``resnet18().state_dict()``, either with
    DataParallel's ``module.`` prefix.  ``fc.*`` is ignored (the identity classifier);
    every other key must match exactly, else :class:`~ferkit.errors.CheckpointError`
    names the missing, unexpected and mis-shaped keys.  BatchNorm ``num_batches_tracked``
    counters, absent from files saved by old PyTorch, are set to 0 as PyTorch itself does.

    DAN, DACL and DSAN all start from this model; their builders take it as
    ``backbone_weights=<path>``.

    Example:
        >>> trunk = resnet18_trunk()
        >>> from torchvision.models import resnet18
        >>> _ = load_resnet18_trunk_weights(trunk, {"state_dict": resnet18().state_dict()})
    """
    from ferkit.checkpoint import read_state_dict

    source = str(weights) if isinstance(weights, (str, Path)) else "the given state dict"
    raw = read_state_dict(weights) if isinstance(weights, (str, Path)) else weights
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{source} does not hold a state dict (got {type(raw).__name__})")
    nested = raw.get("state_dict")
    state = {k.removeprefix("module."): v
             for k, v in (nested if isinstance(nested, Mapping) else raw).items()
             if not k.removeprefix("module.").startswith("fc.")}

    index_to_child = {str(i): name for name, i in _RESNET_CHILD_INDEX.items()}
    expected = {}  # torchvision name -> trunk name
    for key in trunk.state_dict():
        index, _, rest = key.partition(".")
        expected[f"{index_to_child[index]}.{rest}"] = key
    own = trunk.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = {k: (tuple(getattr(state[k], "shape", ())), tuple(own[t].shape))
              for k, t in expected.items() if k in state}
    mismatched = [f"{k} (file {f} vs model {m})" for k, (f, m) in shapes.items() if f != m]
    if missing or unexpected or mismatched:
        parts = [f"{label} {len(keys)}: {', '.join(keys[:6])}{' …' if len(keys) > 6 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches", mismatched)) if keys]
        raise CheckpointError(
            f"{source} does not fit a ResNet-18 trunk (torchvision key names, optionally under "
            f"'state_dict'; fc.* ignored): {'; '.join(parts)}"
        )
    mapped = {
        trunk_key: state[tv_key].to(own[trunk_key].dtype) if tv_key in state
        else torch.zeros_like(own[trunk_key])  # num_batches_tracked absent in old saves
        for tv_key, trunk_key in expected.items()
    }
    trunk.load_state_dict(mapped, strict=True)
    return trunk


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
        self._drop_classifier_head()
        self.name = name
        self.num_features: int = int(self.body.num_features)

    def _drop_classifier_head(self) -> None:
        # num_classes=0 only empties the last Linear: a head's own norm (ConvNeXt's
        # head.norm) stays, never used by forward_features, and would sit in the state dict
        # as dead weights (and break DDP without find_unused_parameters).  timm names the
        # classifier in pretrained_cfg; its top-level module belongs to forward_head only.
        names = self.body.pretrained_cfg.get("classifier") or ()
        for name in (names,) if isinstance(names, str) else names:
            top = name.split(".")[0]
            if isinstance(getattr(self.body, top, None), nn.Module):
                setattr(self.body, top, nn.Identity())

    def last_stage(self) -> nn.Module:
        """The module producing the final map (timm's last ``feature_info`` entry): Grad-CAM's
        default target layer."""
        return self.body.get_submodule(self.body.feature_info[-1]["module"])

    def stages(self) -> list[nn.Module]:
        """Every module timm lists in ``feature_info``, deepest first (CAM candidates)."""
        info = self.body.feature_info
        return [self.body.get_submodule(info[i]["module"]) for i in reversed(range(len(info)))]

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
