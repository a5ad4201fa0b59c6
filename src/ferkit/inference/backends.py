"""Classifier backends: run a batch of preprocessed face crops through a model.

A backend takes a float32 ``(N, C, H, W)`` array already normalised by the model's
:class:`~ferkit.config.DataConfig` and returns ``(N, num_classes)`` logits as numpy.  The
Recognizer only talks to this interface, so PyTorch eager and ONNX Runtime are
interchangeable; :func:`create_backend` picks one.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from ferkit.config import ModelConfig
from ferkit.errors import FerkitError


class ClassifierBackend(Protocol):
    config: ModelConfig
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """PyTorch eager inference (``torch.inference_mode``) on ``device``."""

    name = "torch"

    def __init__(self, model: nn.Module, *, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config: ModelConfig = model.ferkit_config

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).logits.float().cpu().numpy()


def create_backend(model: nn.Module, *, kind: str = "auto",
                   device: str | torch.device = "cpu") -> ClassifierBackend:
    """A backend for ``model``: ``"torch"``, or ``"auto"`` (the fastest available)."""
    if kind in ("torch", "auto"):
        return TorchBackend(model, device=device)
    raise FerkitError(f"unknown backend {kind!r}; choose 'auto' or 'torch'")
