"""``ferkit predict``: outputs parse, match the Python API, and failures are reported."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

import ferkit
from conftest import shared_path
from ferkit.cli import main
from ferkit.inference.files import find_images


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Three small noise "faces" in nested folders, plus a text file posing as an image."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for rel in ("a.png", "sub/b.jpg", "sub/deeper/c.png"):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(root / rel)
    (root / "sub" / "notes.txt").write_text("not an image")
    (root / "sub" / "broken.jpg").write_text("hello, I am text")
    return root


@pytest.fixture(scope="module")
def recognizer(tiny_checkpoint):
    return ferkit.Recognizer.from_pretrained(tiny_checkpoint)


def _run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_find_images_expands_folders_and_globs(photo_dir):
    files, problems = find_images([photo_dir, str(photo_dir / "**" / "*.png"),
                                   photo_dir / "a.png", photo_dir / "nope.jpg",
                                   str(photo_dir / "*.gif")])
    names = [p.relative_to(photo_dir).as_posix() for p in files]
    assert names == ["a.png", "sub/b.jpg", "sub/broken.jpg", "sub/deeper/c.png"]  # no dupes
    assert [m for _, m in problems] == [f"{photo_dir / 'nope.jpg'} does not exist",
                                        f"pattern {photo_dir / '*.gif'} matched no file"]


def test_json_matches_the_api(capsys, photo_dir, tiny_checkpoint, recognizer):
    status, out, err = _run(capsys, photo_dir, "--model", tiny_checkpoint, "--no-detect",
                            "--json", "--batch-size", "2")
    assert status == 0
    rows = json.loads(out)
    files, _ = find_images([photo_dir])
    expected = recognizer(files, detect=False)
    assert [r["source"] for r in rows] == [str(f) for f in files]
    for row, res in zip(rows, expected, strict=True):
        assert row == res.to_dict()
    broken = rows[2]
    assert broken["faces"] == [] and "is not an image (looks like text" in broken["error"]
    assert "failed (1):" in err and "broken.jpg is not an image" in err


def test_csv_matches_the_api(capsys, photo_dir, tiny_checkpoint, recognizer):
    status, out, _ = _run(capsys, photo_dir / "sub", "--model", tiny_checkpoint, "--no-detect",
                          "--csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["source"].rsplit("/", 1)[-1] for r in rows] == ["b.jpg", "broken.jpg", "c.png"]
    api = recognizer(photo_dir / "sub" / "b.jpg", detect=False).faces[0]
    row = rows[0]
    assert row["face"] == "1" and row["label"] == api.label and row["error"] == ""
    assert float(row["x2"]) == 40.0 and float(row["y2"]) == 48.0
    for name, p in api.probs.items():
        assert float(row[f"p_{name}"]) == pytest.approx(p, abs=1e-6)
    assert rows[1]["face"] == "" and "not an image" in rows[1]["error"]


def test_human_table_and_detection_on_a_photo(capsys, tiny_checkpoint, recognizer):
    photo = shared_path("face_photos", "dlib", "examples", "faces", "2009_004587.jpg")
    dogs = photo.with_name("dogs.jpg")
    status, out, err = _run(capsys, photo, dogs, "--model", tiny_checkpoint, "--top-k", "2")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["file", "face"] and len(lines) == 4
    api = recognizer(photo)
    for line, face in zip(lines[1:3], api.faces, strict=True):
        cells = line.split()
        assert cells[1:4] == [str(api.faces.index(face) + 1),
                              ",".join(f"{v:.0f}" for v in face.box), face.label]
        assert len(line.split(",")) == 4  # box commas + exactly one "next" class
    assert "no face found" in lines[3]
    assert "2 images, 2 faces" in err
    assert "no face found in 1 image; if they are already face crops, add --no-detect" in err


def test_quiet_lists_labels(capsys, photo_dir, tiny_checkpoint, recognizer):
    status, out, _ = _run(capsys, photo_dir / "a.png", "--model", tiny_checkpoint,
                          "--no-detect", "-f", "quiet")
    label = recognizer(photo_dir / "a.png", detect=False).faces[0].label
    assert status == 0 and out == f"{photo_dir / 'a.png'}\t1\t{label}\n"


def test_annotate_draws_boxes(capsys, photo_dir, tiny_checkpoint, tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(big)
    status, _, _ = _run(capsys, big, photo_dir / "a.png", "--model", tiny_checkpoint,
                        "--no-detect", "--annotate", tmp_path / "out", "-f", "quiet")
    assert status == 0
    drawn = np.asarray(Image.open(tmp_path / "out" / "big.png"))
    assert drawn.shape == (200, 300, 3)
    # The whole-image box is outlined (edge pixels recoloured), the middle left alone.
    assert (drawn[100, 0] != 90).any() and (drawn[100, 150] == 90).all()
    assert (tmp_path / "out" / "a.png").is_file()


def test_every_input_failing_exits_1(capsys, photo_dir, tiny_checkpoint):
    status, _, err = _run(capsys, photo_dir / "sub" / "broken.jpg", "--model", tiny_checkpoint)
    assert status == 1 and "broken.jpg is not an image" in err


def test_usage_errors_exit_2(capsys, photo_dir, tiny_checkpoint, tmp_path):
    status, _, err = _run(capsys, tmp_path / "nothing-here", "--model", tiny_checkpoint)
    assert status == 2 and "no images to read" in err and "does not exist" in err
    status, _, err = _run(capsys, photo_dir, "--model", tiny_checkpoint, "--format", "xml")
    assert status == 2 and "--format must be one of" in err
