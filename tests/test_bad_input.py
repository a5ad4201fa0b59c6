"""Every kind of awkward input: a specific message, or a correct conversion."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from ferkit.errors import InputError
from ferkit.inference.io import load_image


def _jpeg_bytes(array: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()


def _two_colour(height: int = 20, width: int = 40) -> np.ndarray:
    """Left half red, right half blue."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (255, 0, 0)
    image[:, width // 2 :] = (0, 0, 255)
    return image


# -- unusable files ---------------------------------------------------------------------


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.jpg is empty \(0 bytes\)$"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    data = _jpeg_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.jpg is truncated: the file ends before"):
        load_image(path)


def test_truncated_png(tmp_path):
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[:3000])
    with pytest.raises(InputError, match=r"cut\.png is truncated"):
        load_image(path)


@pytest.mark.parametrize(("content", "expected"), [
    (b"hello, I am a text file\n", r"looks like text: 'hello, I am a text file'"),
    (b"<!DOCTYPE html><html><body>404</body></html>", r"looks like an HTML page"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", r"looks like a PDF document"),
    (b'{"faces": []}', r"looks like JSON"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", r"looks like an MP4/MOV video"),
    (bytes(range(200, 256)) * 4, r"unknown format, starts with bytes c8 c9"),
])
def test_non_image_files_say_what_they_look_like(tmp_path, content, expected):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"photo\.jpg is not an image \(" + expected):
        load_image(path)


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    # A valid PNG header announcing 40000 x 40000 pixels, with a tiny body: never decoded.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
           + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(InputError, match=r"bomb\.png has 1\.6 gigapixels \(40000x40000\), "
                                         r"above the limit of 179 megapixels"):
        load_image(path)


def test_pixel_limit_is_configurable():
    data = _jpeg_bytes(_two_colour())
    with pytest.raises(InputError, match=r"has 0\.0008 megapixels \(40x20\), above the limit "
                                         r"of 0\.0005 megapixels"):
        load_image(data, max_pixels=500)
    assert load_image(data, max_pixels=None).shape == (20, 40, 3)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match=r"nope\.jpg does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a folder, not an image"):
        load_image(tmp_path)


def test_unsupported_python_objects():
    with pytest.raises(InputError, match="cannot read an image from a int"):
        load_image(42)
    with pytest.raises(InputError, match="color must be 'rgb' or 'bgr'"):
        load_image(np.zeros((2, 2, 3), np.uint8), color="hsv")


# -- images that need converting -----------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG", quality=95)
    out = load_image(buffer.getvalue())
    assert out.shape == (8, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 3


def test_16_bit_png_keeps_its_range(tmp_path):
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    out = load_image(path)
    assert out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]  # top 8 bits, not clipped at 255
    assert (out[..., 0] == out[..., 2]).all()


def test_palette_png_with_and_without_transparency(tmp_path):
    image = Image.new("P", (4, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putdata([0, 1, 1, 0])
    path = tmp_path / "pal.png"
    image.save(path)
    assert load_image(path)[0].tolist() == [[10, 20, 30], [200, 100, 50], [200, 100, 50],
                                            [10, 20, 30]]
    image.save(path, transparency=0)  # index 0 transparent → white
    assert load_image(path)[0].tolist() == [[255, 255, 255], [200, 100, 50], [200, 100, 50],
                                            [255, 255, 255]]


def test_rgba_and_la_composite_on_white(tmp_path):
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 0, 128]]], np.uint8)
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert load_image(path)[0].tolist() == [[255, 0, 0], [255, 255, 255], [127, 127, 127]]
    # Same rule for arrays with an alpha channel.
    assert load_image(rgba)[0].tolist() == [[255, 0, 0], [255, 255, 255], [127, 127, 127]]
    la = Image.fromarray(np.array([[[50, 255], [50, 0]]], np.uint8), "LA")
    assert load_image(la)[0].tolist() == [[50, 50, 50], [255, 255, 255]]


def test_grayscale_and_one_bit_images(tmp_path):
    gray = np.array([[0, 100, 255]], np.uint8)
    assert load_image(Image.fromarray(gray))[0].tolist() == [[0] * 3, [100] * 3, [255] * 3]
    assert load_image(gray)[0, 1].tolist() == [100, 100, 100]
    assert load_image(gray[..., None])[0, 2].tolist() == [255, 255, 255]
    path = tmp_path / "bits.png"
    Image.fromarray(np.array([[True, False]])).convert("1").save(path)
    assert load_image(path)[0].tolist() == [[255] * 3, [0] * 3]


@pytest.mark.parametrize(("orientation", "top_left", "shape"), [
    (1, (255, 0, 0), (20, 40, 3)),   # as stored: red on the left
    (3, (0, 0, 255), (20, 40, 3)),   # rotated 180: blue now on the left
    (6, (255, 0, 0), (40, 20, 3)),   # rotated 90 clockwise: red on top
    (8, (0, 0, 255), (40, 20, 3)),   # rotated 90 counter-clockwise: blue on top
])
def test_exif_rotation_is_applied(tmp_path, orientation, top_left, shape):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rotated{orientation}.jpg"
    path.write_bytes(_jpeg_bytes(_two_colour(), exif=exif.tobytes()))
    out = load_image(path).astype(int)
    assert out.shape == shape
    assert np.abs(out[2, 2] - top_left).max() < 30
    assert np.abs(out[-3, -3] - top_left).max() > 200  # the opposite corner is the other colour


def test_arrays_of_other_types(tmp_path):
    floats = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    assert load_image(floats)[0, 0].tolist() == [0, 128, 255]
    assert load_image(np.array([[[0, 1000, 65535]]], np.uint16))[0, 0].tolist() == [0, 3, 255]
    with pytest.raises(InputError, match="NaN or infinite"):
        load_image(np.full((2, 2, 3), np.nan))
    with pytest.raises(InputError, match=r"has shape \(2, 2, 2\)"):
        load_image(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(InputError, match="has no pixels"):
        load_image(np.zeros((0, 5, 3), np.uint8))


# -- through the Recognizer ---------------------------------------------------------------


@pytest.fixture(scope="module")
def recognizer(tiny_checkpoint):
    import ferkit

    return ferkit.Recognizer.from_pretrained(tiny_checkpoint)


def test_many_faces_and_no_face(recognizer):
    folder = shared_path("face_photos", "dlib", "examples", "faces")
    crowd, dogs = recognizer([folder / "bald_guys.jpg", folder / "dogs.jpg"])
    assert len(crowd.faces) == 24 and dogs.faces == ()
    boxes = np.array([f.box for f in crowd.faces])
    assert boxes[:, 2].max() <= crowd.width + 2 and boxes[:, 3].max() <= crowd.height + 2


def test_awkward_files_in_a_batch(recognizer, tmp_path):
    files = {}
    for name, data in {
        "empty.jpg": b"",
        "text.jpg": b"just words",
        "cut.jpg": _jpeg_bytes(np.random.default_rng(2).integers(0, 256, (64, 64, 3),
                                                                   dtype=np.uint8))[:900],
        "ok.jpg": _jpeg_bytes(_two_colour()),
    }.items():
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (30, 30), (0, 0, 0, 0)).save(cmyk)
    results = recognizer([*files.values(), cmyk], detect=False)
    errors = [r.error for r in results]
    assert errors[0].endswith("is empty (0 bytes)")
    assert "is not an image (looks like text: 'just words')" in errors[1]
    assert "is truncated" in errors[2]
    assert errors[3] is None and errors[4] is None
    assert len(results[3].faces) == 1 and results[4].width == 30
