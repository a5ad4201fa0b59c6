"""The Recognizer: images in, faces with expression probabilities out.

Three stages, as in Hugging Face pipelines:

1. **preprocess**: read the image (:func:`~ferkit.inference.io.load_image`), find every face
   (:mod:`ferkit.faces`), align each to the crop the model's config asks for, and turn the
   crops into a normalised batch with :func:`ferkit.data.transforms.eval_transform`;
2. **_forward**: only the model call, through a classifier backend
   (:func:`ferkit.inference.backends.create_backend`: PyTorch eager or ONNX Runtime);
3. **postprocess**: softmax, ``top_k``, typed :class:`~ferkit.inference.results.FaceResult`.

Faces from many images are classified together in batches of ``batch_size``.

Example:
    >>> import ferkit
    >>> rec = ferkit.Recognizer.from_pretrained("path/to/checkpoint")   # doctest: +SKIP
    >>> result = rec("group.jpg")                                        # doctest: +SKIP
    >>> [(f.label, round(f.score, 2)) for f in result.faces]             # doctest: +SKIP
    [('happy', 0.93), ('neutral', 0.71)]
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ferkit.boxes import Box
from ferkit.config import DataConfig, ModelConfig, config_of
from ferkit.errors import CheckpointError, FerkitError, InputError
from ferkit.faces.align import AlignedFace, align_face, whole_image_face
from ferkit.faces.base import Detection, FaceDetector, create_detector
from ferkit.inference.backends import ClassifierBackend
from ferkit.inference.io import ImageSource, describe_source, load_image
from ferkit.inference.results import FaceResult, ImageResult, ranked

BoxLike = Sequence[float]


class Recognizer:
    """Detect faces and recognise their expressions with a ferkit model.

    Args:
        model: a model built by :func:`ferkit.create_model` / :func:`ferkit.load_checkpoint`
            (it carries ``ferkit_config``: classes, input size, normalisation, alignment),
            or a ready classifier backend such as
            ``OnnxBackend("model.onnx")`` (:mod:`ferkit.inference.backends`), which brings
            its own config; such a Recognizer has no PyTorch model (``model`` is ``None``),
            so it predicts but cannot explain.
        detector: a detector name (``"retinaface"``, ``"haar"``) or object with
            ``detect(image) -> list[Detection]``; built on first use.
        device: where the PyTorch backend runs: ``"auto"`` (a CUDA GPU when there is one,
            else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` … (see
            :func:`ferkit.devices.resolve_device`).
        backend: ``"torch"`` (default: PyTorch, nothing written anywhere), ``"onnx"`` or
            ``"auto"``.  ``"onnx"`` and ``"auto"`` export the model to ONNX once and cache it
            in ``~/.cache/ferkit``; ``"auto"`` also times both backends once and keeps the
            faster (see :func:`ferkit.inference.backends.create_backend`).
        batch_size: how many face crops go through the model at once.
        detector_options: passed to :func:`ferkit.faces.create_detector` with a name.

    Example:
        >>> import ferkit, numpy as np
        >>> rec = ferkit.Recognizer(ferkit.create_model("baseline", backbone="resnet10t",
        ...                                             input_size=(3, 64, 64)))
        >>> res = rec(np.zeros((64, 64, 3), np.uint8), color="rgb", detect=False)
        >>> len(res.faces), round(sum(res.faces[0].probs.values()), 4)
        (1, 1.0)
    """

    def __init__(self, model: nn.Module | ClassifierBackend, *,
                 detector: str | FaceDetector = "retinaface",
                 device: str | torch.device = "auto", backend: str = "torch",
                 batch_size: int = 32, detector_options: dict[str, Any] | None = None) -> None:
        from ferkit.data.transforms import eval_transform
        from ferkit.devices import resolve_device
        from ferkit.inference.backends import create_backend

        if batch_size < 1:
            raise FerkitError(f"batch_size must be at least 1, got {batch_size}")
        self.model: nn.Module | None
        if isinstance(model, nn.Module):
            self.config: ModelConfig = config_of(model, "Recognizer")
            self.model = model.eval()
            self.backend = create_backend(model, kind=backend, device=resolve_device(device))
        elif isinstance(getattr(model, "config", None), ModelConfig) and callable(model):
            self.config, self.model, self.backend = model.config, None, model
        else:
            raise FerkitError(
                f"Recognizer needs a ferkit model or a classifier backend, got "
                f"{type(model).__name__}; load one with ferkit.load_checkpoint(...) or "
                "Recognizer.from_pretrained(...)")
        self.batch_size = batch_size
        self.transform = eval_transform(self.config.data)
        self._detector_spec = detector
        self._detector_options = dict(detector_options or {})
        self._detector: FaceDetector | None = None if isinstance(detector, str) else detector

    @classmethod
    def from_pretrained(cls, name_or_path: str = "default", *,
                        device: str | torch.device = "auto",
                        detector: str | FaceDetector = "retinaface", backend: str = "torch",
                        batch_size: int = 32, **detector_options: Any) -> Recognizer:
        """A Recognizer for a checkpoint directory or a shipped model name.

        Args:
            name_or_path: ``"default"`` (the model shipped with ferkit), another shipped
                name (``ferkit models list``), a checkpoint directory / file, or an
                ``.onnx`` file written by ``ferkit export`` (fp32 or ``--int8``), which runs
                on ONNX Runtime whatever ``backend`` says and cannot be explained.
            device, detector, backend, batch_size: as for :class:`Recognizer`.
            **detector_options: e.g. ``score_threshold=0.8`` for the detector.

        Raises:
            CheckpointError: the checkpoint is missing or unreadable, or no default model
                ships with this install.
        """
        from ferkit.devices import resolve_device
        from ferkit.weights import load_checkpoint, shipped_weights_dir

        requested = device
        device = resolve_device(device)  # a missing GPU fails before the weights are read
        if name_or_path == "default" and shipped_weights_dir("default") is None:
            raise CheckpointError(
                "no default model ships with this ferkit install (its weights are missing from "
                "ferkit/weights/: reinstall ferkit), or pass a checkpoint "
                "directory (one written by ferkit.save_checkpoint or `ferkit train`), e.g. "
                "Recognizer.from_pretrained('runs/dan/best') or `ferkit predict --model DIR`"
            )
        if str(name_or_path).lower().endswith(".onnx"):
            from ferkit.inference.backends import OnnxBackend, onnx_cuda_available

            if requested == "auto" and not onnx_cuda_available():
                device = torch.device("cpu")  # "auto" never asks for onnxruntime-gpu
            return cls(OnnxBackend(name_or_path, device=device), detector=detector,
                       batch_size=batch_size, detector_options=detector_options)
        model = load_checkpoint(name_or_path, map_location="cpu")
        return cls(model, detector=detector, device=device, backend=backend,
                   batch_size=batch_size, detector_options=detector_options)

    # -- public API -------------------------------------------------------------------

    @property
    def detector(self) -> FaceDetector:
        """The face detector (built on first use, so ``detect=False`` never needs one)."""
        if self._detector is None:
            self._detector = create_detector(self._detector_spec, **self._detector_options)
        return self._detector

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.config.label_names

    def __call__(self, images: ImageSource | Sequence[ImageSource], *, color: str | None = None,
                 boxes: Sequence[BoxLike] | Sequence[Sequence[BoxLike] | None] | None = None,
                 detect: bool = True, top_k: int | None = None,
                 batch_size: int | None = None) -> ImageResult | list[ImageResult]:
        """Recognise the expressions of every face in one image or a list of images.

        Args:
            images: a path, bytes, PIL image or numpy array, or a list (tuple, generator)
                of them.
            color: channel order of numpy inputs: ``"rgb"``, or ``"bgr"`` for OpenCV
                arrays (``cv2.imread``, ``VideoCapture``).  Left out, a colour array is
                read as RGB with a :class:`~ferkit.errors.ColorOrderWarning`.
            boxes: known faces instead of running the detector: for one image a list of
                ``(x1, y1, x2, y2)``; for a list of images, one such list (or ``None`` to
                detect) per image.
            detect: ``False`` treats each whole image as one already-cropped face.
            top_k: keep only the ``k`` most probable classes in ``FaceResult.probs``.
            batch_size: faces per model call (default: the Recognizer's).

        Returns:
            One :class:`ImageResult` for one image; a list for a list.  In a list, an image
            that cannot be read gets ``error`` set and the others go on; a single unreadable
            image raises :class:`~ferkit.errors.InputError`.
        """
        if isinstance(images, (list, tuple, types.GeneratorType)):
            return list(self.iter_results(images, color=color, boxes=boxes, detect=detect,
                                          top_k=top_k, batch_size=batch_size))
        if boxes is not None:
            boxes = [boxes]
        result = next(self.iter_results([images], color=color, boxes=boxes, detect=detect,
                                        top_k=top_k, batch_size=batch_size, raise_errors=True))
        return result

    def iter_results(self, images: Iterable[ImageSource], *, color: str | None = None,
                     boxes: Sequence[Sequence[BoxLike] | None] | None = None,
                     detect: bool = True, top_k: int | None = None,
                     batch_size: int | None = None, raise_errors: bool = False,
                     sources: Sequence[str] | None = None) -> Iterator[ImageResult]:
        """Like :meth:`__call__` on a list, yielding results in input order as they are ready.

        ``images`` may be any iterable (a generator of video frames, a long list of paths):
        it is consumed ``batch_size`` images at a time, so memory stays bounded.
        ``boxes`` and ``sources`` (names used in results; default: path or type description),
        when given, are indexed by position in ``images``.
        """
        batch_size = batch_size or self.batch_size
        if batch_size < 1:
            raise FerkitError(f"batch_size must be at least 1, got {batch_size}")
        if top_k is not None and top_k < 1:
            raise FerkitError(f"top_k must be at least 1, got {top_k}")
        if boxes is not None and hasattr(images, "__len__") and len(boxes) != len(images):
            raise FerkitError(f"boxes has {len(boxes)} entries for {len(images)} images; give "
                              "one list of boxes (or None) per image")
        iterator = iter(images)
        start = 0
        while chunk := list(itertools.islice(iterator, batch_size)):
            prepared: list[tuple[str, int, int, list[AlignedFace]] | ImageResult] = []
            for i, source in enumerate(chunk, start=start):
                name = sources[i] if sources is not None else describe_source(source)
                try:
                    if boxes is not None and i >= len(boxes):
                        raise FerkitError(f"boxes has {len(boxes)} entries but there are more "
                                          "images; give one list of boxes (or None) per image")
                    image = load_image(source, color=color, name=name)
                    faces = self.detect_and_align(
                        image, boxes=None if boxes is None else boxes[i], detect=detect,
                        color="rgb")
                except InputError as exc:
                    if raise_errors:
                        raise
                    prepared.append(ImageResult(source=name, width=0, height=0,
                                                error=str(exc)))
                    continue
                prepared.append((name, image.shape[1], image.shape[0], faces))
            start += len(chunk)
            crops = [f.crop for item in prepared if not isinstance(item, ImageResult)
                     for f in item[3]]
            probs = self.classify_crops(crops, batch_size=batch_size)
            row = 0
            for item in prepared:
                if isinstance(item, ImageResult):
                    yield item
                    continue
                name, width, height, faces = item
                results = tuple(self.face_result(face, probs[row + j], top_k)
                                for j, face in enumerate(faces))
                row += len(faces)
                yield ImageResult(source=name, width=width, height=height, faces=results)

    def detect_and_align(self, image: ImageSource, *, boxes: Sequence[BoxLike] | None = None,
                         detect: bool = True, color: str | None = None) -> list[AlignedFace]:
        """Every face of ``image`` as an :class:`~ferkit.faces.AlignedFace`, cropped as the
        model's config asks (``alignment``, ``face_margin``, ``input_size``)."""
        return detect_and_align(image, self.config.data,
                                lambda: self.detector, boxes=boxes, detect=detect, color=color)

    def classify_crops(self, crops: Sequence[np.ndarray], *,
                       batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` for ``HxWx3`` uint8 RGB face crops
        (any size: each is resized by the model's eval transform)."""
        batch_size = batch_size or self.batch_size
        if len(crops) == 0:
            return np.zeros((0, self.config.num_classes), dtype=np.float32)
        out = []
        for start in range(0, len(crops), batch_size):
            batch = self.preprocess(crops[start:start + batch_size])
            out.append(self.postprocess(self._forward(batch)))
        return np.concatenate(out)

    # -- the three stages ---------------------------------------------------------------

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Face crops → normalised float32 ``(N, C, H, W)`` via ``eval_transform``."""
        if len({c.shape for c in crops}) == 1:
            # One contiguous NCHW copy made by numpy: torch.stack of 68 permuted HWC views
            # took 150 ms on the 2-core benchmark machine (strided copies, thread wake-ups);
            # this takes about 1 ms.
            batch = np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))
            return self.transform(torch.from_numpy(batch)).numpy()
        tensors = [torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1) for c in crops]
        return torch.stack([self.transform(t) for t in tensors]).numpy()

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Only the model call: logits ``(N, num_classes)``."""
        return np.asarray(self.backend(batch), dtype=np.float32)

    def postprocess(self, logits: np.ndarray) -> np.ndarray:
        """Logits → probabilities (softmax over classes)."""
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    def face_result(self, face: AlignedFace, probs: np.ndarray,
                    top_k: int | None = None) -> FaceResult:
        """The :class:`FaceResult` for an aligned face and its class probabilities (what
        ``__call__`` returns per face; explainers reuse it for the faces they explain)."""
        names = self.config.label_names
        best = int(np.argmax(probs))
        prob_map = {n: float(p) for n, p in zip(names, probs, strict=True)}
        if top_k is not None:
            prob_map = dict(ranked(prob_map, top_k))
        return FaceResult(
            box=tuple(float(v) for v in face.box),
            landmarks=face.landmarks,
            detector_score=None if face.detector_score is None else float(face.detector_score),
            probs=prob_map,
            label=names[best],
            score=float(probs[best]),
            crop_matrix=tuple(tuple(float(v) for v in row) for row in face.matrix),
        )

    def __repr__(self) -> str:
        cfg = self.config
        spec = self._detector_spec
        detector = spec if isinstance(spec, str) else type(spec).__name__
        return (f"Recognizer({cfg.architecture}, classes={list(cfg.label_names)}, "
                f"input={cfg.data.input_size}, alignment={cfg.data.alignment}, "
                f"backend={getattr(self.backend, 'name', '?')}, detector={detector})")


def detect_and_align(image: ImageSource, data: DataConfig,
                     detector: FaceDetector | Callable[[], FaceDetector], *,
                     boxes: Sequence[BoxLike] | None = None, detect: bool = True,
                     color: str | None = "rgb") -> list[AlignedFace]:
    """What :meth:`Recognizer.detect_and_align` does, without a model: batch pipelines
    (:mod:`ferkit.batch`) detect in processes that never load the classifier.  ``color``
    as for :func:`~ferkit.inference.io.load_image` (``None``: an array whose order was not
    said, read as RGB with a warning).

    ``detector`` may be a callable returning the detector, so it is built only when needed.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8 \
            or image.shape[2] != 3 or color != "rgb":
        image = load_image(image, color=color)
    if not detect:
        return [whole_image_face(image, data)]
    if boxes is not None:
        detections = [Detection(box=_check_box(b, image), score=None) for b in boxes]
    else:
        if not hasattr(detector, "detect"):
            detector = detector()
        detections = detector.detect(image)
    return [align_face(image, det, data) for det in detections]


def _check_box(box: BoxLike, image: np.ndarray) -> Box:
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise InputError(f"a face box must be (x1, y1, x2, y2) numbers, got {box!r}") from exc
    if not (x2 > x1 and y2 > y1):
        raise InputError(f"face box {box!r} is empty: need x2 > x1 and y2 > y1")
    height, width = image.shape[:2]
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise InputError(f"face box {box!r} lies outside the {width}x{height} image")
    return x1, y1, x2, y2
