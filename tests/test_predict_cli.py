"""``ferkit predict``: outputs parse, match the Python API, and failures are reported."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

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
    files, problems, skipped = find_images([photo_dir, str(photo_dir / "**" / "*.png"),
                                   photo_dir / "a.png", photo_dir / "nope.jpg",
                                   str(photo_dir / "*.gif")])
    names = [p.relative_to(photo_dir).as_posix() for p in files]
    assert names == ["a.png", "sub/b.jpg", "sub/broken.jpg", "sub/deeper/c.png"]  # no dupes
    assert [m for _, m in problems] == [f"{photo_dir / 'nope.jpg'} does not exist",
                                        f"pattern {photo_dir / '*.gif'} matched no file"]
    assert skipped == []


def test_json_matches_the_api(capsys, photo_dir, tiny_checkpoint, recognizer):
    status, out, err = _run(capsys, photo_dir, "--model", tiny_checkpoint, "--no-detect",
                            "--json", "--batch-size", "2")
    assert status == 1  # broken.jpg failed: any failed input makes the exit status 1
    rows = json.loads(out)
    files = find_images([photo_dir]).files
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
    assert status == 1  # broken.jpg
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


@pytest.fixture
def hostile_dir(tmp_path):
    """A folder with a symlink loop, a link to nothing, a named pipe, a 3 MB file and a
    file name holding terminal escapes, beside two real images."""
    import os

    root = tmp_path / "hostile"
    (root / "real").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for rel in ("real/a.png", "real/b.jpg"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / rel)
    (root / "real" / "loop").symlink_to(root)                   # hostile/real/loop -> hostile
    (root / "real" / "self").symlink_to(".")                     # a link to its own folder
    (root / "nowhere.jpg").symlink_to(root / "missing.jpg")
    os.mkfifo(root / "pipe.jpg")
    (root / "huge.png").write_bytes(b"\x89PNG" + b"\0" * 3 * 2**20)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        root / "evil\x1b[2J\nname.png")
    return root


def test_symlink_loops_end_fast_and_skips_are_reported(hostile_dir):
    import time

    start = time.perf_counter()
    for argument in (hostile_dir, str(hostile_dir / "**" / "*.png")):
        found = find_images([argument], max_bytes=2**20)
        assert time.perf_counter() - start < 5  # the loop is not followed round and round
        names = sorted(p.relative_to(hostile_dir).as_posix() for p in found.files)
        assert names == (["evil\x1b[2J\nname.png", "real/a.png", "real/b.jpg"]
                         if argument == hostile_dir else ["evil\x1b[2J\nname.png", "real/a.png"])
        why = {Path(path).name: reason for path, reason in found.skipped}
        assert "already searched" in why["loop"] and "already searched" in why["self"]
        if argument == hostile_dir:
            assert why["nowhere.jpg"] == "a link to nothing"
            assert why["pipe.jpg"].startswith("a named pipe")
            assert [m for _, m in found.problems] == [
                f"{hostile_dir / 'huge.png'} is 3.0 MB, over the 1.0 MB limit for one image; "
                "raise it with --max-file-size"]
    # A pipe named on the command line is refused, not opened (reading it would block).
    found = find_images([hostile_dir / "pipe.jpg"])
    assert found.files == [] and "is a named pipe (FIFO), not an image" in found.problems[0][1]


def test_cli_reports_skips_escapes_names_and_exits_1(capsys, hostile_dir, tiny_checkpoint):
    status, out, err = _run(capsys, hostile_dir, "--model", tiny_checkpoint, "--no-detect",
                            "--max-file-size", "1", "-f", "quiet")
    assert status == 1  # huge.png was refused
    assert "\x1b" not in out + err and "evil\\x1b[2J\\nname.png\t1\t" in out
    assert "skipped while searching folders (4):" in err and "a named pipe" in err
    assert "failed (1):" in err and "huge.png is 3.0 MB, over the 1.0 MB limit" in err
    # Raising the limit lets huge.png through to the decoder (which reports it as broken).
    status, _, err = _run(capsys, hostile_dir / "huge.png", "--model", tiny_checkpoint,
                          "--max-file-size", "4")
    assert status == 1 and "over the" not in err and "huge.png" in err
