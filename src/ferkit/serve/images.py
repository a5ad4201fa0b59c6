"""Turning untrusted upload bytes into an RGB array, with limits checked before decoding.

The header is read first (Pillow opens lazily), so a file that claims 100,000 x 100,000
pixels is refused before a single pixel is decoded, and the memory its decoding will take
(size x bit depth x the conversions to 8-bit RGB) is known beforehand
(:func:`inspect_image`), so the server can bound it.  Only a short list of raster formats
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
    ferkit.serve.errors.ApiError: 415 unsupported_media_type: ...
    >>> buf = io.BytesIO(); Image.new("I;16", (100, 10)).save(buf, "PNG")
    >>> header = inspect_image(buf.getvalue(), max_bytes=10_000, max_pixels=10_000)
    >>> header.mode, header.decode_bytes
    ('I;16', 22000)
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from ferkit.serve.errors import ApiError

#: Pillow decoders tried (phone MPO files open through the JPEG one)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
#: declared part types we accept; anything else is refused before sniffing the bytes
ALLOWED_DECLARED = ("image/", "application/octet-stream")
_HUMAN_FORMATS = "JPEG, PNG, WebP, BMP or GIF"

#: Peak bytes per pixel while :func:`ferkit.inference.io.load_image` turns a Pillow image of
#: this mode into an 8-bit RGB array, including the result: Pillow's own buffer (1, 2 or 4
#: bytes), the array copies of each conversion (16-bit: uint16 -> uint32 -> uint8 -> RGB;
#: alpha: RGBA + white + composite + RGB) and the 3-byte result, counted from the steps of
#: ``load_image`` and rounded up; the request keeps its reservation until it is answered.
_DECODE_BYTES_PER_PIXEL = {"1": 8, "L": 8, "P": 12, "RGB": 13, "YCbCr": 13, "CMYK": 13,
                           "I;16": 18, "I;16L": 18, "I;16B": 18, "I;16N": 18, "I": 24,
                           "F": 24, "LA": 26, "PA": 26, "RGBA": 26, "RGBa": 26, "La": 26}
_DEFAULT_BYTES_PER_PIXEL = 26
#: an EXIF rotation makes one more copy in Pillow's 4-byte layout
_EXIF_ROTATE_BYTES_PER_PIXEL = 4


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


@dataclass(frozen=True)
class ImageHeader:
    """What an upload's header says, read without decoding a pixel."""

    format: str
    width: int
    height: int
    mode: str
    #: estimated peak memory of decoding it to 8-bit RGB, in bytes
    decode_bytes: int


def _too_many_pixels(width: int | None, height: int | None, pixels: int,
                     max_pixels: int) -> ApiError:
    size = f"{width}x{height} = " if width is not None else ""
    return ApiError(413, "too_many_pixels",
                    f"the image is {size}{pixels} pixels; the limit is {max_pixels}; "
                    "resize it first")


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageHeader:
    """The upload's format, size, mode and decoding cost, or :class:`ApiError`.

    Checks, in order: empty (422), over ``max_bytes`` (413 ``payload_too_large``), not an
    allowed format (415), over ``max_pixels`` (413 ``too_many_pixels``: also for images
    beyond Pillow's own decompression-bomb limit, which it refuses while opening).
    """
    from PIL import Image, UnidentifiedImageError

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
    except Image.DecompressionBombError as exc:
        # Over twice Pillow's MAX_IMAGE_PIXELS: it refuses to open; its message has the count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(None, None, int(found.group(1)) if found else max_pixels + 1,
                               max_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ApiError(415, "unsupported_media_type",
                       f"the upload is not a {_HUMAN_FORMATS} image") from None
    width, height = header.size
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, width * height, max_pixels)
    # EXIF is not parsed here (for PNG that would decode the image): assume a rotation.
    per_pixel = (_DECODE_BYTES_PER_PIXEL.get(header.mode, _DEFAULT_BYTES_PER_PIXEL)
                 + _EXIF_ROTATE_BYTES_PER_PIXEL)
    return ImageHeader(header.format or "?", width, height, header.mode,
                       width * height * per_pixel)


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int,
                 header: ImageHeader | None = None) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array from encoded image bytes, or :class:`ApiError`.

    The HTTP checks (size, format, pixel count) come first, from the header
    (:func:`inspect_image`; pass its ``header`` when already done); decoding is then
    :func:`ferkit.inference.io.load_image`, as for ``ferkit predict``, so a file gives the
    same pixels (EXIF rotation, transparency on white, 16-bit) either way.
    """
    from ferkit.errors import InputError
    from ferkit.inference.io import load_image

    if header is None:
        header = inspect_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    try:
        return load_image(data, max_pixels=max_pixels, name=f"the {header.format} upload")
    except InputError as exc:
        raise ApiError(422, "corrupt_image", str(exc)) from None
