"""Reading images from anything a user may hand over, with errors that say what is wrong.

:func:`load_image` accepts a path, raw bytes, a PIL image or a numpy array and always returns
an ``HxWx3`` uint8 RGB array: EXIF orientation applied; grayscale, RGBA/LA (composited on
white), CMYK, palette, 1-bit, 16-bit and float images converted.  Every way a file can be
unusable raises :class:`~ferkit.errors.InputError` naming the file and the problem:

* ``photo.jpg is empty (0 bytes)``
* ``notes.jpg is not an image (looks like text: 'hello …')``
* ``cut.jpg is truncated: …``
* ``huge.png has 1.2 gigapixels, above the limit of 0.18 gigapixels …`` (decompression bombs
  are refused from the header, before any pixel is decoded)
"""

from __future__ import annotations

import io
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferkit.errors import ColorOrderWarning, InputError

#: Largest image (width x height) decoded by default: ~179 megapixels, PIL's own error limit.
#: Pass ``max_pixels=`` to :func:`load_image` to change it per call.
MAX_PIXELS = 2 * 89_478_485

ImageSource = str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray

#: Channel orders a numpy colour image may come in; ``None`` means "not said" (read as RGB,
#: with a :class:`~ferkit.errors.ColorOrderWarning`).
COLORS = ("rgb", "bgr")

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])

# PIL's process-wide bomb limit is switched off while ferkit applies its own per-call limit.
_PIL_LIMIT_LOCK = threading.Lock()

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"7z\xbc\xaf", "a 7-Zip archive"),
    (0, b"Rar!", "a RAR archive"),
    (0, b"\x7fELF", "a program (ELF)"),
    (0, b"MZ", "a Windows program"),
    (0, b"ID3", "an MP3 audio file"),
    (0, b"OggS", "an Ogg media file"),
    (0, b"fLaC", "a FLAC audio file"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (4, b"ftypheic", "a HEIC photo (not supported: convert it to JPEG)"),
    (4, b"ftypheix", "a HEIC photo (not supported: convert it to JPEG)"),
    (4, b"ftypmif1", "a HEIF photo (not supported: convert it to JPEG)"),
    (4, b"ftypavif", "an AVIF image (not supported by this Pillow: convert it to JPEG)"),
    (4, b"ftyp", "an MP4/MOV video (use `ferkit video`)"),
    (8, b"AVI ", "an AVI video (use `ferkit video`)"),
    (8, b"WAVE", "a WAV audio file"),
    (0, b"SQLite format 3", "an SQLite database"),
)


def load_image(source: ImageSource, *, color: str | None = None,
               max_pixels: int | None = MAX_PIXELS, name: str | None = None) -> np.ndarray:
    """Read ``source`` as an ``HxWx3`` uint8 RGB array.

    Args:
        source: a file path, encoded bytes, a PIL image, or a numpy array (``HxW`` gray,
            ``HxWx1``, ``HxWx3`` or ``HxWx4``; uint8, uint16, or float in [0, 1]).
        color: channel order of a numpy ``source``: ``"rgb"`` or ``"bgr"`` (OpenCV's
            ``imread``/``VideoCapture`` order).  Files and PIL images carry their own.
            Left out for a colour array, the array is read as RGB and a
            :class:`~ferkit.errors.ColorOrderWarning` says so (an array cannot tell its
            channel order, and guessing wrong changes the answers silently).
        max_pixels: refuse images with more pixels than this (decompression bombs);
            ``None`` for no limit.
        name: how to call the image in error messages (default: the path, or the type).

    Raises:
        InputError: the source cannot be read as an image; the message says why.

    Example:
        >>> import numpy as np
        >>> bgr = np.zeros((2, 3, 3), np.uint8); bgr[..., 0] = 255   # blue in BGR
        >>> load_image(bgr, color="bgr")[0, 0].tolist()
        [0, 0, 255]
    """
    if color is not None and color not in COLORS:
        raise InputError(f"color must be 'rgb' or 'bgr' (OpenCV arrays), not {color!r}")
    if isinstance(source, np.ndarray):
        return _from_array(source, color=color, name=name or "the image array")
    if isinstance(source, Image.Image):
        return _from_pil(source, name=name or "the PIL image", max_pixels=max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), name=name or "the image bytes", max_pixels=max_pixels)
    if isinstance(source, (str, Path)):
        return _decode(_read_file(Path(source)), name=name or str(source),
                       max_pixels=max_pixels)
    raise InputError(
        f"cannot read an image from a {type(source).__name__}: give a file path, bytes, "
        "a PIL image or a numpy array"
    )


