"""Drawing Recognizer results on images: boxes, landmarks and readable labels.

Example:
    >>> import numpy as np
    >>> from ferkit.inference.results import FaceResult, ImageResult
    >>> face = FaceResult((10, 10, 50, 60), None, 0.99, {"happy": 0.9, "sad": 0.1}, "happy",
    ...                   0.9, ((1, 0, 0), (0, 1, 0)))
    >>> draw_results(np.zeros((80, 80, 3), np.uint8),
    ...              ImageResult("x", 80, 80, (face,))).size
    (80, 80)
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ferkit.inference.results import ImageResult

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


def draw_results(image: np.ndarray | Image.Image, result: ImageResult, *,
                 top_k: int = 1, show_landmarks: bool = True) -> Image.Image:
    """A copy of ``image`` with each face's box, landmarks and ``label score`` drawn.

    Line width and font size follow the image size, and each label sits on a filled
    background (inside the image even for faces at the top edge), so it reads on any photo.
    ``top_k`` > 1 adds the next most probable classes, one per line.
    """
    canvas = (Image.fromarray(image) if isinstance(image, np.ndarray) else image).convert("RGB")
    canvas = canvas.copy()
    draw = ImageDraw.Draw(canvas)
    short_side = min(canvas.size)
    line = max(2, round(short_side / 250))
    for index, face in enumerate(result.faces, start=1):
        colour = LABEL_COLOURS.get(face.label, (255, 64, 64))
        x1, y1, x2, y2 = face.box
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        if show_landmarks and face.landmarks:
            r = max(1.5, line * 0.8)
            for x, y in face.landmarks:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255), outline=colour)
        ranked = sorted(face.probs.items(), key=lambda kv: -kv[1])[:max(1, top_k)]
        lines = [f"#{index} {face.label} {face.score:.2f}"]
        lines += [f"{name} {p:.2f}" for name, p in ranked[1:]]
        # Text scales with the face, within limits that stay readable on small and big photos.
        size = int(np.clip((x2 - x1) * 0.18, max(11, short_side / 60), max(14, short_side / 25)))
        font = _font(size)
        text = "\n".join(lines)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, spacing=2)
        width, height = right - left + 2 * line, bottom - top + 2 * line
        tx = min(max(0.0, x1), max(0.0, canvas.width - width))
        ty = y1 - height if y1 - height >= 0 else min(y2, canvas.height - height)
        draw.rectangle((tx, ty, tx + width, ty + height), fill=colour)
        ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        draw.multiline_text((tx + line - left, ty + line - top), text, fill=ink, font=font,
                            spacing=2)
    return canvas


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
