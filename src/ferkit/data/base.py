"""The dataset contract every adapter fulfils.

A :class:`FERDataset` is a list of samples, each an image source plus a **canonical** label
index (:data:`ferkit.labels.CANONICAL`), optionally a soft label (a distribution over the
canonical classes, as FER+ votes give).  Adapters only parse files; images are decoded
lazily in :meth:`FERDataset.load_image`, and the transform (from the model's config and the
recipe) is applied in ``__getitem__``.  Training maps canonical indices to a model's output
indices with :func:`ferkit.labels` names, so a dataset never needs to know the model.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ferkit.errors import DataError
from ferkit.labels import CANONICAL

if TYPE_CHECKING:
    from ferkit.data.folder import LabelResolver


@dataclass(frozen=True)
class DatasetSummary:
    """Counts per class for one split, for ``ferkit data check`` and logs."""

    name: str
    split: str
    total: int
    per_class: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.per_class.items())
        text = f"{self.name} [{self.split}]: {self.total} images ({counts})"
        if self.dropped:
            text += "; dropped: " + ", ".join(f"{k} {v}" for k, v in self.dropped.items())
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "split": self.split, "total": self.total,
                "per_class": dict(self.per_class), "dropped": dict(self.dropped)}


class Problems:
    """Collects malformed entries: raises at the first one (``strict``) or keeps them all.

    Adapters call :meth:`add` for every bad line or file; training opens datasets strictly
    (the first problem is a :class:`~ferkit.errors.DataError`), ``ferkit data check`` opens
    them leniently and lists everything it found.
    """

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        if self.strict:
            raise DataError(message)
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)


class Samples:
    """What an adapter collects entry by entry: image paths, canonical targets, optional face
    boxes, the entries of left-out classes (``dropped``, counted per reason) and ``problems``.

    Each adapter parses its own format; what follows a parsed entry is the same for all:
    :meth:`add` resolves its label (unknown: a problem; a left-out class: counted in
    ``dropped``), :meth:`keep` checks that the image exists (a problem when not) and records
    the sample, and :meth:`dataset` builds the adapter's dataset from what was kept.
    """

    def __init__(self, strict: bool = True) -> None:
        self.problems = Problems(strict)
        self.paths: list[Path] = []
        self.targets: list[int] = []
        self.boxes: list[Sequence[float]] = []
        self.dropped: Counter[str] = Counter()

    def add(self, path: Path, token: str, *, resolver: LabelResolver, where: str,
            box: Sequence[float] | None = None) -> None:
        """Resolve the label ``token`` and :meth:`keep` the sample unless it is left out."""
        index = resolver.resolve_entry(token, where=where, samples=self)
        if index is not None:
            self.keep(path, index, where=where, box=box)

    def keep(self, path: Path, target: int, *, where: str,
             box: Sequence[float] | None = None) -> None:
        """Record one sample, or a problem at ``where`` when its image does not exist."""
        if not path.is_file():
            self.problems.add(f"{where}: image {path} does not exist")
            return
        self.paths.append(path)
        self.targets.append(target)
        if box is not None:
            self.boxes.append(box)

    def __len__(self) -> int:
        return len(self.paths)

    def dataset(self, cls: type[ImageFileDataset], *, split: str, transform: Any = None,
                **extra: Any) -> Any:
        """``cls`` (an :class:`ImageFileDataset`) over the kept samples, with what was
        dropped and the problems met."""
        return cls(self.paths, self.targets, split=split, transform=transform,
                   dropped=dict(self.dropped), problems=self.problems.messages, **extra)


class FERDataset(Dataset):
    """Base class: subclasses fill ``targets`` and implement :meth:`load_image`.

    Attributes:
        name: human-readable dataset name (``"FER2013"``).
        split: split name (``"train"``, ``"val"``, ``"test"``; adapters document theirs).
        targets: ``(N,)`` int64 canonical class index per sample.
        soft_targets: optional ``(N, 8)`` float32 distributions over canonical classes.
        transform: callable applied to the PIL image in ``__getitem__``.
    """

    name: str = "dataset"

    def __init__(
        self,
        *,
        split: str,
        targets: Sequence[int] | np.ndarray,
        soft_targets: np.ndarray | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        dropped: dict[str, int] | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        self.split = split
        #: Samples an adapter left out on purpose, by reason (e.g. ``{"contempt": 12}``).
        self.dropped: dict[str, int] = {k: v for k, v in (dropped or {}).items() if v}
        #: Malformed entries skipped when the dataset was opened with ``strict=False``.
        self.problems: list[str] = list(problems)
        self.targets = np.asarray(targets, dtype=np.int64)
        if soft_targets is not None and soft_targets.shape != (len(self.targets), len(CANONICAL)):
            raise ValueError(
                f"soft_targets must be (N, {len(CANONICAL)}), got {soft_targets.shape}"
            )
        self.soft_targets = soft_targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def load_image(self, index: int) -> Image.Image:
        """The decoded image of sample ``index`` (mode ``"L"`` or ``"RGB"``)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image = self.load_image(index)
        x = self.transform(image) if self.transform is not None else image
        if self.soft_targets is not None:
            return x, torch.from_numpy(self.soft_targets[index])
        return x, int(self.targets[index])

    @property
    def classes_present(self) -> tuple[str, ...]:
        """Canonical names of the classes that occur, in canonical order."""
        return tuple(CANONICAL[i] for i in sorted(set(self.targets.tolist())))

    def summary(self) -> DatasetSummary:
        counts = Counter(self.targets.tolist())
        per_class = {CANONICAL[i]: counts[i] for i in sorted(counts)}
        return DatasetSummary(self.name, self.split, len(self), per_class, dict(self.dropped))

    def describe(self, index: int) -> str:
        """Where sample ``index`` comes from (a file path, ``"file.csv line 12"``), for messages."""
        return f"{self.name} {self.split} sample {index}"

    def fingerprint(self, index: int) -> bytes:
        """A digest of sample ``index``'s content, to find the same image in two splits.

        File-based datasets hash the file's bytes (exact copies); array datasets hash pixels.
        """
        return hashlib.blake2b(self.load_image(index).tobytes(), digest_size=16).digest()


