"""Figures for explanations: one labelled figure per face, and maps drawn on the photo.

Drawing is kept apart from computing (pytorch-grad-cam's ``utils/image.py``): nothing here
runs a model.  Figures are built on matplotlib's object API (no pyplot global state) and
returned as PIL images.

Example:
    >>> import numpy as np
    >>> from ferkit.explain.visualize import heatmap_overlay
    >>> heatmap_overlay(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4))).shape
    (4, 4, 3)
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ferkit.explain.api import FaceExplanation
from ferkit.explain.projection import crop_footprint

CMAP = "jet"
_STACKED = re.compile(r"^(?P<key>.+)\[(?P<index>\d+)\]$")
_TITLES = {
    "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "hirescam": "HiResCAM",
    "xgradcam": "XGrad-CAM", "layercam": "LayerCAM", "eigencam": "Eigen-CAM",
    "spatial": "spatial attention (mean of heads)", "mff_maps": "MFF maps (mean)",
    "element_weights": "element weights × feature map",
    "gfe_weights": "GFE weights × feature map",
}


def heatmap_overlay(rgb: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45,
                    mask: np.ndarray | None = None, cmap: str = CMAP) -> np.ndarray:
    """Blend a [0, 1] ``heatmap`` over a uint8 RGB image (only inside ``mask`` if given)."""
    from matplotlib import colormaps

    colours = colormaps[cmap](np.clip(heatmap, 0, 1))[..., :3]
    weight = alpha if mask is None else alpha * mask[..., None].astype(np.float32)
    base = rgb.astype(np.float32) / 255.0
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=-1)
    return (np.clip((1 - weight) * base + weight * colours, 0, 1) * 255).astype(np.uint8)


def face_figure(explanation: FaceExplanation, *, max_maps: int = 8, dpi: int = 110
                ) -> Image.Image:
    """One face, readable at a glance: the crop, the main map over it with a colour bar,
    the class probabilities; below, per-head/subspace maps (DAN, DSAN), attention-weight
    strips (DAN channels, DACL, DSAN) and the spatial-transformer view (Deep-Emotion).
    """
    from matplotlib.figure import Figure

    exp = explanation
    stacked = _stacked_maps(exp.maps)
    rows = ["main"]
    if stacked:
        rows.append("stack")
    vector_keys = [k for k in exp.vectors if k != "theta"]
    rows += [f"vector:{k}" for k in vector_keys]
    if "stn" in exp.grids:
        rows.append("stn")
    heights = {"main": 3.0, "stack": 2.2, "stn": 2.8}
    fig = Figure(figsize=(11, sum(heights.get(r, 1.3) for r in rows) + 0.6), dpi=dpi,
                 layout="constrained")
    subfigs = fig.subfigures(len(rows), 1, height_ratios=[heights.get(r, 1.3) for r in rows])
    subfigs = np.atleast_1d(subfigs)
    face = exp.face
    target = f" — explaining '{exp.target}'" if exp.target else ""
    fig.suptitle(f"{face.label} ({face.score:.0%}) · {_TITLES.get(exp.method, exp.method)}"
                 f"{target}", fontsize=13, fontweight="bold")
    for sub, row in zip(subfigs, rows, strict=True):
        if row == "main":
            _draw_main(sub, exp)
        elif row == "stack":
            _draw_stack(sub, exp, stacked, max_maps)
        elif row == "stn":
            _draw_stn(sub, exp)
        else:
            _draw_vector(sub, row.split(":", 1)[1], exp.vectors[row.split(":", 1)[1]])
    return _to_pil(fig)


def overlay_on_image(image: Any, explanations: Sequence[FaceExplanation],
                     map_name: str | None = None, *, alpha: float = 0.45,
                     color: str | None = None) -> Image.Image:
    """Every face's map projected onto the photo through its alignment matrix, with the
    face boxes, labels and a 0–1 colour bar on the right.

    ``map_name`` picks the map (default: each explanation's ``primary_map``); ``color`` is
    the channel order of a numpy ``image`` (``"rgb"`` or ``"bgr"``), as for the Recognizer.
    """
    from ferkit.inference.io import load_image

    rgb = load_image(image, color=color)
    height, width = rgb.shape[:2]
    combined = np.zeros((height, width), np.float32)
    inside = np.zeros((height, width), bool)
    for exp in explanations:
        projected = exp.project(map_name, (height, width))
        footprint = crop_footprint(exp.crop.shape[:2], exp.matrix, (height, width))
        combined = np.where(footprint, np.maximum(combined, projected), combined)
        inside |= footprint
    blended = heatmap_overlay(rgb, combined, alpha=alpha, mask=inside)
    canvas = Image.fromarray(blended)
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(min(height, width) / 250))
    for exp in explanations:
        x1, y1, x2, y2 = exp.face.box
        draw.rectangle([x1, y1, x2, y2], outline=(255, 255, 255), width=line)
        text = f"{exp.face.label} {exp.face.score:.0%}"
        tx, ty = x1, max(0, y1 - 14)
        draw.rectangle(draw.textbbox((tx, ty), text), fill=(0, 0, 0))
        draw.text((tx, ty), text, fill=(255, 255, 255))
    return _with_colour_bar(canvas)


# ----------------------------------------------------------------------------- drawing


def _stacked_maps(maps: dict[str, np.ndarray]) -> list[tuple[str, int, np.ndarray]]:
    out = []
    for name, value in maps.items():
        match = _STACKED.match(name)
        if match:
            out.append((match["key"], int(match["index"]), value))
    return out


def _draw_main(sub: Any, exp: FaceExplanation) -> None:
    if exp.maps:
        axes = sub.subplots(1, 3, width_ratios=[1, 1.25, 1.4])
        name = exp.primary_map
        axes[1].imshow(exp.crop)
        shown = axes[1].imshow(exp.maps[name], cmap=CMAP, vmin=0, vmax=1, alpha=0.5)
        axes[1].set_title(_TITLES.get(name, name))
        what = "attention" if exp.method == "attention" else "relevance"
        sub.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.02, label=f"{what} (0–1)")
    else:  # Deep-Emotion: the STN row below is the picture
        axes = sub.subplots(1, 2, width_ratios=[1, 1.4])
    axes[0].imshow(exp.crop)
    axes[0].set_title("aligned face crop")
    for ax in axes[:-1]:
        ax.set_xticks([])
        ax.set_yticks([])
    _draw_probs(axes[-1], exp)


def _draw_probs(ax: Any, exp: FaceExplanation) -> None:
    names = list(exp.face.probs)
    values = [exp.face.probs[n] for n in names]
    colours = ["tab:orange" if n == exp.face.label else "tab:blue" for n in names]
    bars = ax.barh(names, values, color=colours)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("probability")
    ax.set_title("class probabilities")
    for bar, value in zip(bars, values, strict=True):
        ax.text(value + 0.02, bar.get_y() + bar.get_height() / 2, f"{value:.2f}",
                va="center", fontsize=8)
    for tick in ax.get_yticklabels():
        if tick.get_text() == exp.target:
            tick.set_fontweight("bold")
    ax.spines[["top", "right"]].set_visible(False)


def _draw_stack(sub: Any, exp: FaceExplanation, stacked: list, max_maps: int) -> None:
    shown = stacked[:max_maps]
    axes = np.atleast_1d(sub.subplots(1, len(shown)))
    image = None
    for ax, (key, index, value) in zip(axes, shown, strict=True):
        ax.imshow(exp.crop)
        image = ax.imshow(value, cmap=CMAP, vmin=0, vmax=1, alpha=0.55)
        label = "head" if key == "spatial" else "subspace" if key == "mff_maps" else key
        ax.set_title(f"{label} {index + 1}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    more = f" (first {max_maps} of {len(stacked)})" if len(stacked) > max_maps else ""
    kind = {"spatial": "head", "mff_maps": "sub-space"}.get(shown[0][0], "map")
    sub.suptitle(f"per-{kind} attention, scaled jointly{more}", fontsize=10)
    sub.colorbar(image, ax=list(axes), fraction=0.02, pad=0.01, label="attention (0–1)")


def _draw_vector(sub: Any, key: str, value: np.ndarray) -> None:
    strip = np.atleast_2d(np.asarray(value, dtype=np.float32))
    ax = sub.subplots(1, 1)
    # DAN's channel weights are sigmoids: show them on their true 0-1 scale, so a flat
    # 0.5 strip reads as "undecided" instead of being stretched into noise.
    limits = {"vmin": 0.0, "vmax": 1.0} if key == "channel" else {}
    shown = ax.imshow(strip, aspect="auto", cmap="viridis", interpolation="nearest", **limits)
    ax.set_xlabel("feature element" if strip.shape[0] == 1 else "channel")
    if strip.shape[0] > 1:
        ax.set_ylabel("head")
        ax.set_yticks(range(strip.shape[0]), [str(i + 1) for i in range(strip.shape[0])])
    else:
        ax.set_yticks([])
    n = strip.shape[1]
    titles = {"channel": f"DAN channel attention per head ({n} sigmoid weights each)",
              "element_weights": f"DACL attention weights over the {n} feature elements",
              "gfe_weights": f"DSAN global-feature-element weights ({n})"}
    ax.set_title(titles.get(key, key), fontsize=10)
    bar = sub.colorbar(shown, ax=ax, fraction=0.03, pad=0.01, label="weight")
    bar.formatter.set_useOffset(False)
    bar.update_ticks()


def _draw_stn(sub: Any, exp: FaceExplanation) -> None:
    axes = sub.subplots(1, 3)
    grid = exp.grids["stn"]
    axes[0].imshow(exp.crop)
    # about 9 lines each way, always including the outer border of the sampled region
    rows = sorted(set(np.linspace(0, grid.shape[0] - 1, 9).round().astype(int)))
    cols = sorted(set(np.linspace(0, grid.shape[1] - 1, 9).round().astype(int)))
    for r in rows:
        axes[0].plot(grid[r, :, 0], grid[r, :, 1], color="yellow", lw=0.8)
    for c in cols:
        axes[0].plot(grid[:, c, 0], grid[:, c, 1], color="yellow", lw=0.8)
    axes[0].set_xlim(-0.5, exp.crop.shape[1] - 0.5)
    axes[0].set_ylim(exp.crop.shape[0] - 0.5, -0.5)
    theta = exp.vectors.get("theta")
    detail = "" if theta is None else "\nθ = " + "; ".join(
        " ".join(f"{v:+.2f}" for v in row) for row in np.asarray(theta).reshape(2, 3))
    axes[0].set_title(f"input + STN sampling grid{detail}", fontsize=9)
    warped = exp.images.get("stn_warped_crop")
    if warped is not None:
        axes[1].imshow(warped)
        axes[1].set_title("crop warped by the STN", fontsize=10)
    model_view = exp.images.get("stn_warped")
    if model_view is not None:
        axes[2].imshow(model_view, cmap="gray", vmin=0, vmax=1)
        axes[2].set_title(f"model input after STN ({model_view.shape[1]}×{model_view.shape[0]})",
                          fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def _to_pil(fig: Any) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _with_colour_bar(canvas: Image.Image) -> Image.Image:
    from matplotlib import colormaps

    width, height = canvas.size
    bar_w = max(12, width // 40)
    pad = max(30, bar_w * 2)
    out = Image.new("RGB", (width + bar_w + pad, height), (255, 255, 255))
    out.paste(canvas, (0, 0))
    ramp = np.linspace(1, 0, max(2, height - 20))[:, None].repeat(bar_w, axis=1)
    colours = (colormaps[CMAP](ramp)[..., :3] * 255).astype(np.uint8)
    out.paste(Image.fromarray(colours), (width + 4, 10))
    draw = ImageDraw.Draw(out)
    draw.text((width + bar_w + 6, 6), "1", fill=(0, 0, 0))
    draw.text((width + bar_w + 6, height - 20), "0", fill=(0, 0, 0))
    return out

