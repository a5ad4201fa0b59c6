"""Boxes and labels drawn over a photo (the Streamlit app's view of an ``ImageResult``).

Examples:
    >>> import numpy as np
    >>> from types import SimpleNamespace as NS
    >>> face = NS(box=(2.0, 2.0, 12.0, 12.0), label="happy", score=0.9)
    >>> annotate(np.zeros((16, 16, 3), np.uint8), NS(faces=(face,))).size
    (16, 16)
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: one colour per canonical class, shared with the web page (static/app.js)
COLORS = {"neutral": "#9e9e9e", "happy": "#f4b400", "sad": "#4285f4", "surprise": "#ab47bc",
          "fear": "#00acc1", "disgust": "#7cb342", "anger": "#e53935", "contempt": "#8d6e63"}


def annotate(image: np.ndarray, result: Any) -> Any:
    """A PIL copy of ``image`` with each face's box and ``label score`` drawn on it."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for face in result.faces:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        color = COLORS.get(face.label, "#ffffff")
        draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        text = f"{face.label} {face.score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        y = max(0.0, y1 - (bottom - top) - 4)
        draw.rectangle((x1, y, x1 + (right - left) + 4, y + (bottom - top) + 4), fill=color)
        draw.text((x1 + 2, y + 1), text, fill="#000000")
    return canvas