class ArrayFERDataset(FERDataset):
    """Images held in memory as one ``(N, H, W)`` or ``(N, H, W, 3)`` uint8 array (FER2013).

    Example:
        >>> import numpy as np
        >>> ds = ArrayFERDataset(np.zeros((2, 48, 48), np.uint8), [0, 1], split="train")
        >>> ds.load_image(1).size, ds[1][1]
        ((48, 48), 1)
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: Sequence[int] | np.ndarray,
        *,
        split: str,
        sources: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(split=split, targets=targets, **kwargs)
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(self):
            raise ValueError(
                f"images must be (N, H, W[, 3]) uint8 with N={len(self)}, "
                f"got {images.shape} {images.dtype}"
            )
        self.images = images
        self._sources = sources

    def load_image(self, index: int) -> Image.Image:
        pixels = self.images[index]
        return Image.fromarray(pixels)  # (H, W) uint8 → "L", (H, W, 3) → "RGB"

    def describe(self, index: int) -> str:
        if self._sources is not None:
            return self._sources[index]
        return super().describe(index)

    def fingerprint(self, index: int) -> bytes:
        return hashlib.blake2b(self.images[index].tobytes(), digest_size=16).digest()


class ImageFileDataset(FERDataset):
    """Images stored as files (JPEG/PNG/...), decoded lazily; optionally cropped to a box.

    ``boxes`` (``(N, 4)`` as ``x, y, width, height`` in pixels, e.g. AffectNet's face boxes)
    crops each image after decoding.  Images are returned as ``"L"`` when stored grayscale
    and as ``"RGB"`` otherwise.
    """

    def __init__(
        self,
        paths: Sequence[Path | str],
        targets: Sequence[int] | np.ndarray,
        *,
        split: str,
        boxes: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(split=split, targets=targets, **kwargs)
        self.paths = [Path(p) for p in paths]
        if len(self.paths) != len(self):
            raise ValueError(f"{len(self.paths)} paths for {len(self)} targets")
        self.boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64)

    def load_image(self, index: int) -> Image.Image:
        path = self.paths[index]
        try:
            with Image.open(path) as opened:
                image = opened.convert("L") if opened.mode in ("L", "1", "I;16", "I") \
                    else opened.convert("RGB")
        except FileNotFoundError:
            raise DataError(f"{self.name} {self.split}: image {path} does not exist") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(
                f"{self.name} {self.split}: cannot read image {path} ({exc}); "
                "expected a readable JPEG/PNG/BMP file"
            ) from None
        if self.boxes is not None:
            x, y, w, h = self.boxes[index]
            image = image.crop((round(x), round(y), round(x + w), round(y + h)))
        return image

    def describe(self, index: int) -> str:
        return str(self.paths[index])

    def fingerprint(self, index: int) -> bytes:
        try:
            return hashlib.blake2b(self.paths[index].read_bytes(), digest_size=16).digest()
        except OSError as exc:
            raise DataError(f"{self.name} {self.split}: cannot read {self.paths[index]} "
                            f"({exc})") from None
