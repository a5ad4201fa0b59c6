"""``ferkit data check``: counts, duplicates and problems, human and JSON output."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ferkit.cli import main
from ferkit.errors import FerkitError


def write_csv(path):
    """A tiny fer2013.csv: grey 20 (val) and grey 30 (test) repeat Training images."""
    rows = [(0, "Training", 10), (3, "Training", 20), (6, "Training", 30), (5, "Training", 40),
            (4, "PublicTest", 50), (1, "PublicTest", 20),
            (2, "PrivateTest", 70), (3, "PrivateTest", 80), (6, "PrivateTest", 30)]
    lines = ["emotion,pixels,Usage"] + [f"{e},{' '.join([str(v)] * 2304)},{u}"
                                        for e, u, v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_fer2013_json(tmp_path, capsys):
    path = write_csv(tmp_path / "fer2013.csv")
    assert main(["data", "check", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "fer2013" and report["ok"] is True
    assert [(s["split"], s["native_name"], s["total"]) for s in report["splits"]] == [
        ("train", "Training", 4), ("val", "PublicTest", 2), ("test", "PrivateTest", 3)]
    assert report["splits"][2]["per_class"] == {"neutral": 1, "happy": 1, "fear": 1}
    # grey 20 (val) and grey 30 (test) also occur in Training.
    assert report["duplicates_across"] == {"val/train": 1, "test/train": 1}


def test_check_folder_lists_problems(tmp_path, capsys):
    for split, cls, name in [("train", "happy", "a.png"), ("train", "sad", "b.png"),
                             ("test", "happy", "c.png")]:
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (len(name) * 9,) * 3).save(tmp_path / split / cls / name)
    (tmp_path / "train" / "sad" / "bad.png").write_bytes(b"garbage")
    (tmp_path / "test" / "7").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "test" / "7" / "d.png")
    assert main(["data", "check", str(tmp_path), "--data-format", "folder"]) == 1
    out = capsys.readouterr().out
    assert "train" in out and "Problems: 2" in out
    assert "cannot read image" in out and "bad.png" in out
    assert "label '7' is a number but no label_order" in out
    assert "test also in train: 1" in out  # c.png has the same bytes as a.png


def test_check_label_list_dsan_form(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    Image.new("L", (4, 4), 3).save(tmp_path / "img" / "x.png")
    Image.new("L", (4, 4), 9).save(tmp_path / "img" / "y.png")
    (tmp_path / "tr.txt").write_text("img/x.png 1\n")
    (tmp_path / "va.txt").write_text("img/y.png 7\n")
    assert main(["data", "check", str(tmp_path), "--train-label", "tr.txt", "--val-label",
                 "va.txt", "--label-order", "rafdb", "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(s["split"], s["per_class"]) for s in report["splits"]] == [
        ("train", {"surprise": 1}), ("val", {"neutral": 1})]


def test_check_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    path = write_csv(tmp_path / "fer2013.csv")
    assert main(["data", "check", str(path), "-O", "drop_train_dupes=true"]) == 2
    err = capsys.readouterr().err
    assert "has no option 'drop_train_dupes'; did you mean drop_train_duplicates?" in err


def test_check_real_fer2013(shared_data, capsys):
    path = shared_data / "fer2013" / "fer2013.csv.gz"
    assert main(["data", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[1]: line.split()[2:] for line in lines if "Test)" in line
            or "(Training)" in line}
    assert rows["(Training)"] == ["28,709", "4,965", "7,215", "4,830", "3,171", "4,097", "436",
                                  "3,995"]
    assert rows["(PublicTest)"] == ["3,589", "607", "895", "653", "415", "496", "56", "467"]
    assert rows["(PrivateTest)"] == ["3,589", "626", "879", "594", "416", "528", "55", "491"]
    assert "  val also in train: 280" in lines and "  test also in train: 288" in lines


def test_cache_command_writes_npz(tmp_path, capsys):
    path = write_csv(tmp_path / "fer2013.csv")
    assert main(["data", "cache", str(path), str(tmp_path / "fer.npz")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "fer.npz"), "-f", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["total"] for s in report["splits"]] == [4, 2, 3]


def test_format_is_the_output_format_as_in_every_command(tmp_path, capsys):
    path = write_csv(tmp_path / "fer2013.csv")
    assert main(["data", "check", str(path), "-f", "json", "--data-format", "fer2013"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "fer2013"
    # the old spellings: a dataset format given to -f points to --data-format ...
    assert main(["data", "check", str(path), "-f", "fer2013"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --format is the output format (human or json); give the dataset "
                   "format with --data-format fer2013\n")
    # ... and --output still works, with a note
    assert main(["data", "check", str(path), "--output", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["format"] == "fer2013"
    assert "now --format" in captured.err
    assert main(["data", "check", str(path), "-f", "xml"]) == 2
    assert "--format must be human or json, not 'xml'" in capsys.readouterr().err


def test_open_split_lives_in_data_and_the_old_training_name_warns(tmp_path):
    from ferkit.data.spec import open_split

    val = open_split({"format": "fake", "options": {"size": 12, "seed": 5}}, "val")
    test = open_split({"format": "fake", "options": {"size": 12, "seed": 5}}, "test")
    assert len(val) == len(test) == 12
    assert val.split == "val" and test.split == "test"
    assert val.targets.tolist() != test.targets.tolist()  # each split its own seed
    with pytest.raises(FerkitError, match="names no dataset"):
        open_split({"format": None, "source": None}, "test")
    with pytest.warns(DeprecationWarning, match="ferkit.data.spec.open_split"):
        from ferkit.training.dataspec import open_split as old
    assert old is open_split
