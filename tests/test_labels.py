"""Every dataset's native label order, pinned against the canonical classes."""

import pytest

from ferkit.errors import FerkitError
from ferkit.labels import (
    CANONICAL,
    canonical_mapping,
    canonical_name,
    default_label_names,
    to_canonical,
)


def names(dataset):
    return {k: (None if v is None else CANONICAL[v]) for k, v in canonical_mapping(dataset).items()}


def test_canonical_order_is_affectnet():
    assert CANONICAL == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger",
                         "contempt")


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("fer2013", {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise",
                     6: "neutral"}),
        ("ferplus", {0: "neutral", 1: "happy", 2: "surprise", 3: "sad", 4: "anger", 5: "disgust",
                     6: "fear", 7: "contempt", 8: None, 9: None}),
        ("rafdb", {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "anger",
                   7: "neutral"}),
        ("affectnet", {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear",
                       5: "disgust", 6: "anger", 7: "contempt", 8: None, 9: None, 10: None}),
        ("affectnet7", {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear",
                        5: "disgust", 6: "anger"}),
        ("ckplus", {0: "neutral", 1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy",
                    6: "sad", 7: "surprise"}),
        ("jaffe", {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "anger", 5: "disgust",
                   6: "fear"}),
        ("fer2013_folders", {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "neutral",
                             5: "sad", 6: "surprise"}),
        ("dacl", {0: "surprise", 1: "fear", 2: "disgust", 3: "happy", 4: "sad", 5: "anger",
                  6: "neutral"}),
    ],
)
def test_native_orders(dataset, expected):
    assert names(dataset) == expected


def test_rafdb_counts_from_one():
    with pytest.raises(FerkitError, match="expected 1..7"):
        to_canonical("rafdb", 0)
    assert CANONICAL[to_canonical("rafdb", 7)] == "neutral"


def test_aliases_and_unknown():
    assert canonical_name(" Happiness ") == "happy"
    assert canonical_name("ANGRY") == "anger"
    with pytest.raises(FerkitError, match="unknown expression label 'smug'"):
        canonical_name("smug")


def test_default_label_names():
    assert default_label_names(7) == CANONICAL[:7]
    assert default_label_names(8) == CANONICAL
    with pytest.raises(FerkitError, match="label_names"):
        default_label_names(5)
