"""The one output type every ferkit model's ``forward`` returns, and the one adapter to
``model(x) -> logits`` for what expects a plain tensor (ONNX export, the PyTorch backend,
Grad-CAM)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from ferkit.calibration import model_temperature
from ferkit.errors import FerkitError


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


class LogitsOnly(nn.Module):
    """Wraps a ferkit model so ``forward`` returns only its logits (a tensor).

    By default the calibrated logits, ``FEROutput.logits / temperature`` with the temperature
    from the model's config (:mod:`ferkit.calibration`; 1.0 when uncalibrated).  This is the
    one place the temperature is applied: the PyTorch backend runs this module and the ONNX
    export traces it, so both return logits whose softmax is the calibrated probability.

    Args:
        model: a ferkit model (``forward`` returns :class:`FEROutput` or a logits tensor).
        temperature: divide the logits by this instead of the model's own temperature
            (explainers pass 1.0: they explain the network's raw scores).
        keep_output: keep the whole :class:`FEROutput` of the latest call in
            :attr:`last_output` (probabilities, attention from the same forward pass), for
            libraries that only see the logits; off by default so inference holds no batch.
    """

    def __init__(self, model: nn.Module, *, temperature: float | None = None,
                 keep_output: bool = False) -> None:
        super().__init__()
        self.model = model
        self.temperature = model_temperature(model) if temperature is None else float(temperature)
        self.keep_output = keep_output
        self.last_output: FEROutput | None = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if isinstance(out, Tensor):
            out = FEROutput(logits=out)
        if not isinstance(out, FEROutput):
            raise FerkitError(f"{type(self.model).__name__}.forward returned "
                              f"{type(out).__name__}, expected FEROutput or a logits tensor")
        if self.keep_output:
            self.last_output = out
        logits = out.logits
        if self.temperature != 1.0:  # no Div node in uncalibrated graphs
            logits = logits / self.temperature
        return logits
