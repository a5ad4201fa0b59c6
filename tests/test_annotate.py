"""Annotated pictures: one label-placement rule keeps labels off each other and inside the
image (CLI, video, web page); `predict --annotate` keeps sub-folders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from ferkit.inference.annotate import (
    LabelledBox,
    draw_labelled_boxes,
    label_rects,
    place_labels,
    results_to_boxes,
)


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def test_labels_stay_inside_the_image_at_every_edge():
    width, height = 300, 200
    boxes = [(250, 0, 300, 50),     # top-right corner: no room above, right edge
             (0, 150, 40, 200),     # bottom-left corner: no room below
             (120, 60, 180, 140)]
    sizes = [(90, 20), (90, 20), (90, 20)]
    for (x, y), (w, h) in zip(place_labels(boxes, sizes, (width, height)), sizes, strict=True):
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height
    # The top-right face has no room above: its label goes below the box, pulled inside.
    assert place_labels(boxes[:1], sizes[:1], (width, height)) == [(210.0, 50.0)]


def test_a_row_of_close_faces_gets_labels_that_do_not_overlap():
    boxes = [(10 + 45 * i, 60, 50 + 45 * i, 110) for i in range(6)]  # labels wider than faces
    sizes = [(70, 18)] * 6
    corners = place_labels(boxes, sizes, (300, 200))
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes, strict=True)]
    assert all(_overlap(a, b) == 0 for a, b in itertools.combinations(rects, 2))
    # ... and none covers another face.
    for i, rect in enumerate(rects):
        assert all(_overlap(rect, box) == 0 for j, box in enumerate(boxes) if j != i)


def test_crowd_photo_labels_do_not_overlap(tiny_checkpoint, tmp_path):
    """24 detected faces in dlib's bald_guys.jpg: every numbered label inside the photo,
    none over another label."""
    import ferkit

    photo = shared_path("face_photos", "dlib", "examples", "faces", "bald_guys.jpg")
    result = ferkit.Recognizer.from_pretrained(tiny_checkpoint)(photo)
    assert len(result.faces) == 24
    boxes = results_to_boxes(result)
    assert [b.lines[0].split()[0] for b in boxes] == [f"#{i}" for i in range(1, 25)]
    rects = label_rects((result.width, result.height), boxes)
    for x1, y1, x2, y2 in rects:
        assert x1 >= 0 and x2 <= result.width and y1 >= 0 and y2 <= result.height
    overlapping = [(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(rects), 2)
                   if _overlap(a, b) > 0]
    assert overlapping == []
    from ferkit.inference.io import load_image

    drawn = draw_labelled_boxes(load_image(photo), boxes)
    assert drawn.size == (result.width, result.height)
    drawn.save(tmp_path / "crowd.jpg")  # looked at by eye while writing this test


def test_drawing_puts_label_pixels_where_the_rule_says():
    image = np.full((120, 200, 3), 255, np.uint8)
    faces = [LabelledBox((150, 0, 199, 40), ("#1 happy 0.90",), (230, 159, 0))]
    drawn = np.asarray(draw_labelled_boxes(image, faces))
    (x1, y1, x2, _y2), = label_rects((200, 120), faces)
    assert x2 <= 200 and y1 >= 40  # no room above the box: below it, inside the right edge
    # The label's background colour fills the rule's rectangle (sampled at its corner).
    assert drawn[int(y1) + 1, int(x1) + 1].tolist() == [230, 159, 0]


def test_predict_annotate_keeps_sub_folders(tiny_checkpoint, tmp_path, capsys):
    from ferkit.cli import main

    photos = tmp_path / "photos"
    for folder, shade in (("a", 60), ("b", 200), ("a/deeper", 120)):
        (photos / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (shade, shade, shade)).save(photos / folder / "x.jpg")
    Image.new("RGB", (64, 64), (10, 10, 10)).save(photos / "a" / "x.bmp")
    out = tmp_path / "out"
    code = main(["predict", str(photos), "--no-detect", "--model", str(tiny_checkpoint),
                 "--backend", "torch", "--annotate", str(out), "-f", "quiet"])
    assert code == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a/deeper/x.jpg", "a/x.bmp.png", "a/x.jpg", "b/x.jpg"]
    # Each copy is its own photo (middle pixel keeps the source's shade).
    middles = {name: np.asarray(Image.open(out / name))[32, 32, 0] for name in written}
    assert abs(int(middles["a/x.jpg"]) - 60) < 8 and abs(int(middles["b/x.jpg"]) - 200) < 8


def test_predict_annotate_same_name_from_two_arguments(tiny_checkpoint, tmp_path, capsys):
    from ferkit.cli import main

    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / folder / "face.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "one" / "face.png"), str(tmp_path / "two"),
                 "--no-detect", "--model", str(tiny_checkpoint), "--backend", "torch",
                 "--annotate", str(out), "-f", "quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["face-1.png", "face.png"]


@pytest.mark.parametrize("suffix", [".webm", ".mp4"])
def test_video_codec_is_browser_playable_or_says_what_it_wrote(tmp_path, suffix):
    cv2 = pytest.importorskip("cv2")
    from ferkit.inference.video import open_writer

    writer, codec = open_writer(tmp_path / f"clip{suffix}", 10.0, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    capture = cv2.VideoCapture(str(tmp_path / f"clip{suffix}"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 5
    if suffix == ".webm":  # libvpx ships in every opencv-python wheel
        assert (codec.fourcc, codec.browser_playable, codec.note) == ("VP80", True, None)
    elif codec.fourcc == "avc1":  # an OpenCV build with an H.264 encoder
        assert codec.browser_playable and codec.note is None
    else:
        assert codec.fourcc == "mp4v" and not codec.browser_playable
        assert "cannot write H.264" in codec.note and ".webm" in codec.note
