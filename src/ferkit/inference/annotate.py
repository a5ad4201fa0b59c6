"""Drawing Recognizer results on images: boxes, landmarks and readable, numbered labels.

One drawing function, :func:`draw_labelled_boxes`, serves every picture ferkit makes
(``ferkit predict --annotate``, ``ferkit video`` frames, the Streamlit app), and one
placement rule, :func:`place_labels`, decides where each label goes; the web page's
``placeLabels`` in ``serve/static/app.js`` is a line-by-line copy of it (a browser test
checks they agree).

The placement rule, for labels placed in face order (face 1 first):

1. Candidate spots, in this order: above the box (left-aligned), below it (left-aligned),
   above it (right-aligned), below it (right-aligned), inside its top edge, inside its
   bottom edge.  Each spot is moved inside the image (``x`` in ``[0, W - w]``, ``y`` in
   ``[0, H - h]``; a label wider or taller than the image starts at 0).
2. The first spot that overlaps neither a label already placed nor any face's box (its own
   included, so a label never hides its face when there is room) wins.
3. If every spot overlaps something, the one with the smallest overlapping area (labels
   plus boxes) wins; ties go to the earlier spot.

Example:
    >>> import numpy as np
    >>> from ferkit.inference.results import FaceResult, ImageResult
    >>> face = FaceResult((10, 10, 50, 60), None, 0.99, {"happy": 0.9, "sad": 0.1}, "happy",
    ...                   0.9, ((1, 0, 0), (0, 1, 0)))
    >>> draw_results(np.zeros((80, 80, 3), np.uint8),
    ...              ImageResult("x", 80, 80, (face,))).size
    (80, 80)
    >>> place_labels([(10, 40, 50, 90), (60, 40, 100, 90)], [(60, 20), (60, 20)], (200, 120))
    [(10.0, 20.0), (60.0, 90.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ferkit.boxes import Box
from ferkit.inference.results import ImageResult, ranked

#: One colour per canonical class (colour-blind-friendly Okabe-Ito palette + grey).
LABEL_COLOURS = {
    "neutral": (153, 153, 153),
    "happy": (230, 159, 0),
    "sad": (0, 114, 178),
    "surprise": (86, 180, 233),
    "fear": (204, 121, 167),
    "disgust": (0, 158, 115),
    "anger": (213, 94, 0),
    "contempt": (240, 228, 66),
}
#: Colour of a class outside the canonical eight.
OTHER_COLOUR = (255, 64, 64)


@dataclass(frozen=True)
class LabelledBox:
    """One face to draw: its box, label lines (the first is the headline), colour and
    optional landmarks."""

    box: Box
    lines: tuple[str, ...]
    colour: tuple[int, int, int]
    landmarks: tuple[tuple[float, float], ...] | None = None


def label_colour(label: str) -> tuple[int, int, int]:
    """The colour ferkit draws a class in (CLI, video, web page and Streamlit alike)."""
    return LABEL_COLOURS.get(label, OTHER_COLOUR)


def place_labels(boxes: Sequence[Sequence[float]], sizes: Sequence[Sequence[float]],
                 image_size: Sequence[float]) -> list[tuple[float, float]]:
    """Top-left corners for labels of ``sizes`` ``(w, h)`` beside ``boxes``
    ``(x1, y1, x2, y2)`` in an image of ``image_size`` ``(W, H)``: inside the image, and
    overlapping no other label or face when there is room (the rule in the module doc)."""
    width, height = float(image_size[0]), float(image_size[1])
    face_rects = [_rect(*b) for b in boxes]
    placed: list[Box] = []
    corners: list[tuple[float, float]] = []
    for (x1, y1, x2, y2), (w, h) in zip(boxes, sizes, strict=True):
        x1, y1, x2, y2, w, h = (float(v) for v in (x1, y1, x2, y2, w, h))
        spots = [(x1, y1 - h), (x1, y2), (x2 - w, y1 - h), (x2 - w, y2), (x1, y1),
                 (x1, y2 - h)]
        best, best_cost = None, None
        for sx, sy in spots:
            x = max(0.0, min(sx, width - w))
            y = max(0.0, min(sy, height - h))
            rect = (x, y, x + w, y + h)
            cost = sum(_overlap(rect, r) for r in placed) + sum(_overlap(rect, r)
                                                                 for r in face_rects)
            if best_cost is None or cost < best_cost:
                best, best_cost = (x, y), cost
            if cost == 0:
                break
        corners.append(best)
        placed.append((best[0], best[1], best[0] + w, best[1] + h))
    return corners


def draw_labelled_boxes(image: np.ndarray | Image.Image, faces: Sequence[LabelledBox],
                        ) -> Image.Image:
    """A copy of ``image`` (RGB) with each face's box, landmarks and label drawn.

    Line width and font size follow the image size; labels sit on a filled background of
    the face's colour, placed by :func:`place_labels` (inside the image, clear of the other
    labels and faces when there is room).
    """
    canvas = (Image.fromarray(image) if isinstance(image, np.ndarray) else image).convert("RGB")
    canvas = canvas.copy()
    draw = ImageDraw.Draw(canvas)
    line = _line_width(canvas.size)
    blocks = _label_blocks(draw, canvas.size, faces)
    corners = place_labels([f.box for f in faces], [(b[4], b[5]) for b in blocks], canvas.size)
    for face in faces:  # every box first, so no box is drawn over a label
        draw.rectangle(face.box, outline=face.colour, width=line)
        if face.landmarks:
            r = max(1.5, line * 0.8)
            for x, y in face.landmarks:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255),
                             outline=face.colour)
    for face, (text, font, left, top, width, height), (tx, ty) in zip(faces, blocks, corners,
                                                                      strict=True):
        draw.rectangle((tx, ty, tx + width, ty + height), fill=face.colour)
        ink = (0, 0, 0) if sum(face.colour) > 380 else (255, 255, 255)
        draw.multiline_text((tx + line - left, ty + line - top), text, fill=ink, font=font,
                            spacing=2)
    return canvas


def label_rects(image_size: tuple[int, int], faces: Sequence[LabelledBox],
                ) -> list[Box]:
    """``(x1, y1, x2, y2)`` of each face's label as :func:`draw_labelled_boxes` draws it on
    an image of ``image_size`` ``(W, H)``."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    blocks = _label_blocks(draw, image_size, faces)
    corners = place_labels([f.box for f in faces], [(b[4], b[5]) for b in blocks], image_size)
    return [(x, y, x + b[4], y + b[5]) for (x, y), b in zip(corners, blocks, strict=True)]


