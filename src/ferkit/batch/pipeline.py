"""Photos through Ray Data: decode and detect in CPU tasks, classify in an actor pool.

:func:`predict_dataset` adds two stages to a dataset of ``{"source": path or URI}`` rows:

1. :func:`detect_faces` (stateless Ray tasks): read the bytes, decode with
   :func:`ferkit.inference.io.load_image`, detect and align every face with
   :func:`ferkit.inference.recognizer.detect_and_align`, exactly as :class:`ferkit.Recognizer`
   does; an input that cannot be read becomes a row with its ``error``;
2. :class:`Classifier` (an actor pool; each actor loads the model once, on a GPU when it
   reserves one): :meth:`ferkit.Recognizer.classify_crops` then
   :meth:`ferkit.Recognizer.face_result`, so probabilities are those of ``ferkit predict``.

Rows out (:func:`result_schema`): one per face; one per photo without a face (``face_index``
null) and one per failed input (``error`` set).  All rows of one input leave the classifier
in the same block, and ``source_rows`` says how many there are, so a writer can tell a
complete input from a partial one.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ferkit.batch.resources import ResourcePlan, threads_for
from ferkit.config import DataConfig, ModelConfig

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

#: Photos per decode-and-detect task call: 0.2 s (face crops) to a few seconds (large
#: photos) of work on one core, well above Ray's per-task overhead.
IMAGES_PER_TASK = 32
#: Photos per classifier call: their faces go through the model together.
IMAGES_PER_ACTOR_BATCH = 32


@dataclass(frozen=True)
class ModelRef:
    """A checkpoint as batch jobs name it: ``name`` as given (``default`` resolved to the
    shipped model's name) and ``version``, the first 12 hex digits of a SHA-256 over its
    ``config.json`` and weights (so a re-calibrated or retrained model gets a new version).
    An ``.onnx`` file from ``ferkit export`` (e.g. ``--int8``) works too: ``directory`` is
    then the file and ``version`` hashes it."""

    name: str
    version: str
    directory: Path
    config: ModelConfig
    #: what to load on the workers: the model's name when it has one (each node resolves it
    #: in its own install), else the checkpoint path (shared storage on a cluster)
    spec: str = ""

    @classmethod
    def resolve(cls, name_or_path: str = "default") -> ModelRef:
        from ferkit.checkpoint import read_config
        from ferkit.errors import CheckpointError
        from ferkit.weights import find_shipped, resolve_checkpoint_dir

        if str(name_or_path).lower().endswith(".onnx"):
            from ferkit.export import read_onnx_config

            path = Path(name_or_path)
            config = read_onnx_config(path)  # a missing or foreign file fails here
            file_hash = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                    file_hash.update(chunk)
            return cls(name=str(name_or_path), version=file_hash.hexdigest()[:12],
                       directory=path,
                       config=config, spec=str(path.resolve()))
        shipped = find_shipped(str(name_or_path))
        if name_or_path == "default" and shipped is None:
            raise CheckpointError("no default model ships with this ferkit install; pass "
                                  "--model with a checkpoint directory")
        directory = resolve_checkpoint_dir(name_or_path)
        digest = hashlib.sha256()
        for file in sorted(directory.glob("*")):
            if file.suffix in (".json", ".safetensors") and file.is_file():
                digest.update(file.name.encode())
                with file.open("rb") as handle:
                    for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                        digest.update(chunk)
        name = shipped.name if shipped is not None else str(name_or_path)
        named = not Path(name_or_path).exists()
        return cls(name=name, version=digest.hexdigest()[:12], directory=directory,
                   config=read_config(directory),
                   spec=str(name_or_path) if named else str(directory.resolve()))

    def check_same(self, version: str) -> None:
        """Raise if this worker resolved other weights than the driver did (a cluster node
        with another ferkit install or a changed checkpoint)."""
        from ferkit.errors import CheckpointError

        if version != self.version:
            import socket

            raise CheckpointError(
                f"model {self.name} on node {socket.gethostname()} is version {self.version}, "
                f"the job started with {version}: install the same ferkit (and weights) on "
                "every node, or put the checkpoint on storage all nodes share")


def result_schema(label_names: tuple[str, ...], *, video: bool = False) -> pa.Schema:
    """Columns of the results: see docs/scale.md ("How results are laid out")."""
    import pyarrow as pa

    fields = [pa.field("source", pa.string(), nullable=False)]
    if video:
        fields += [pa.field("frame", pa.int64()), pa.field("time_s", pa.float64()),
                   pa.field("track_id", pa.int64())]
    else:
        fields += [pa.field("width", pa.int32()), pa.field("height", pa.int32())]
    fields += [
        pa.field("face_index", pa.int32()),
        pa.field("num_faces", pa.int32()),
        pa.field("box", pa.list_(pa.float64(), 4)),
        pa.field("landmarks", pa.list_(pa.float64(), 10)),
        pa.field("detector_score", pa.float64()),
        pa.field("label", pa.string()),
        pa.field("score", pa.float64()),
        *[pa.field(f"p_{n}", pa.float64()) for n in label_names],
        *([pa.field(f"raw_{n}", pa.float64()) for n in label_names] if video else []),
        pa.field("model", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("source_rows", pa.int32(), nullable=False),
    ]
    return pa.schema(fields)


# ------------------------------------------------------------------ stage 1: Ray tasks

_DETECTORS: dict[tuple, Any] = {}


def _detector(name: str, options: dict[str, Any], threads: int):
    """One detector per worker process and settings: Ray reuses worker processes across
    tasks, so the ONNX session is built once per process, not once per task."""
    from ferkit.faces import create_detector

    key = (name, tuple(sorted(options.items())), threads)
    if key not in _DETECTORS:
        extra = {"num_threads": threads} if name == "retinaface" else {}
        _DETECTORS[key] = create_detector(name, **{**extra, **options})
    return _DETECTORS[key]


def detect_faces(batch: dict[str, np.ndarray], *, data: DataConfig, detector: str = "retinaface",
                 detector_options: dict[str, Any] | None = None, detect: bool = True,
                 threads: int = 1) -> dict[str, np.ndarray]:
    """Decode-and-detect stage: ``source`` in; ``source, width, height, error, faces`` out
    (``faces``: the pickled list of :class:`~ferkit.faces.AlignedFace`)."""
    from ferkit.batch.sources import read_bytes
    from ferkit.inference.io import load_image
    from ferkit.inference.recognizer import detect_and_align

    sources = [str(s) for s in batch["source"]]
    widths, heights, errors, faces = [], [], [], []
    for source in sources:
        try:
            image = load_image(read_bytes(source), name=source)
            found = detect_and_align(
                image, data, lambda: _detector(detector, dict(detector_options or {}), threads),
                detect=detect)
        except Exception as exc:  # one bad input is a failure row, never a failed job
            widths.append(0)
            heights.append(0)
            errors.append(_message(exc))
            faces.append(pickle.dumps([]))
            continue
        heights.append(image.shape[0])
        widths.append(image.shape[1])
        errors.append(None)
        faces.append(pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL))
    return {"source": np.array(sources, dtype=object), "width": np.array(widths, np.int32),
            "height": np.array(heights, np.int32), "error": np.array(errors, dtype=object),
            "faces": np.array(faces, dtype=object)}


def _message(exc: BaseException) -> str:
    from ferkit.errors import FerkitError

    return str(exc) if isinstance(exc, FerkitError) else f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------- stage 2: the actor pool


def load_recognizer(model_dir: str, *, backend: str, device: str, batch_size: int,
                    threads: int, detector: str = "retinaface",
                    detector_options: dict[str, Any] | None = None):
    """A Recognizer whose classifier uses ``threads`` compute threads (the CPUs its Ray
    actor reserves, not every core of the node)."""
    import torch

    from ferkit.inference.backends import OnnxBackend
    from ferkit.inference.recognizer import Recognizer

    torch.set_num_threads(threads)
    recognizer = Recognizer.from_pretrained(model_dir, device=device, backend=backend,
                                            batch_size=batch_size, detector=detector,
                                            **dict(detector_options or {}))
    if isinstance(recognizer.backend, OnnxBackend) and recognizer.backend.threads != threads:
        recognizer.backend = OnnxBackend(recognizer.backend.path, threads=threads)
    return recognizer


class Classifier:
    """Actor: classifies the faces of a batch of detected photos and emits result rows."""

    def __init__(self, model: str, model_name: str, model_version: str, *,
                 backend: str = "auto", batch_size: int = 32, threads: int = 1,
                 use_gpu: bool = False) -> None:
        import torch

        ref = ModelRef.resolve(model)
        ref.check_same(model_version)
        device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
        self.recognizer = load_recognizer(str(ref.directory), backend=backend, device=device,
                                          batch_size=batch_size, threads=threads)
        self.model_name, self.model_version = model_name, model_version
        self.schema = result_schema(self.recognizer.label_names)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        # pyarrow in, not numpy: an all-null ``error`` column would arrive as NaN floats.
        images = batch.select(["source", "width", "height", "error"]).to_pylist()
        per_image = [pickle.loads(blob) for blob in batch.column("faces").to_pylist()]
        probs = self.recognizer.classify_crops([f.crop for faces in per_image for f in faces])
        rows: list[dict[str, Any]] = []
        row = 0
        for image, faces in zip(images, per_image, strict=True):
            base = {**image, "num_faces": None if image["error"] is not None else len(faces),
                    "source_rows": max(1, len(faces))}
            if not faces:
                rows.append(self._row(base))
            for j, face in enumerate(faces):
                result = self.recognizer.face_result(face, probs[row + j])
                rows.append(self._row(base, j, result))
            row += len(faces)
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _row(self, base: dict[str, Any], index: int | None = None, face=None) -> dict[str, Any]:
        out = {**base, "model": self.model_name, "model_version": self.model_version}
        if face is not None:
            out.update(face_columns(face, index))
        return out


def face_columns(face, index: int) -> dict[str, Any]:
    """The per-face columns of a :class:`~ferkit.inference.results.FaceResult`."""
    return {
        "face_index": index,
        "box": list(face.box),
        "landmarks": None if face.landmarks is None
        else [float(v) for point in face.landmarks for v in point],
        "detector_score": face.detector_score,
        "label": face.label,
        "score": face.score,
        **{f"p_{name}": p for name, p in face.probs.items()},
    }


# ---------------------------------------------------------------------- the public API


def predict_dataset(ds: ray.data.Dataset, *, model: str = "default",
                    detector: str = "retinaface", detector_options: dict[str, Any] | None = None,
                    detect: bool = True, backend: str = "auto", batch_size: int = 32,
                    plan: ResourcePlan | None = None,
                    images_per_task: int = IMAGES_PER_TASK,
                    images_per_batch: int = IMAGES_PER_ACTOR_BATCH) -> ray.data.Dataset:
    """Faces and expressions for a Ray dataset of ``{"source": path or URI}`` rows.

    Args:
        ds: rows with a string ``source`` column (local paths need to be readable on every
            node: shared storage; URIs are read through pyarrow filesystems).
        model: ``default``, a shipped or user model name, or a checkpoint directory.
        detector, detector_options, detect: as for :class:`ferkit.Recognizer`
            (``detect=False``: each image is one already-cropped face).
        backend: the classifier backend in each actor (``auto``, ``torch``, ``onnx``).
        batch_size: faces per model call.
        plan: actor count and reservations (default: :func:`plan_resources` for the
            running cluster).
        images_per_task, images_per_batch: photos per detect task call / classifier call.

    Returns:
        A lazy dataset of result rows (:func:`result_schema`); nothing runs until it is
        consumed (``write_parquet``, ``iter_batches``, ``take_all``…).

    Example:
        >>> import ray, ferkit.batch                                        # doctest: +SKIP
        >>> ds = ray.data.from_items([{"source": "photos/a.jpg"}])          # doctest: +SKIP
        >>> ferkit.batch.predict_dataset(ds).take_all()[0]["label"]         # doctest: +SKIP
        'happy'
    """
    import ray

    from ferkit.batch.resources import plan_resources
    from ferkit.errors import FerkitError

    if "source" not in ds.columns():
        raise FerkitError(f"predict_dataset needs a 'source' column; the dataset has "
                          f"{', '.join(ds.columns() or [])}")
    ref = ModelRef.resolve(model)
    plan = plan or plan_resources(ray.cluster_resources())
    detected = ds.select_columns(["source"]).map_batches(
        detect_faces, batch_size=images_per_task, batch_format="numpy",
        num_cpus=plan.task_cpus,
        fn_kwargs={"data": ref.config.data, "detector": detector,
                   "detector_options": dict(detector_options or {}), "detect": detect,
                   "threads": threads_for(plan.task_cpus)})
    return detected.map_batches(
        Classifier, batch_size=images_per_batch, batch_format="pyarrow",
        fn_constructor_args=(ref.spec, ref.name, ref.version),
        fn_constructor_kwargs={"backend": backend, "batch_size": batch_size,
                               "threads": threads_for(plan.actor_cpus),
                               "use_gpu": plan.actor_gpus > 0},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=plan.actors),
        num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus or None)
