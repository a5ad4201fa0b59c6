"""ferkit's Streamlit app; run it with ``ferkit ui`` (headless, offline, no usage stats).

A photo (upload) or a camera snapshot goes through one model, or two side by side; each
column shows the boxes and labels over the photo, probability bars per face and, when a
method is chosen, the attention / Grad-CAM overlay.  Models are loaded once per process
(``st.cache_resource``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import PurePath
from typing import Any

import numpy as np
import streamlit as st

from ferkit.errors import FerkitError
from ferkit.inference.annotate import draw_results

EXPLAIN_CHOICES = ("none", "attention", "gradcam", "gradcam++")


def _cli_model() -> str:
    """``--model`` after ``--`` on the streamlit command line, else ``$FERKIT_UI_MODEL``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", default=os.environ.get("FERKIT_UI_MODEL", "default"))
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.model


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_recognizer(name: str) -> Any:
    from ferkit.inference.recognizer import Recognizer

    return Recognizer.from_pretrained(name)


def _model_picker(label: str, default: str, key: str) -> str:
    from ferkit.weights import list_shipped

    choices = list(dict.fromkeys([default, *list_shipped(), "other (checkpoint folder)…"]))
    picked = st.sidebar.selectbox(label, choices, key=key)
    if picked.startswith("other"):
        picked = st.sidebar.text_input(f"{label}: checkpoint folder", key=key + "_path")
    return picked


def _read_photo(data: bytes) -> np.ndarray:
    from ferkit.serve.images import ApiError, decode_image

    try:
        return decode_image(data, max_bytes=8 * 2**20, max_pixels=25_000_000)
    except ApiError as exc:
        raise FerkitError(exc.message) from None


def _show_column(column: Any, name: str, image: np.ndarray, method: str) -> None:
    column.subheader(PurePath(name).name or name)  # a checkpoint folder: its own name
    recognizer = load_recognizer(name)
    result = recognizer(image, color="rgb")
    column.image(draw_results(image, result), width="stretch")
    if not result.faces:
        column.info("No face found in this photo.")
    for i, face in enumerate(result.faces, 1):
        column.markdown(f"**Face {i}: {face.label}** ({face.score:.0%})")
        for label, prob in sorted(face.probs.items(), key=lambda kv: -kv[1]):
            column.progress(float(prob), text=f"{label} {prob:.1%}")
    if method != "none" and result.faces:
        try:
            from ferkit.explain import explain
            from ferkit.explain.visualize import overlay_on_image
        except ImportError:
            column.warning("Attention maps need ferkit.explain (not in this build).")
            return
        explanations = explain(recognizer, image, method=method, color="rgb")
        column.image(overlay_on_image(image, explanations, color="rgb"),
                     caption=f"{method} overlay", width="stretch")


def main() -> None:
    st.set_page_config(page_title="ferkit: facial expressions", layout="wide")
    st.title("ferkit: facial expression recognition")
    default = _cli_model()
    model_a = _model_picker("Model", default, "model_a")
    compare = st.sidebar.checkbox("Compare with a second model")
    model_b = _model_picker("Second model", default, "model_b") if compare else None
    method = st.sidebar.selectbox("Attention view", EXPLAIN_CHOICES, key="explain_method")
    source = st.radio("Photo source", ("Upload", "Camera"), horizontal=True)
    if source == "Upload":
        upload = st.file_uploader("A photo with faces", type=["jpg", "jpeg", "png", "webp",
                                                               "bmp", "gif"])
    else:
        upload = st.camera_input("Take a snapshot")
    if upload is None:
        st.caption("Upload a photo or take a snapshot to see each face's expression.")
        return
    try:
        image = _read_photo(upload.getvalue())
        names = [n for n in (model_a, model_b) if n]
        for column, name in zip(st.columns(len(names)), names, strict=True):
            _show_column(column, name, image, method)
    except FerkitError as exc:
        st.error(str(exc))


main()
