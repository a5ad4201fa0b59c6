"""The model a server runs: loaded once, and made to answer a real face before the server
reports healthy; plus the copy of it that explanations run on.

Examples:
    >>> public_name("runs/rafdb_dan/best", None)  # a checkpoint directory: never its path
    'best'
    >>> public_name(lambda: None, None)
    'custom'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from ferkit.errors import FerkitError
from ferkit.serve.settings import ServeSettings

log = logging.getLogger("ferkit.serve")

#: a real face (public-domain NASA portrait of Eileen Collins, from scikit-image's
#: ``astronaut``, cropped to 160x176) that every model must answer before the server starts
WARMUP_FACE = Path(__file__).resolve().parent / "warmup_face.jpg"
#: where that face is (x1, y1, x2, y2), for detectors that miss it
WARMUP_FACE_BOX = (58.0, 42.0, 135.0, 139.0)


def load_recognizer(spec: str | Callable[[], Any], settings: ServeSettings) -> Any:
    """The recognizer for ``spec`` (weights name, checkpoint directory or a function
    returning one), warmed up (:func:`warm_up`)."""
    if callable(spec):
        recognizer = spec()
    else:
        from ferkit.inference.recognizer import Recognizer

        recognizer = Recognizer.from_pretrained(spec, device=settings.device,
                                                detector=settings.detector,
                                                backend=settings.backend)
    warm_up(recognizer)
    return recognizer


def warm_up(recognizer: Any) -> None:
    """Run a real face through the whole model; refuse to serve one that cannot answer it.

    Builds the face detector (built on first use) before the first request, and catches
    a checkpoint that loads but cannot predict (e.g. ``std: [0]`` in its config.json),
    which would otherwise report healthy and answer 500 to every face.
    """
    from ferkit.inference.io import load_image

    image = load_image(WARMUP_FACE)
    labels = list(recognizer.config.label_names)
    try:
        result = recognizer([image], color="rgb")[0]
        if not result.faces and not getattr(result, "error", None):
            log.warning("the face detector found no face in the warm-up photo; "
                        "warming up the model on the known face box instead")
            result = recognizer([image], boxes=[[WARMUP_FACE_BOX]], color="rgb")[0]
    except Exception as exc:
        raise FerkitError(f"the model failed on the warm-up face ({type(exc).__name__}: "
                          f"{exc}); check the checkpoint's config.json (mean, std, "
                          f"input_size) and weights") from exc
    if getattr(result, "error", None):
        raise FerkitError(f"the model failed on the warm-up face: {result.error}")
    if not result.faces:
        raise FerkitError("the model found no face in the warm-up photo, even with its box "
                          "given; check --detector and the checkpoint's config.json")
    for face in result.faces:
        probs = np.asarray([float(face.probs.get(n, np.nan)) for n in labels])
        if not np.isfinite(probs).all() or abs(float(probs.sum()) - 1.0) > 1e-3:
            raise FerkitError(
                f"the model gave invalid probabilities on the warm-up face "
                f"({', '.join(f'{n}={p:.3g}' for n, p in zip(labels, probs, strict=True))}); "
                "its weights or config.json (mean, std, label_names) are broken")


def explainer_for(recognizer: Any) -> Any:
    """A copy of ``recognizer`` with its own classifier, for the explain thread.

    Its own copy because explaining registers hooks and runs backward passes on the
    classifier, which must not meet a prediction running at the same time.
    ``ferkit.explain`` is imported here too, not on the event loop.
    """
    import copy

    import torch

    try:
        from ferkit.explain import explain_aligned  # noqa: F401
        from ferkit.explain.visualize import overlay_on_image  # noqa: F401
    except ImportError:
        return None
    model = getattr(recognizer, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None  # not a ferkit Recognizer: explanations share it
    explainer = copy.copy(recognizer)
    explainer.model = copy.deepcopy(model)
    return explainer


def warm_up_explainer(explainer: Any) -> None:
    """One explanation of the warm-up face: the first in a process takes seconds of
    one-off set-up, better spent before a client waits for it."""
    from ferkit.explain import explain_aligned
    from ferkit.inference.io import load_image

    try:
        face = explainer.detect_and_align(load_image(WARMUP_FACE), color="rgb")
        explain_aligned(explainer, face, method="gradcam")
    except Exception as exc:  # the first request will say what is wrong, as a 4xx/5xx
        log.warning("explanations did not warm up (%s: %s)", type(exc).__name__, exc)


def public_name(spec: str | Callable[[], Any], name: str | None) -> str:
    """The model name ``/v1/models`` and ``/health`` show: ``name``, else one from ``spec``."""
    if name:
        return name
    if isinstance(spec, str):
        return PurePath(spec).name or spec  # a checkpoint directory: never show its path
    name = getattr(spec, "__name__", "")
    return "custom" if not name or name.startswith("<") else name  # "<lambda>" says nothing
