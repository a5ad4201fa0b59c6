"""The one output type every ferkit model's ``forward`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class FEROutput:
    """What a forward pass produced, read by name by losses, explainers and inference.

    Attributes:
        logits: ``(B, num_classes)`` unnormalised class scores.
        embedding: ``(B, D)`` the feature that centre-type losses pull together
            (DAN: pooled backbone map; DACL: pooled ResNet feature; baseline: pre-logits).
        feature_map: ``(B, C, H, W)`` the last convolutional map, for CAMs and DAN's
            affinity loss; ``None`` for architectures without one.
        attention: architecture-specific named tensors, documented in each model's
            docstring, e.g. DAN's ``"heads"`` ``(B, N, C)``, ``"spatial"`` ``(B, N, H, W)``;
            DACL's ``"element_weights"`` ``(B, 512)``; Deep-Emotion's ``"theta"``
            ``(B, 2, 3)``.
    """

    logits: Tensor
    embedding: Tensor | None = None
    feature_map: Tensor | None = None
    attention: dict[str, Tensor] = field(default_factory=dict)
