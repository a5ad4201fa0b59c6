"""Class folders and label lists: names, numbers with a stated order, malformed layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.data import detect_format, open_dataset
from ferkit.data.folder import open_folder
from ferkit.data.label_list import open_label_list
from ferkit.errors import DataError
from ferkit.labels import CANONICAL, CANONICAL_INDEX


def write_image(path: Path, value: int, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 6), (value,) * 3 if mode == "RGB" else value).save(path)
    return path


def canon(*names: str) -> list[int]:
    return [CANONICAL_INDEX[n] for n in names]


def test_named_class_folders_any_spelling(tmp_path):
    write_image(tmp_path / "train" / "Happiness" / "a.png", 10)
    write_image(tmp_path / "train" / "angry" / "b.jpg", 20)
    write_image(tmp_path / "train" / "angry" / "c.jpg", 30, mode="L")
    write_image(tmp_path / "validation" / "surprised" / "d.png", 40)
    (tmp_path / "train" / "angry" / "notes.txt").write_text("not an image")
    assert detect_format(tmp_path) == "folder"
    train = open_dataset(tmp_path, split="train")
    # Folders in name order (upper case first), files sorted within each.
    assert train.targets.tolist() == canon("happy", "anger", "anger")
    assert train.load_image(2).mode == "L" and train.load_image(1).mode == "RGB"
    assert open_dataset(tmp_path, split="val").targets.tolist() == canon("surprise")


def test_dacl_numeric_folders_need_an_order(tmp_path):
    # DACL: train/00..06 = RAF-DB labels minus one: 00 surprise, 03 happy, 06 neutral.
    for folder in ("00", "03", "06"):
        write_image(tmp_path / "train" / folder / "x.png", 1)
    with pytest.raises(DataError, match=r"class folder .*00: label '00' is a number but no "
                                        r"label_order"):
        open_folder(tmp_path, split="train")
    ds = open_folder(tmp_path, split="train", label_order="dacl")
    assert ds.targets.tolist() == canon("surprise", "happy", "neutral")


def test_rafdb_folders_are_one_based_and_lists_of_names_work(tmp_path):
    for folder in ("1", "4", "7"):
        write_image(tmp_path / "test" / folder / "x.png", 1)
    ds = open_folder(tmp_path, split="test", label_order="rafdb_folders")
    assert ds.targets.tolist() == canon("surprise", "happy", "neutral")
    with pytest.raises(DataError, match="label 7 is out of range"):
        open_folder(tmp_path, split="test", label_order="dacl")
    names = ["sad", "happy", "fear", "anger", "neutral", "disgust", "surprise", "contempt"]
    ds = open_folder(tmp_path, split="test", label_order=names)
    assert ds.targets.tolist() == canon("happy", "neutral", "contempt")
    ds = open_folder(tmp_path, split="test", label_order=names, classes=CANONICAL[:7])
    assert ds.targets.tolist() == canon("happy", "neutral") and ds.dropped == {"contempt": 1}


def test_class_root_without_splits_and_bad_folders(tmp_path):
    write_image(tmp_path / "happy" / "a.png", 1)
    write_image(tmp_path / "sad" / "b.png", 1)
    assert open_folder(tmp_path, split="all").targets.tolist() == canon("happy", "sad")
    with pytest.raises(DataError, match="holds class folders directly"):
        open_folder(tmp_path, split="train")
    other = tmp_path / "other"
    write_image(other / "train" / "happy" / "a.png", 1)
    write_image(other / "train" / "smirk" / "b.png", 1)
    with pytest.raises(DataError, match=r"smirk: unknown expression label 'smirk'"):
        open_folder(other)
    assert open_folder(other, strict=False).problems[0].startswith("class folder")
    with pytest.raises(DataError, match="has no 'test' split folder; found train"):
        open_folder(other, split="test")
    (other / "train" / "happy" / "a.png").unlink()
    (other / "train" / "neutral").mkdir()
    with pytest.raises(DataError, match="has no images"):
        open_folder(other, strict=False)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "train" / "happy" / "broken.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    ds = open_folder(tmp_path)
    with pytest.raises(DataError, match=r"cannot read image .*broken.jpg"):
        ds[0]


def write_list_dataset(root: Path) -> None:
    write_image(root / "imgs" / "a b.png", 10)
    write_image(root / "imgs" / "c.png", 20)
    write_image(root / "imgs" / "d.png", 30)
    (root / "train.txt").write_text("# path label\nimgs/a b.png happy\nimgs/c.png Surprise\n\n")
    (root / "val.txt").write_text("imgs/d.png 4\n")  # RAF-DB numbering: 4 = happy


def test_label_list_names_and_numbers(tmp_path):
    write_list_dataset(tmp_path)
    assert detect_format(tmp_path) == "list"
    train = open_dataset(tmp_path, split="train")
    assert train.targets.tolist() == canon("happy", "surprise")
    assert np.asarray(train.load_image(0))[0, 0, 0] == 10
    with pytest.raises(DataError, match=r"val.txt line 1: label '4' is a number"):
        open_dataset(tmp_path, split="val")
    val = open_label_list(tmp_path, split="val", label_order="rafdb")
    assert val.targets.tolist() == canon("happy")
    # The DSAN form: --data_dir D --train_label FILE, list file given directly.
    direct = open_label_list(tmp_path / "train.txt", data_dir=tmp_path)
    assert direct.targets.tolist() == canon("happy", "surprise")


@pytest.mark.parametrize("content, message", [
    ("imgs/c.png\n", r"train.txt line 1: 'imgs/c.png' is not 'relative/path label'"),
    ("imgs/c.png grumpy\n", r"train.txt line 1: unknown expression label 'grumpy'"),
    ("imgs/c.png happy\nimgs/zz.png sad\n", r"train.txt line 2: image .*zz.png does not exist"),
    ("# only a comment\n", r"lists no usable images"),
])
def test_label_list_malformed(tmp_path, content, message):
    write_list_dataset(tmp_path)
    (tmp_path / "train.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        open_label_list(tmp_path)


def test_missing_label_file(tmp_path):
    write_list_dataset(tmp_path)
    with pytest.raises(DataError, match=r"label file nope.txt for split 'val' does not exist"):
        open_label_list(tmp_path, split="val", val_label="nope.txt")


def test_open_dataset_format_errors(tmp_path):
    from ferkit.data import dataset_splits

    with pytest.raises(DataError, match=r"unknown dataset format 'folders'\. Did you mean"):
        open_dataset(tmp_path, format="folders")
    (tmp_path / "readme.md").write_text("nothing here")
    with pytest.raises(DataError, match="cannot tell the dataset format of"):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="dataset path .*nope does not exist"):
        open_dataset(tmp_path / "nope")
    write_image(tmp_path / "d" / "train" / "happy" / "a.png", 1)
    write_image(tmp_path / "d" / "Test" / "sad" / "b.png", 1)
    assert dataset_splits(tmp_path / "d") == ("train", "test")
    with pytest.raises(DataError, match=r"format 'folder' has no option 'order'; did you mean "
                                        r"label_order"):
        open_dataset(tmp_path / "d", order="dacl")
