"""FER+ vote labels: majority and soft modes, the drop rules, alignment checks."""

from __future__ import annotations

import numpy as np
import pytest

from ferkit.data import detect_format, open_dataset
from ferkit.data.ferplus import open_ferplus
from ferkit.errors import DataError
from ferkit.labels import CANONICAL_INDEX

HEADER = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
          "unknown,NF")
# votes: neutral happiness surprise sadness anger disgust fear contempt unknown NF
VOTES = [
    ("Training", "a.png", "0,8,1,0,0,0,0,0,1,0"),   # happy 8 of 8 after single votes drop
    ("Training", "b.png", "4,0,0,0,3,2,0,0,1,0"),   # neutral 4 of 9: no clear majority
    ("Training", "", "0,0,0,0,0,0,0,0,0,10"),       # no image
    ("Training", "d.png", "2,0,0,0,0,0,0,0,0,8"),   # not a face
    ("PublicTest", "e.png", "0,0,0,0,0,0,0,3,7,0"),  # unknown
    ("PublicTest", "f.png", "0,0,0,0,0,0,0,6,2,2"),  # contempt 6 of 10
    ("PrivateTest", "g.png", "1,1,1,1,1,1,1,1,1,1"),  # all single votes: no votes left
    ("PrivateTest", "h.png", "0,0,5,0,0,0,5,0,0,0"),  # surprise/fear tie: no majority
]


def write_ferplus(tmp_path, votes=VOTES):
    labels = tmp_path / "ferplus" / "fer2013new.csv"
    labels.parent.mkdir()
    labels.write_text(HEADER + "\n" + "\n".join(f"{u},{n},{v}" for u, n, v in votes) + "\n")
    pixels = tmp_path / "fer2013" / "fer2013.csv"
    pixels.parent.mkdir()
    rows = [f"0,{' '.join([str(10 * i)] * 2304)},{u}" for i, (u, _, _) in enumerate(votes)]
    pixels.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return labels


def c(name: str) -> int:
    return CANONICAL_INDEX[name]


def test_majority_mode_and_drop_rules(tmp_path):
    labels = write_ferplus(tmp_path)
    assert detect_format(labels) == "ferplus"
    train = open_dataset(labels, split="train")  # pixels found in ../fer2013/
    assert train.targets.tolist() == [c("happy")]
    assert np.asarray(train.load_image(0)).max() == 0  # row 0's pixels
    assert train.dropped == {"no clear majority": 1, "no image": 1, "not a face": 1}
    val = open_ferplus(labels, split="val")
    assert val.targets.tolist() == [c("contempt")] and val.dropped == {"unknown": 1}
    assert np.asarray(val.load_image(0)).max() == 50
    with pytest.raises(DataError, match="split 'test' has no usable rows"):
        open_ferplus(labels, split="test")


def test_soft_mode(tmp_path):
    labels = write_ferplus(tmp_path)
    train = open_ferplus(labels, split="train", label_mode="soft")
    assert train.targets.tolist() == [c("happy"), c("neutral")]
    expected = np.zeros(8, np.float32)
    expected[[c("neutral"), c("anger"), c("disgust")]] = [4 / 9, 3 / 9, 2 / 9]
    np.testing.assert_allclose(train.soft_targets[1], expected, rtol=1e-6)
    _, target = train[1]
    np.testing.assert_allclose(target.numpy(), expected, rtol=1e-6)
    test = open_ferplus(labels, split="test", label_mode="soft")
    assert test.targets.tolist() == [c("surprise")]  # tie: first in FER+ column order
    assert test.dropped == {"no votes": 1}
    dedup = open_ferplus(labels, split="val", drop_train_duplicates=True)
    assert len(dedup) == 1  # row f's pixels (grey 50) are not in Training
    kept_singles = open_ferplus(labels, split="test", label_mode="soft", drop_single_votes=False)
    assert len(kept_singles) == 2


def test_soft_targets_mixed_with_fer2013_labels(tmp_path):
    labels = write_ferplus(tmp_path)  # every FER2013 row is labelled 0 = anger
    mixed = open_ferplus(labels, split="train", label_mode="soft", fer2013_weight=0.25)
    votes = np.zeros(8, np.float32)
    votes[[c("neutral"), c("anger"), c("disgust")]] = [4 / 9, 3 / 9, 2 / 9]
    expected = 0.75 * votes
    expected[c("anger")] += 0.25
    np.testing.assert_allclose(mixed.soft_targets[1], expected, rtol=1e-6)
    assert mixed.targets.tolist() == [c("happy"), c("neutral")]  # FER+'s top vote still
    assert np.allclose(mixed.soft_targets.sum(axis=1), 1.0)
    for bad in ({"fer2013_weight": 1.5, "label_mode": "soft"},
                {"fer2013_weight": 0.5, "label_mode": "majority"}):
        with pytest.raises(DataError, match="fer2013_weight must be in"):
            open_ferplus(labels, split="train", **bad)


def test_malformed_ferplus(tmp_path):
    labels = write_ferplus(tmp_path)
    text = labels.read_text().splitlines()
    labels.write_text("\n".join([*text[:3], "Training,x.png,1,2,three,0,0,0,0,0,0,0",
                                 *text[4:]]) + "\n")
    with pytest.raises(DataError, match=r"fer2013new.csv line 4: invalid literal"):
        open_ferplus(labels)
    labels.write_text("\n".join(text[:-1]) + "\n")  # one row short of the pixel file
    with pytest.raises(DataError, match="has 7 rows but the FER2013 pixels"):
        open_ferplus(labels)
    labels.write_text("Usage,Image name,neutral\n")
    with pytest.raises(DataError, match="line 1: header .* is not FER\\+'s"):
        open_ferplus(labels)
    with pytest.raises(DataError, match="label_mode must be"):
        open_ferplus(labels, label_mode="vote")


def test_real_ferplus_counts(shared_data):
    labels = shared_data / "ferplus" / "fer2013new.csv"
    pixels = shared_data / "fer2013" / "fer2013.csv.gz"
    totals = {}
    for mode in ("majority", "soft"):
        for split in ("train", "val", "test"):
            totals[mode, split] = len(open_ferplus(labels, split=split, pixels=pixels,
                                                   label_mode=mode))
    assert totals == {("majority", "train"): 25060, ("majority", "val"): 3199,
                      ("majority", "test"): 3153, ("soft", "train"): 28389,
                      ("soft", "val"): 3553, ("soft", "test"): 3546}
    test = open_ferplus(labels, split="test", pixels=pixels)
    assert test.summary().per_class == {"neutral": 1090, "happy": 893, "sad": 384,
                                        "surprise": 396, "fear": 83, "disgust": 18,
                                        "anger": 273, "contempt": 16}
    assert test.dropped == {"no image": 15, "no clear majority": 393, "unknown": 27,
                            "not a face": 1}
    dedup = open_ferplus(labels, split="test", pixels=pixels, drop_train_duplicates=True)
    assert dedup.dropped["same pixels in Training"] == 288 and len(dedup) == 2894