def _line_width(image_size: Sequence[int]) -> int:
    return max(2, round(min(image_size) / 250))


def _label_blocks(draw: ImageDraw.ImageDraw, image_size: Sequence[int],
                  faces: Sequence[LabelledBox]) -> list[tuple]:
    """``(text, font, left, top, width, height)`` of each face's label."""
    short_side = min(image_size)
    line = _line_width(image_size)
    blocks = []
    for face in faces:
        x1, _, x2, _ = face.box
        # Text scales with the face, within limits that stay readable on small and big photos.
        size = int(np.clip((x2 - x1) * 0.18, max(11, short_side / 60), max(14, short_side / 25)))
        font = _font(size)
        text = "\n".join(face.lines)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, spacing=2)
        blocks.append((text, font, left, top, right - left + 2 * line, bottom - top + 2 * line))
    return blocks


def results_to_boxes(result: ImageResult, *, top_k: int = 1,
                     show_landmarks: bool = True) -> list[LabelledBox]:
    """The :class:`LabelledBox` of each face of ``result``: ``#n label score`` (plus the
    next ``top_k - 1`` classes), in the class's colour."""
    faces = []
    for index, face in enumerate(result.faces, start=1):
        lines = (f"#{index} {face.label} {face.score:.2f}",
                 *(f"{name} {p:.2f}" for name, p in ranked(face.probs, max(1, top_k))[1:]))
        faces.append(LabelledBox(tuple(face.box), lines, label_colour(face.label),
                                 face.landmarks if show_landmarks else None))
    return faces


def draw_results(image: np.ndarray | Image.Image, result: ImageResult, *,
                 top_k: int = 1, show_landmarks: bool = True) -> Image.Image:
    """A copy of ``image`` with each face's box, landmarks and ``#n label score`` drawn
    (``n`` is the face's number in ``result.faces``, counted from 1, as everywhere else).

    ``top_k`` > 1 adds the next most probable classes, one per line.
    """
    return draw_labelled_boxes(image, results_to_boxes(result, top_k=top_k,
                                                       show_landmarks=show_landmarks))


def _rect(x1: float, y1: float, x2: float, y2: float) -> Box:
    return float(x1), float(y1), float(x2), float(y2)


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
