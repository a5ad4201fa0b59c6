"""See what a network looks at: Grad-CAM(++) for any model, each architecture's own
attention, projection onto the photo and embeddings.  (Training-run figures:
:mod:`ferkit.training.plots`.)

Examples:
    >>> import torch, ferkit
    >>> from ferkit.explain import explain_tensor
    >>> model = ferkit.create_model("baseline_test")
    >>> result = explain_tensor(model, torch.randn(2, 3, 32, 32), target="sad")
    >>> result.maps["gradcam"].shape, result.target_index
    ((2, 32, 32), [2, 2])

Whole photos go through a Recognizer (``explain(recognizer, "photo.jpg")``); figures are
drawn by :mod:`ferkit.explain.visualize`.
"""

from ferkit.explain.api import (
    EXPLAINERS,
    FaceExplanation,
    create_explainer,
    explain,
    explain_aligned,
    explain_tensor,
)
from ferkit.explain.attention import AttentionExplainer
from ferkit.explain.base import BatchExplanation, Explainer
from ferkit.explain.cam import CAMExplainer, GradCAM, GradCAMPlusPlus, default_target_layer
from ferkit.explain.projection import crop_to_image, image_to_crop, project_map
from ferkit.explain.targets import ClassTarget, ExpressionTarget

__all__ = [
    "EXPLAINERS",
    "AttentionExplainer",
    "BatchExplanation",
    "CAMExplainer",
    "ClassTarget",
    "Explainer",
    "ExpressionTarget",
    "FaceExplanation",
    "GradCAM",
    "GradCAMPlusPlus",
    "create_explainer",
    "crop_to_image",
    "default_target_layer",
    "explain",
    "explain_aligned",
    "explain_tensor",
    "image_to_crop",
    "project_map",
]
