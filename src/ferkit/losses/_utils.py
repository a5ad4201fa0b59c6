"""Input checks shared by the losses (clear errors instead of index errors deep inside)."""

from __future__ import annotations

from torch import Tensor

from ferkit.errors import InputError


def pooled_features(features: Tensor) -> Tensor:
    """``(B, D)`` as is, or ``(B, D, H, W)`` averaged over space."""
    if features.ndim == 4:
        return features.mean(dim=(2, 3))
    if features.ndim != 2:
        raise InputError(f"features must be (B, D) or (B, D, H, W), got {tuple(features.shape)}")
    return features


def check_labels(labels: Tensor, batch: int, num_classes: int, loss: str) -> None:
    """Labels must be ``(B,)`` integers in ``[0, num_classes)``: a clear error, not an
    index error (or a CUDA device assert) deep inside the loss."""
    if labels.ndim != 1 or labels.shape[0] != batch:
        raise InputError(f"{loss}: labels must be ({batch},), got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InputError(
            f"{loss}: labels must lie in [0, {num_classes}), got min {int(labels.min())} max "
            f"{int(labels.max())}; build the loss with num_classes = the model's classes"
        )


def class_indices(target: Tensor) -> Tensor:
    """``(B,)`` class indices from a training target: indices as given, class distributions
    ``(B, K)`` (soft labels such as FER+ votes) by their most likely class."""
    return target.argmax(dim=1) if target.ndim == 2 else target
