"""FER2013 CSV layouts, splits, duplicates, the npz cache, and malformed files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ferkit.data import open_dataset
from ferkit.data.fer2013 import fer2013_to_npz, open_fer2013
from ferkit.errors import DataError
from ferkit.labels import CANONICAL_INDEX

# FER2013 native: 0 angry 1 disgust 2 fear 3 happy 4 sad 5 surprise 6 neutral.
ROWS = [  # (emotion, Usage, grey level of the whole image)
    (0, "Training", 10), (3, "Training", 20), (6, "Training", 30), (5, "Training", 40),
    (4, "PublicTest", 50), (1, "PublicTest", 20),      # grey 20 duplicates a Training image
    (2, "PrivateTest", 70), (3, "PrivateTest", 80), (6, "PrivateTest", 30),
]


def pixels(value: int) -> str:
    return " ".join([str(value)] * 2304)


def write_csv(path: Path, layout: str = "fer2013", rows=ROWS) -> Path:
    if layout == "fer2013":
        lines = ["emotion,pixels,Usage"] + [f"{e},{pixels(v)},{u}" for e, u, v in rows]
    elif layout == "icml":
        lines = ["emotion, Usage, pixels"] + [f"{e},{u},{pixels(v)}" for e, u, v in rows]
    else:  # Kaggle's train.csv: Training rows only, no Usage
        lines = ["emotion,pixels"] + [f"{e},{pixels(v)}" for e, u, v in rows if u == "Training"]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def canon(*names: str) -> list[int]:
    return [CANONICAL_INDEX[n] for n in names]


@pytest.mark.parametrize("layout, name", [("fer2013", "fer2013.csv.gz"),
                                          ("icml", "icml_face_data.csv")])
def test_splits_and_canonical_labels(tmp_path, layout, name):
    path = write_csv(tmp_path / name, layout)
    train = open_dataset(path, split="train")
    assert train.targets.tolist() == canon("anger", "happy", "neutral", "surprise")
    assert open_dataset(path, split="val").targets.tolist() == canon("sad", "disgust")
    test = open_dataset(path, split="PrivateTest")
    assert test.targets.tolist() == canon("fear", "happy", "neutral")
    image = test.load_image(1)
    assert image.mode == "L" and image.size == (48, 48)
    assert np.asarray(image).min() == np.asarray(image).max() == 80
    assert len(open_dataset(path, split="all")) == 9


def test_kaggle_train_csv_has_only_train(tmp_path):
    path = write_csv(tmp_path / "train.csv", "train")
    assert len(open_dataset(path)) == 4
    with pytest.raises(DataError, match="no Usage column"):
        open_dataset(path, split="test")


def test_drop_train_duplicates(tmp_path):
    path = write_csv(tmp_path / "fer2013.csv")
    val = open_fer2013(path, split="val", drop_train_duplicates=True)
    assert val.targets.tolist() == canon("sad")
    assert val.dropped == {"same pixels in Training": 1}
    test = open_fer2013(path, split="test", drop_train_duplicates=True)
    assert test.targets.tolist() == canon("fear", "happy")


def test_npz_cache_round_trip(tmp_path):
    path = write_csv(tmp_path / "fer2013.csv")
    cache = fer2013_to_npz(path, tmp_path / "fer.npz")
    for split in ("train", "val", "test"):
        a, b = open_dataset(path, split=split), open_dataset(cache, split=split)
        assert a.targets.tolist() == b.targets.tolist()
        assert np.array_equal(a.images, b.images)


@pytest.mark.parametrize("line, message", [
    ("9," + pixels(1) + ",Training", "line 3: emotion '9' is not a FER2013 label"),
    ("1," + " ".join(["1"] * 2000) + ",Training", "line 3: 'pixels' has 2000 numbers"),
    ("1," + pixels(300) + ",Training", "line 3: a pixel value exceeds 255"),
    ("1," + pixels(1).replace("1", "-1", 1) + ",Training", "line 3: 'pixels' holds characters"),
    ("1," + pixels(1) + ",Holdout", "line 3: Usage 'Holdout' is not one of"),
    ("1," + pixels(1), "line 3: expected 3 comma-separated columns"),
])
def test_malformed_rows_name_the_line(tmp_path, line, message):
    path = tmp_path / "fer2013.csv"
    path.write_text(f"emotion,pixels,Usage\n0,{pixels(5)},Training\n{line}\n")
    with pytest.raises(DataError, match=message):
        open_fer2013(path)
    lenient = open_fer2013(path, strict=False)  # data check's mode: skip and list
    assert len(lenient) == 1 and message.split(": ", 1)[1] in lenient.problems[0]


def test_wrong_columns_and_missing_file(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("pixels\n" + pixels(1) + "\n")
    with pytest.raises(DataError, match="lacks the columns 'emotion' and 'pixels'"):
        open_fer2013(path)
    with pytest.raises(DataError, match="does not exist"):
        open_fer2013(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unknown FER2013 split 'dev'"):
        open_fer2013(write_csv(tmp_path / "f.csv"), split="dev")


def test_real_fer2013_counts(shared_data):
    from ferkit.data.fer2013 import load_fer2013_table

    path = shared_data / "fer2013" / "fer2013.csv.gz"
    expected = {
        "train": {"neutral": 4965, "happy": 7215, "sad": 4830, "surprise": 3171, "fear": 4097,
                  "disgust": 436, "anger": 3995},
        "val": {"neutral": 607, "happy": 895, "sad": 653, "surprise": 415, "fear": 496,
                "disgust": 56, "anger": 467},
        "test": {"neutral": 626, "happy": 879, "sad": 594, "surprise": 416, "fear": 528,
                 "disgust": 55, "anger": 491},
    }
    for split, counts in expected.items():
        assert open_fer2013(path, split=split).summary().per_class == counts
    assert len(open_fer2013(path, split="val", drop_train_duplicates=True)) == 3589 - 280
    assert len(open_fer2013(path, split="test", drop_train_duplicates=True)) == 3589 - 288
    assert load_fer2013_table(path).problems == ()


def _table_fields(table):
    return (table.images, table.emotion, table.usage, table.lines, table.problems)


def test_block_boundaries_change_nothing(tmp_path, monkeypatch):
    from ferkit.data import fer2013
    from ferkit.data.fer2013 import clear_table_cache, load_fer2013_table

    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\r\n" + "\r\n".join(
        [f"{e},{pixels(v)},{u}" for e, u, v in ROWS] + ["", "9," + pixels(1) + ",Training"])
        + "\r\n")
    whole = load_fer2013_table(path)
    clear_table_cache()
    monkeypatch.setattr(fer2013, "BLOCK_BYTES", 7_001)  # blocks end mid-line, mid-number
    streamed = load_fer2013_table(path)
    for a, b in zip(_table_fields(whole), _table_fields(streamed), strict=True):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
    assert streamed.lines.tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    assert "line 12: emotion '9'" in streamed.problems[0]


def test_one_megabyte_line_is_reported_with_bounded_memory(tmp_path):
    """One 1 MB field made the vectorised parser allocate rows x longest-gap int64s."""
    import tracemalloc

    path = tmp_path / "fer2013.csv"
    rows = [f"{i % 7},{pixels(i)},Training" for i in range(64)]
    rows[10] = f"3,{pixels(1)},{'x' * 1_000_000}"  # e.g. a corrupted Usage column
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    tracemalloc.start()
    try:
        dataset = open_fer2013(path, strict=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64e6, f"parsing a 1.6 MB file peaked at {peak / 1e6:.0f} MB"
    assert len(dataset) == 63 and dataset.rows.tolist() == [*range(10), *range(11, 64)]
    assert dataset.problems[0].startswith(f"{path} line 12: the line is 1,")
    with pytest.raises(DataError, match="line 12: the line is 1,0"):
        open_fer2013(path)


def test_line_longer_than_a_block_streams_past(tmp_path, monkeypatch):
    from ferkit.data import fer2013

    monkeypatch.setattr(fer2013, "BLOCK_BYTES", 50_000)
    path = tmp_path / "fer2013.csv.gz"
    rows = [f"{e},{pixels(v)},{u}" for e, u, v in ROWS]
    rows.insert(2, "0," + " ".join(["1"] * 200_000) + ",Training")  # 400 KB, no newline in it
    path.write_bytes(gzip.compress(("emotion,pixels,Usage\n" + "\n".join(rows)).encode()))
    train = open_fer2013(path, strict=False)
    assert train.problems[0].startswith(f"{path} line 4: the line is 400,")
    assert train.rows.tolist() == [0, 1, 3, 4]  # row numbers stay aligned with the file
    assert train.targets.tolist() == canon("anger", "happy", "neutral", "surprise")


@pytest.mark.parametrize("content, message", [
    (bytes(range(255, -1, -1)) * 64, "line 1 is not text"),
    (b"\x00" * 200_000, "line 1 is over 64 KB long"),
    (b"", "is empty"),
    (gzip.compress(b"emotion,pixels,Usage\n" + b"0," * 5000, mtime=0)[:-30], "cannot read"),
], ids=["binary", "no-newline", "empty", "truncated-gzip"])
def test_binary_or_broken_files_are_one_line_errors(tmp_path, capsys, content, message):
    from ferkit.cli import main

    path = tmp_path / ("fer2013.csv.gz" if content[:2] == b"\x1f\x8b" else "fer2013.csv")
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        open_fer2013(path)
    assert main(["data", "check", str(path), "--data-format", "fer2013"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
