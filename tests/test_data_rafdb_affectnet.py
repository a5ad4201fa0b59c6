"""RAF-DB basic and AffectNet (CSV with face boxes, *_exp.npy, class folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.data import dataset_splits, detect_format, open_dataset
from ferkit.data.affectnet import open_affectnet
from ferkit.data.rafdb import open_rafdb
from ferkit.errors import DataError
from ferkit.labels import CANONICAL_INDEX


def c(*names: str) -> list[int]:
    return [CANONICAL_INDEX[n] for n in names]


def image(path: Path, value: int = 100, size: tuple[int, int] = (10, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def make_rafdb(root: Path) -> Path:
    lines = ["train_00001.jpg 5", "train_00002.jpg 1", "test_0001.jpg 7", "test_0002.jpg 4"]
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        stem = line.split(".")[0]
        image(root / "Image" / "aligned" / f"{stem}_aligned.jpg")
        image(root / "Image" / "original" / f"{stem}.jpg", size=(30, 20))
    return root


def test_rafdb_labels_splits_and_original_images(tmp_path):
    root = make_rafdb(tmp_path / "basic")
    assert detect_format(root) == "rafdb" and dataset_splits(root) == ("train", "test")
    train = open_dataset(root, split="train")
    assert train.targets.tolist() == c("sad", "surprise")  # 5 sadness, 1 surprise (1-based)
    assert train.paths[0].name == "train_00001_aligned.jpg"
    test = open_rafdb(root / "EmoLabel" / "list_patition_label.txt", split="test",
                      images="original")
    assert test.targets.tolist() == c("neutral", "happy")
    assert test.load_image(0).size == (30, 20)
    (root / "Image" / "aligned" / "test_0001_aligned.jpg").unlink()
    mixed = open_rafdb(root, split="test", images="auto")
    assert [p.parent.name for p in mixed.paths] == ["original", "aligned"]
    with pytest.raises(DataError, match=r"line 3: image .*test_0001_aligned.jpg does not exist"):
        open_rafdb(root, split="test")
    with pytest.raises(DataError, match="RAF-DB has splits train and test, not 'val'"):
        open_rafdb(root, split="val")


@pytest.mark.parametrize("line, message", [
    ("train_00003.jpg 8", r"line 5: label 8 is out of range for rafdb \(expected 1..7\)"),
    ("train_00003.jpg", r"line 5: 'train_00003.jpg' is not 'train_00001.jpg 5'"),
    ("train_00009.jpg 2", r"line 5: image .*train_00009_aligned.jpg does not exist"),
])
def test_rafdb_malformed(tmp_path, line, message):
    root = make_rafdb(tmp_path / "basic")
    list_file = root / "EmoLabel" / "list_patition_label.txt"
    list_file.write_text(list_file.read_text() + line + "\n")
    with pytest.raises(DataError, match=message):
        open_rafdb(root)
    assert len(open_rafdb(root, strict=False)) == 2


def make_affectnet_csv(root: Path) -> Path:
    header = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
              "expression,valence,arousal")
    rows = {
        "training.csv": ['689/a.jpg,2,4,10,12,"1.0;2.0;3.0",1,0.5,0.1',
                         '689/b.jpg,0,0,20,20,"",7,0.1,0.1',     # contempt
                         '689/c.jpg,0,0,20,20,"",9,-2,-2'],      # uncertain
        "validation.csv": ['7/d.jpg,1,1,5,5,"",6,0,0'],
    }
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    for name, lines in rows.items():
        (lists / name).write_text(header + "\n" + "\n".join(lines) + "\n")
        for line in lines:
            image(root / "Manually_Annotated_Images" / line.split(",")[0], size=(30, 30))
    return root


def test_affectnet_csv_crops_face_boxes_and_class_setups(tmp_path):
    root = make_affectnet_csv(tmp_path / "AffectNet")
    assert detect_format(root) == "affectnet"
    seven = open_dataset(root, split="train")
    assert seven.targets.tolist() == c("happy")
    assert seven.load_image(0).size == (10, 12)  # cropped to face_width x face_height
    assert seven.dropped == {"contempt": 1, "affectnet label 9 (not an expression)": 1}
    eight = open_affectnet(root, split="train", classes=8, crop=False)
    assert eight.targets.tolist() == c("happy", "contempt")
    assert eight.load_image(0).size == (30, 30)
    assert open_affectnet(root, split="val").targets.tolist() == c("anger")
    with pytest.raises(DataError, match="splits train and val, not 'test'"):
        open_affectnet(root, split="test")


def test_affectnet_csv_malformed(tmp_path):
    root = make_affectnet_csv(tmp_path / "AffectNet")
    csv_file = root / "Manually_Annotated_file_lists" / "validation.csv"
    csv_file.write_text(csv_file.read_text() + '7/e.jpg,1,1,5,5,"",12,0,0\n')
    with pytest.raises(DataError, match=r"validation.csv line 3: label 12 is out of range"):
        open_affectnet(root, split="val")
    csv_file.write_text("path,expression\nx.jpg,1\n")
    with pytest.raises(DataError, match=r"validation.csv line 1: missing column\(s\) "
                                        r"subdirectory_filepath, face_x"):
        open_affectnet(root, split="val")


def test_affectnet_npy_release_and_folders(tmp_path):
    root = tmp_path / "affectnet_npy"
    for split_dir, sample, label in [("train_set", "0", "3"), ("train_set", "1", "10"),
                                     ("val_set", "5", "7")]:
        image(root / split_dir / "images" / f"{sample}.jpg")
        (root / split_dir / "annotations").mkdir(parents=True, exist_ok=True)
        np.save(root / split_dir / "annotations" / f"{sample}_exp.npy", np.array(label))
    assert detect_format(root) == "affectnet"
    assert open_dataset(root, split="train").targets.tolist() == c("surprise")
    assert open_affectnet(root, split="val", classes=8).targets.tolist() == c("contempt")
    with pytest.raises(DataError, match="val at .* has no usable images"):
        open_affectnet(root, split="val", classes=7)

    folders = tmp_path / "affectnet_folders"
    for cls in ("0", "7", "8"):
        image(folders / "train" / cls / "x.jpg")
    ds = open_affectnet(folders, split="train", classes=7)
    assert ds.targets.tolist() == c("neutral") and ds.name == "AffectNet"
    assert ds.dropped == {"contempt": 1, "affectnet label 8 (not an expression)": 1}
