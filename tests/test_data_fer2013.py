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
