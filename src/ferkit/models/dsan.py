"""DSAN: a dual-stream attention network, designed by ferkit from the paper's abstract.

"A dual stream attention network for facial expression recognition in the wild",
H. Tang, Y. Li and Z. Jin, International Journal of Machine Learning and Cybernetics,
2024 (doi:10.1007/s13042-024-02287-0).  **No public code exists**; the abstract gives:
two streams, a *Global Feature Element-based Attention Network* (GFE-AN: a sparse
attention block plus a feature recalibration loss that emphasise expression-relevant
feature elements and suppress the others) and a *Multi-Feature Fusion-based Attention
Network* (MFF-AN: a lightweight local-feature attention block over several
representation sub-spaces); 11.33M parameters; 89.70% on RAF-DB.  Everything below that
is more specific than that is **our design choice** (also in docs/models.md):

1. Trunk: ResNet-18 cut before ``avgpool`` (:func:`~ferkit.models.backbones.resnet18_trunk`,
   11,176,512 parameters): the paper's parameter budget only fits a ResNet-18 trunk plus
   ~150k parameters of heads.  Input 3x224x224 with ImageNet statistics (the paper's
   input size is not in the abstract; 224 is what DAN and DACL, its baselines, use).
2. GFE-AN (global stream): ``g`` = global average pool of the map, ``(B, 512)``.  The
   sparse attention block is a bottleneck MLP 512 -> 64 (no bias) -> BatchNorm -> ReLU ->
   512 giving one score per element, turned into weights ``w`` by **sparsemax**
   (Martins & Astudillo, 2016): a projection onto the simplex that sets irrelevant
   elements to exactly zero, which is what "sparse attention over feature elements"
   asks for.  The recalibrated feature is ``g' = g * (D * w)`` (D = 512), so uniform
   weights leave ``g`` unchanged.  The MLP's last layer starts at zero, so the block
   starts as the identity recalibration (like an STN's identity init) and learns to
   sparsify.  ``gfe_fc`` (512 -> K) classifies ``g'``.
3. Feature recalibration loss (:class:`ferkit.losses.FeatureRecalibrationLoss`): the
   same classifier applied to the *un*-recalibrated ``g`` gives ``plain`` logits; the loss
   is a hinge asking the recalibrated feature to be at least ``margin`` more confident in
   the true class than the plain one (plain side detached, so only the attention and
   the shared path are pushed, never the plain feature made worse).  The model returns
   both logit sets in ``attention["gfe_logits"]`` / ``attention["gfe_plain_logits"]``.
4. MFF-AN (local stream): the 512 channels are split into S = 4 sub-spaces of 128
   (the "representation sub-spaces", as heads in multi-head attention).  Per sub-space,
   lightweight by construction: a grouped 1x1 projection (BN, ReLU), a depthwise 3x3
   convolution (BN) for local context, and a grouped 1x1 convolution to one score map,
   sigmoid -> ``mff_maps`` ``(B, S, H, W)``.  Each sub-space's projected features are
   multiplied by its map and average-pooled; the S pooled features are concatenated
   (the multi-feature fusion) into ``l`` ``(B, 512)``; ``mff_fc`` (512 -> K) classifies it.
5. Output: ``logits = (gfe_logits + mff_logits) / 2`` (equal-weight late fusion of the two
   streams); ``embedding = cat(g', l)`` ``(B, 1024)``; ``feature_map`` = the trunk's map.

Parameters with 7 classes: 11,322,578 (paper: 11.33M).

Example:
    >>> import torch, ferkit
    >>> model = ferkit.create_model("dsan").eval()          # doctest: +SKIP
    >>> out = model(torch.randn(2, 3, 224, 224))            # doctest: +SKIP
    >>> out.attention["mff_maps"].shape                     # doctest: +SKIP
    torch.Size([2, 4, 7, 7])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from ferkit.config import IMAGENET_DATA
from ferkit.errors import FerkitError
from ferkit.models.backbones import RESNET18_CHANNELS, resnet18_trunk, trunk_stages
from ferkit.models.output import FEROutput
from ferkit.models.registry import register_model


def sparsemax(scores: Tensor, dim: int = -1) -> Tensor:
    """Euclidean projection of ``scores`` onto the probability simplex along ``dim``.

    Like softmax it returns non-negative weights summing to 1, but low scores get exactly
    0 (Martins & Astudillo, ICML 2016).  Plain autograd: the threshold is a function of
    the sorted scores, and its gradient is the published sparsemax Jacobian.

    Example:
        >>> import torch
        >>> sparsemax(torch.tensor([2.0, 1.0, -1.0])).tolist()
        [1.0, 0.0, 0.0]
        >>> sparsemax(torch.tensor([0.5, 0.3, -1.0])).tolist()
        [0.6000000238418579, 0.4000000059604645, 0.0]
    """
    scores = scores.transpose(dim, -1)
    sorted_scores, _ = scores.sort(dim=-1, descending=True)
    ks = torch.arange(1, scores.shape[-1] + 1, device=scores.device, dtype=scores.dtype)
    cumulative = sorted_scores.cumsum(dim=-1)
    # Support = the k largest scores with 1 + k * z_(k) > sum_{j<=k} z_(j).
    in_support = 1 + ks * sorted_scores > cumulative
    support_size = in_support.sum(dim=-1, keepdim=True)
    tau = (cumulative.gather(-1, support_size - 1) - 1) / support_size.to(scores.dtype)
    return (scores - tau).clamp(min=0).transpose(dim, -1)


class SparseElementAttention(nn.Module):
    """GFE-AN's sparse attention block: ``(B, D)`` feature -> ``(B, D)`` sparsemax weights.

    ``min_support > 0`` bounds the sparsemax input: ``tanh(scores) / (2 * min_support)``.
    Every score then lies within ``1 / min_support`` of every other, and since the support's
    ``k`` elements share a total mass of 1 with each contributing at most that spread,
    ``k >= min_support`` for every face: the attention stays sparse (sparsemax still zeroes
    the low scores) but cannot collapse onto one or two elements.  ``min_support=0`` is the
    original design (raw scores), whose trained model put all weight on the same 2 of 512
    elements for every face, driven by a constant bias (docs/models.md#dsan).
    """

    def __init__(self, dim: int = RESNET18_CHANNELS, hidden: int = 64, *,
                 min_support: int = 0) -> None:
        super().__init__()
        if not 0 <= min_support <= dim:
            raise FerkitError(f"GFE-AN: min_support must be in 0..{dim}, got {min_support}")
        self.min_support = min_support
        self.score = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, dim),
        )
        # All-equal scores -> uniform weights -> g' == g at the start of training.
        nn.init.zeros_(self.score[-1].weight)
        nn.init.zeros_(self.score[-1].bias)

    def forward(self, feature: Tensor) -> Tensor:
        scores = self.score(feature)
        if self.min_support:
            scores = torch.tanh(scores) / (2 * self.min_support)
        return sparsemax(scores, dim=-1)


class LocalFeatureAttention(nn.Module):
    """MFF-AN's lightweight local-feature attention over ``subspaces`` channel groups.

    Returns ``(fused (B, C), maps (B, S, H, W))``.
    """

    def __init__(self, channels: int = RESNET18_CHANNELS, subspaces: int = 4) -> None:
        super().__init__()
        if channels % subspaces:
            raise FerkitError(f"MFF-AN: {channels} channels do not split into {subspaces} "
                              "equal sub-spaces; pick a divisor")
        self.subspaces = subspaces
        self.project = nn.Sequential(
            nn.Conv2d(channels, channels, 1, groups=subspaces, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.local_context = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.score = nn.Conv2d(channels, subspaces, 1, groups=subspaces)

    def forward(self, feature_map: Tensor) -> tuple[Tensor, Tensor]:
        projected = self.project(feature_map)
        maps = self.score(self.local_context(projected)).sigmoid()
        b, c, h, w = projected.shape
        grouped = projected.view(b, self.subspaces, c // self.subspaces, h, w)
        fused = (grouped * maps.unsqueeze(2)).mean(dim=(-2, -1)).flatten(1)
        return fused, maps


class DSAN(nn.Module):
    """ResNet-18 + GFE-AN (sparse element attention) + MFF-AN (sub-space local attention).

    Args:
        num_classes: number of expression classes.
        in_chans: input channels.
        gfe_hidden: bottleneck width of the sparse attention block.
        subspaces: number of MFF-AN representation sub-spaces (S).
        stem_pool: keep the trunk's stem max-pool; ``False`` halves the trunk's total
            stride to 16 for small inputs (48x48 FER2013 faces: a 3x3 map, not 2x2).
        stem_stride: 1 (with ``stem_pool=False``) keeps the stem at full resolution: a 6x6
            map for 48x48 faces, at about 4x the compute of ``stem_pool=False`` alone.
        output_stride: 32, 16 or 8: dilate the trunk's last stages instead of striding
            (:func:`~ferkit.models.backbones.resnet18_trunk`): a 6x6 map for 48x48 faces at
            8, with the default stem, and weights trained at 32 still fit.
        gfe_min_support: bound GFE-AN's sparsemax input so at least this many of the 512
            elements keep a weight for every face (:class:`SparseElementAttention`; 0: the
            original, unbounded design): the repair for the shipped model's collapse.
    """

    def __init__(self, *, num_classes: int = 7, in_chans: int = 3, gfe_hidden: int = 64,
                 subspaces: int = 4, stem_pool: bool = True,
                 stem_stride: int = 2, output_stride: int = 32,
                 gfe_min_support: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 2 * RESNET18_CHANNELS
        self.features = resnet18_trunk(in_chans, stem_pool=stem_pool, stem_stride=stem_stride,
                                       output_stride=output_stride)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.gfe = SparseElementAttention(RESNET18_CHANNELS, gfe_hidden,
                                          min_support=gfe_min_support)
        self.gfe_fc = nn.Linear(RESNET18_CHANNELS, num_classes)
        self.mff = LocalFeatureAttention(RESNET18_CHANNELS, subspaces)
        self.mff_fc = nn.Linear(RESNET18_CHANNELS, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def _streams(self, feature_map: Tensor) -> dict[str, Tensor]:
        plain = self.pool(feature_map).flatten(1)
        weights = self.gfe(plain)
        recalibrated = plain * (weights * plain.shape[1])
        local, maps = self.mff(feature_map)
        return {"plain": plain, "weights": weights, "recalibrated": recalibrated,
                "local": local, "maps": maps}

    def forward_head(self, feature_map: Tensor, pre_logits: bool = False) -> Tensor:
        s = self._streams(feature_map)
        if pre_logits:
            return torch.cat([s["recalibrated"], s["local"]], dim=1)
        return (self.gfe_fc(s["recalibrated"]) + self.mff_fc(s["local"])) / 2

    def forward(self, x: Tensor) -> FEROutput:
        feature_map = self.forward_features(x)
        s = self._streams(feature_map)
        gfe_logits = self.gfe_fc(s["recalibrated"])
        return FEROutput(
            logits=(gfe_logits + self.mff_fc(s["local"])) / 2,
            embedding=torch.cat([s["recalibrated"], s["local"]], dim=1),
            feature_map=feature_map,
            attention={
                "gfe_weights": s["weights"],
                "mff_maps": s["maps"],
                "gfe_logits": gfe_logits,
                "gfe_plain_logits": self.gfe_fc(s["plain"]),
            },
        )

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.gfe_fc = nn.Linear(RESNET18_CHANNELS, num_classes)
        self.mff_fc = nn.Linear(RESNET18_CHANNELS, num_classes)

    def default_cam_layer(self) -> nn.Module:
        return self.features[-1]

    def cam_layers(self) -> list[nn.Module]:
        """CAM candidates, deepest first: explainers hook the deepest whose map has enough
        cells at the model's input size (:func:`ferkit.explain.cam.default_target_layer`)."""
        return trunk_stages(self.features)


@register_model(
    "dsan",
    data=IMAGENET_DATA,
    summary="dual-stream attention: sparse global-element attention + sub-space local attention",
    reference="Tang, Li & Jin, A dual stream attention network for facial expression "
    "recognition in the wild, IJMLC 2024 (no public code; ferkit's design, see docs)",
)
def dsan(*, num_classes: int = 7, in_chans: int = 3, gfe_hidden: int = 64, subspaces: int = 4,
         stem_pool: bool = True, stem_stride: int = 2, output_stride: int = 32,
         gfe_min_support: int = 0,
         backbone_weights: str | Path | Mapping[str, Tensor] | None = None) -> DSAN:
    """DSAN; ``backbone_weights`` is a ResNet-18 checkpoint (e.g. the MS-Celeb-1M
    ``resnet18_msceleb.pth`` in torchvision key names, or its state dict) loaded into the
    trunk; init-only, recorded in the config's provenance, not its kwargs."""
    model = DSAN(num_classes=num_classes, in_chans=in_chans, gfe_hidden=gfe_hidden,
                 subspaces=subspaces, stem_pool=stem_pool, stem_stride=stem_stride,
                 output_stride=output_stride, gfe_min_support=gfe_min_support)
    if backbone_weights is not None:
        from ferkit.models.backbones import load_resnet18_trunk_weights

        load_resnet18_trunk_weights(model.features, backbone_weights)
    return model
