"""ferkit's Streamlit app; run it with ``ferkit ui`` (headless, offline, no usage stats).

A photo (upload) or a camera snapshot goes through one model, or two side by side; each
column shows the boxes and labels over the photo, probability bars per face and, when a
method is chosen, the attention / Grad-CAM overlay.  Models are loaded once per process
(``st.cache_resource``).

The model pickers offer named models only: the one ``ferkit ui --model`` was started with,
the shipped ones and those added with ``ferkit models add``.  A visitor may type a
checkpoint folder on the server only when the operator started the app with
``ferkit ui --allow-checkpoint-paths``.  Unexpected errors show a generic message in the
browser (the details go to the server's log), never a traceback with server paths.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import streamlit as st

from ferkit.errors import FerkitError
from ferkit.inference.annotate import draw_results
from ferkit.inference.results import ranked

EXPLAIN_CHOICES = ("none", "attention", "gradcam", "gradcam++")
OTHER = "other (checkpoint folder)…"

log = logging.getLogger("ferkit.ui")


def _cli_options() -> argparse.Namespace:
    """``--model`` and ``--allow-paths`` after ``--`` on the streamlit command line (else
    ``$FERKIT_UI_MODEL`` / ``$FERKIT_UI_ALLOW_PATHS=1``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", default=os.environ.get("FERKIT_UI_MODEL", "default"))
    parser.add_argument("--allow-paths", action="store_true",
                        default=os.environ.get("FERKIT_UI_ALLOW_PATHS", "") == "1")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known


def _model_choices(default: str) -> list[str]:
    """The named models: the one the app was started with, the shipped ones, the user's."""
    from ferkit.weights import list_shipped, list_user_models

    return list(dict.fromkeys([default, *list_shipped(), *list_user_models()]))


def _same_model(a: str, b: str) -> bool:
    """Whether two names or paths load the same checkpoint ("default" is a shipped name)."""
    from ferkit.weights import named_weights_dir

    def where(name: str) -> Path:
        found = named_weights_dir(name)
        return (found or Path(name)).resolve()

    return a == b or where(a) == where(b)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_recognizer(name: str) -> Any:
    from ferkit.inference.recognizer import Recognizer

    return Recognizer.from_pretrained(name)


def _model_picker(label: str, choices: list[str], key: str, *, allow_paths: bool,
                  index: int = 0) -> str | None:
    """The model picked in the sidebar; ``None`` while a typed folder is still empty."""
    options = [*choices, OTHER] if allow_paths else choices
    picked = st.sidebar.selectbox(label, options, index=index, key=key)
    if picked == OTHER:
        typed = st.sidebar.text_input(f"{label}: checkpoint folder on the server",
                                      key=key + "_path").strip()
        if not typed:
            st.sidebar.info("Type the path of a checkpoint folder (one holding "
                            "model.safetensors and config.json).")
            return None
        return typed
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
        for label, prob in ranked(face.probs):
            column.progress(float(prob), text=f"{label} {prob:.1%}")
    if method != "none" and result.faces:
        from ferkit.explain import explain
        from ferkit.explain.visualize import overlay_on_image

        explanations = explain(recognizer, image, method=method, color="rgb")
        column.image(overlay_on_image(image, explanations, color="rgb"),
                     caption=f"{method} overlay", width="stretch")


def main() -> None:
    st.set_page_config(page_title="ferkit: facial expressions", layout="wide")
    st.title("ferkit: facial expression recognition")
    options = _cli_options()
    choices = _model_choices(options.model)
    model_a = _model_picker("Model", choices, "model_a", allow_paths=options.allow_paths)
    compare = st.sidebar.checkbox("Compare with a second model")
    model_b = None
    if compare:
        # Start the second picker on a model that differs from the first.
        others = [i for i, name in enumerate(choices)
                  if model_a is None or not _same_model(name, model_a)]
        if others or options.allow_paths:
            index = others[0] if others else len(choices)  # else: "other (folder)…"
            model_b = _model_picker("Second model", choices, "model_b",
                                    allow_paths=options.allow_paths, index=index)
        else:
            st.sidebar.info("Only one model is available here: add another with "
                            "`ferkit models add NAME RUN/best`, then reload.")
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
    names = [n for n in (model_a, model_b) if n]
    if not names:
        st.caption("Choose a model in the sidebar.")
        return
    try:
        image = _read_photo(upload.getvalue())
        for column, name in zip(st.columns(len(names)), names, strict=True):
            _show_column(column, name, image, method)
    except FerkitError as exc:
        st.error(str(exc))
    except Exception:  # a bug: its details are for the server's log, not the browser
        log.exception("ferkit ui: analysing a photo failed")
        st.error("Something went wrong while analysing this photo; the details are in the "
                 "server's log.")


main()
