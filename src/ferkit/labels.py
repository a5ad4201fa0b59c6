"""Canonical expression classes and every dataset's native label order.

ferkit uses one label space everywhere: AffectNet's order

    0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt

A model may use any subset (most 7-class setups drop contempt); its config lists its
classes by name.  Each dataset stores labels in its own order, and the classic bug in
FER code is reading one order as another (ImageFolder sorts class folders alphabetically,
RAF-DB counts from 1, FER2013 starts with angry).  ``NATIVE_ORDERS`` pins every order we
read, and :func:`to_canonical` is the one place where native indices become canonical.

Example:
    >>> from ferkit.labels import to_canonical, CANONICAL
    >>> CANONICAL[to_canonical("fer2013", 0)]
    'anger'
    >>> to_canonical("rafdb", 1)   # RAF-DB's file counts from 1: 1 = surprise
    3
"""

from __future__ import annotations

from collections.abc import Sequence

from ferkit.errors import FerkitError

CANONICAL: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
CANONICAL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CANONICAL)}

#: The 7 basic expressions (canonical order without contempt): the default class set.
SEVEN: tuple[str, ...] = CANONICAL[:7]

# Spellings found in dataset files and folder names, mapped to canonical names.
_ALIASES: dict[str, str] = {
    "neutral": "neutral", "ne": "neutral", "neu": "neutral", "calm": "neutral",
    "happy": "happy", "happiness": "happy", "ha": "happy", "hap": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad", "sa": "sad",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise", "sur": "surprise",
    "fear": "fear", "fearful": "fear", "fe": "fear", "afraid": "fear",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "dis": "disgust",
    "anger": "anger", "angry": "anger", "an": "anger", "ang": "anger",
    "contempt": "contempt", "co": "contempt", "con": "contempt",
}


def canonical_name(name: str) -> str:
    """Map a spelling such as ``"Happiness"`` or ``"angry"`` to its canonical class name."""
    key = name.strip().lower()
    if key not in _ALIASES:
        raise FerkitError(
            f"unknown expression label {name!r}; expected one of {', '.join(CANONICAL)} "
            "(or a common spelling such as 'angry', 'happiness', 'surprised')"
        )
    return _ALIASES[key]


#: Each dataset's native index order, as names.  Index i in the dataset means ORDER[i].
#: ``None`` marks a native class that has no canonical counterpart and is dropped
#: (AffectNet's "none/uncertain/no-face", FER+'s "unknown/not a face").
NATIVE_ORDERS: dict[str, tuple[str | None, ...]] = {
    # Kaggle fer2013.csv / train.csv / icml_face_data.csv column "emotion".
    "fer2013": ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    # fer2013new.csv vote columns, in file order.
    "ferplus": ("neutral", "happy", "surprise", "sad", "anger", "disgust", "fear", "contempt",
                None, None),
    # RAF-DB basic list_patition_label.txt, 1-based in the file (see ``index_base``).
    "rafdb": ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"),
    # AffectNet manual annotations: 0..7 expressions, 8 none, 9 uncertain, 10 no-face.
    "affectnet": ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
                  None, None, None),
    "affectnet7": ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"),
    "affectnet8": ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"),
    # CK+ Emotion_labels: 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy,
    # 6 sadness, 7 surprise.
    "ckplus": ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sad", "surprise"),
    # JAFFE file-name codes in the order the database documents them.
    "jaffe": ("neutral", "happy", "sad", "surprise", "anger", "disgust", "fear"),
    # The Kaggle folder redistribution of FER2013 (ImageFolder sorts alphabetically:
    # angry, disgust, fear, happy, neutral, sad, surprise).
    "fer2013_folders": ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
    # RAF-DB folder redistributions (folders 1..7, same meaning as the list file).
    "rafdb_folders": ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"),
    # DACL's layout train/00..06: RAF-DB labels minus one.
    "dacl": ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"),
}

#: Datasets whose files number classes from 1 rather than 0.
INDEX_BASE: dict[str, int] = {"rafdb": 1, "rafdb_folders": 1}


def native_order(dataset: str) -> tuple[str | None, ...]:
    """The native label order of ``dataset`` (a key of :data:`NATIVE_ORDERS`)."""
    try:
        return NATIVE_ORDERS[dataset]
    except KeyError:
        raise FerkitError(
            f"no label order known for dataset {dataset!r}; "
            f"known: {', '.join(sorted(NATIVE_ORDERS))}"
        ) from None


def to_canonical(dataset: str, native_index: int) -> int | None:
    """Canonical index for ``native_index`` as written in ``dataset``'s files.

    Returns ``None`` for native classes that are not expressions (dropped by adapters).
    """
    order = native_order(dataset)
    position = int(native_index) - INDEX_BASE.get(dataset, 0)
    if not 0 <= position < len(order):
        base = INDEX_BASE.get(dataset, 0)
        raise FerkitError(
            f"label {native_index} is out of range for {dataset} "
            f"(expected {base}..{base + len(order) - 1})"
        )
    name = order[position]
    return None if name is None else CANONICAL_INDEX[name]


def canonical_mapping(dataset: str) -> dict[int, int | None]:
    """The whole native→canonical table for ``dataset``, keyed by the index in its files."""
    base = INDEX_BASE.get(dataset, 0)
    return {base + i: to_canonical(dataset, base + i) for i in range(len(native_order(dataset)))}


def default_label_names(num_classes: int) -> tuple[str, ...]:
    """The class names a model with ``num_classes`` outputs uses unless told otherwise."""
    if num_classes == 7:
        return SEVEN
    if num_classes == 8:
        return CANONICAL
    raise FerkitError(
        f"num_classes={num_classes} has no default class list; pass label_names=[...] "
        "naming each output (canonical names: " + ", ".join(CANONICAL) + ")"
    )


def normalise_label_names(names: Sequence[str]) -> tuple[str, ...]:
    """Canonical spellings for ``names``, rejecting duplicates."""
    result = tuple(canonical_name(n) for n in names)
    if len(set(result)) != len(result):
        raise FerkitError(f"label_names has duplicates after normalisation: {list(result)}")
    return result