def describe_source(source: Any) -> str:
    """A short human name for an input: its path, or its type."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height}>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image (`ferkit predict` reads folders)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return data


def _decode(data: bytes, *, name: str, max_pixels: int | None) -> np.ndarray:
    if not data:
        raise InputError(f"{name} is empty (0 bytes)")
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise InputError(f"{name} is not an image ({_sniff(data)}); ferkit reads JPEG, "
                             "PNG, BMP, GIF, TIFF and WebP") from exc
        except Exception as exc:  # PIL raises many types on mangled headers
            raise InputError(f"{name} is corrupt: cannot read its header ({exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    return _from_pil(image, name=name, max_pixels=max_pixels)


def _from_pil(image: Image.Image, *, name: str, max_pixels: int | None) -> np.ndarray:
    _check_size(image.width, image.height, name=name, max_pixels=max_pixels)
    try:
        image.load()
        image = ImageOps.exif_transpose(image) or image
    except OSError as exc:
        message = str(exc)
        if "truncat" in message.lower() or "broken data stream" in message.lower():
            raise InputError(f"{name} is truncated: the file ends before the image data "
                             f"does ({message}); re-download or re-export it") from exc
        raise InputError(f"{name} is corrupt: {message}") from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"{name} is corrupt: {exc}") from exc
    return _to_rgb(image)


def _check_size(width: int, height: int, *, name: str, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{name} has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"{name} has {_pixels(width * height)} ({width}x{height}), above the limit of "
            f"{_pixels(max_pixels)}: refused as a possible decompression bomb. Shrink it, or "
            "raise the limit (load_image(..., max_pixels=N))"
        )


def _pixels(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.2g} gigapixels"
    return f"{count / 1e6:.3g} megapixels"


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _from_array(np.asarray(image), color="rgb", name="image")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in
                                                        image.info):
        # Transparent pixels become white, the usual background of cut-out portraits.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _from_array(array: np.ndarray, *, color: str | None, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"{name} has shape {array.shape}; expected HxW (gray), HxWx3 "
                         "(color) or HxWx4 (with alpha)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name} has no pixels (shape {array.shape})")
    array = _to_uint8(array, name=name)
    if array.ndim == 3 and color is None:
        _warn_color_unsaid()
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    if color == "bgr":
        array = array[..., ::-1]
    return np.ascontiguousarray(array)


def _warn_color_unsaid() -> None:
    """Warn, pointing at the caller's own line (the first frame outside ferkit), so the
    default warning filter shows it once per call site rather than once per image."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    warnings.warn(
        "ferkit read a numpy image array as RGB. Arrays from OpenCV (cv2.imread, "
        "VideoCapture) are BGR: pass color='bgr' for them, or color='rgb' to confirm the "
        "order and silence this warning", ColorOrderWarning, stacklevel=level)


def _to_uint8(array: np.ndarray, *, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16 or (np.issubdtype(array.dtype, np.integer)
                                    and array.size and 255 < array.max() <= 65535):
        # 16-bit samples: keep the top 8 bits (a plain cast would saturate at 255).
        return (array.astype(np.uint32) >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise InputError(f"{name} holds integers outside 0..65535 ({array.dtype})")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError(f"{name} contains NaN or infinite values")
        top = 1.0 if array.size == 0 or array.max() <= 1.0 else 255.0
        return (np.clip(array / top, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(f"{name} has unsupported pixel type {array.dtype}")


def _sniff(data: bytes) -> str:
    """A guess at what a non-image file is, for the error message."""
    for offset, magic, what in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return f"looks like {what}"
    head = data[:512]
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "looks like an HTML page: was a download link saved instead of the image?"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<svg"):
        return "looks like XML/SVG; ferkit reads raster images only"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        preview = " ".join(text.split())[:40]
        kind = "JSON" if stripped.startswith((b"{", b"[")) else "text"
        return f"looks like {kind}: {preview!r}"
    return f"unknown format, starts with bytes {data[:8].hex(' ')}"
