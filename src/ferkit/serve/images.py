"""Turning untrusted upload bytes into an RGB array, with limits checked before decoding.

The header is read first (Pillow opens lazily), so a file that claims 100,000 x 100,000
pixels is refused before a single pixel is decoded.  Only a short list of raster formats
is accepted: no SVG, no PDF, no TIFF (large attack surface, rare for photos).

Examples:
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (4, 3), (255, 0, 0)).save(buf, "PNG")
    >>> decode_image(buf.getvalue(), max_bytes=10_000, max_pixels=100).shape
    (3, 4, 3)
    >>> decode_image(b"hello", max_bytes=10_000, max_pixels=100)
    Traceback (most recent call last):
    ...
    ferkit.serve.images.ApiError: 415 unsupported_media_type: ...
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np

#: Pillow decoders tried (phone MPO files open through the JPEG one)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
#: declared part types we accept; anything else is refused before sniffing the bytes
ALLOWED_DECLARED = ("image/", "application/octet-stream")
_HUMAN_FORMATS = "JPEG, PNG, WebP, BMP or GIF"


class ApiError(Exception):
    """An error answered to the client as ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def check_declared_type(content_type: str | None) -> None:
    """Refuse an upload whose declared type is clearly not an image (e.g. text/plain)."""
    if not content_type:
        return
    ctype = content_type.split(";")[0].strip().lower()
    if not ctype.startswith(ALLOWED_DECLARED):
        raise ApiError(415, "unsupported_media_type",
                       f"the uploaded file is declared as {ctype!r}; send a "
                       f"{_HUMAN_FORMATS} image (image/*)")


def decode_base64(text: str, *, max_bytes: int) -> bytes:
    """Bytes of a base64 string, with or without a ``data:image/...;base64,`` prefix."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ApiError(422, "bad_base64", "a data: URL must be base64-encoded "
                                              "(data:image/png;base64,...)")
    text = "".join(text.split())  # line breaks from `base64` tools are harmless
    if len(text) > max_bytes * 4 // 3 + 4:
        raise ApiError(413, "payload_too_large",
                       f"the image is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "bad_base64",
                       "image_base64 is not valid base64 (characters A-Z a-z 0-9 + / and "
                       "= padding)") from None


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array from encoded image bytes, or :class:`ApiError`.

    The HTTP checks (size, format, pixel count) come first, from the header; decoding is
    then :func:`ferkit.inference.io.load_image`, as for ``ferkit predict``, so a file gives
    the same pixels (EXIF rotation, transparency on white, 16-bit) either way.
    """
    from PIL import Image, UnidentifiedImageError

    from ferkit.errors import InputError
    from ferkit.inference.io import load_image

    Image.init()  # register every plugin (WebP), else formats= below can KeyError
    if not data:
        raise ApiError(422, "empty_image", "the uploaded image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ApiError(413, "payload_too_large",
                       f"the image has {len(data)} bytes; the limit is {max_bytes}")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            header = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
            SyntaxError):
        raise ApiError(415, "unsupported_media_type",
                       f"the upload is not a {_HUMAN_FORMATS} image") from None
    width, height = header.size
    if width * height > max_pixels:
        raise ApiError(413, "too_many_pixels",
                       f"the image is {width}x{height} = {width * height} pixels; the limit "
                       f"is {max_pixels}; resize it first")
    try:
        return load_image(data, max_pixels=max_pixels, name=f"the {header.format} upload")
    except InputError as exc:
        raise ApiError(422, "corrupt_image", str(exc)) from None
