"""Videos through Ray Data: one actor call per video, one row per face per analysed frame.

Each call runs :func:`ferkit.inference.video.analyze_video` (the tracker and smoother of
``ferkit video``) on one whole video, so track ids are consistent within it; many videos run
side by side on the actor pool.  Rows (:func:`~ferkit.batch.pipeline.result_schema` with
``video=True``): ``frame``, ``time_s``, ``track_id``, the face columns with ``label``,
``score`` and ``p_<class>`` smoothed along the track and ``raw_<class>`` from that frame
alone (as ``ferkit video --csv``); a video with no face gets one row with ``frame`` null,
a video that cannot be read one row with its ``error``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ferkit.batch.pipeline import ModelRef, face_columns, load_recognizer, result_schema
from ferkit.batch.resources import ResourcePlan, threads_for

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data


class VideoAnalyzer:
    """Actor: one Recognizer (model and detector loaded once), one video per call."""

    def __init__(self, model: str, model_name: str, model_version: str, *,
                 detector: str = "retinaface", detector_options: dict[str, Any] | None = None,
                 backend: str = "auto", batch_size: int = 32, threads: int = 1,
                 use_gpu: bool = False, every: int = 1) -> None:
        import torch

        device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
        options = dict(detector_options or {})
        if detector == "retinaface":
            options.setdefault("num_threads", threads)
        ref = ModelRef.resolve(model)
        ref.check_same(model_version)
        self.recognizer = load_recognizer(str(ref.directory), backend=backend, device=device,
                                          batch_size=batch_size, threads=threads,
                                          detector=detector, detector_options=options)
        self.model_name, self.model_version = model_name, model_version
        self.every = every
        self.schema = result_schema(self.recognizer.label_names, video=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        import pyarrow as pa

        rows: list[dict[str, Any]] = []
        for source in batch["source"]:
            rows += self.analyze(str(source))
        return pa.Table.from_pylist(rows, schema=self.schema)

    def analyze(self, source: str) -> list[dict[str, Any]]:
        from ferkit.batch.pipeline import _message
        from ferkit.batch.sources import local_copy
        from ferkit.inference.video import analyze_video

        base = {"source": source, "model": self.model_name,
                "model_version": self.model_version}
        frames = []
        try:
            with tempfile.TemporaryDirectory(prefix="ferkit-video-") as folder:
                path = local_copy(source, Path(folder))
                analyze_video(path, self.recognizer, every=self.every,
                              on_frame=lambda _i, result: result is not None
                              and frames.append(result))
        except Exception as exc:  # one bad video is a failure row, never a failed job
            return [{**base, "error": _message(exc), "source_rows": 1}]
        rows = []
        for frame in frames:
            for index, tracked in enumerate(frame.faces):
                row = {**base, "frame": frame.index, "time_s": frame.time_s,
                       "track_id": tracked.track_id, "num_faces": len(frame.faces),
                       **face_columns(tracked.face, index)}
                row.update(label=tracked.label, score=tracked.score,
                           **{f"p_{k}": v for k, v in tracked.probs.items()},
                           **{f"raw_{k}": v for k, v in tracked.face.probs.items()})
                rows.append(row)
        if not rows:
            rows.append({**base, "num_faces": 0})
        for row in rows:
            row["source_rows"] = len(rows)
        return rows


def predict_video_dataset(ds: ray.data.Dataset, *, model: str = "default",
                          detector: str = "retinaface",
                          detector_options: dict[str, Any] | None = None,
                          backend: str = "auto", batch_size: int = 32, every: int = 1,
                          plan: ResourcePlan | None = None) -> ray.data.Dataset:
    """Tracked faces and smoothed expressions for a dataset of ``{"source": video}`` rows.

    Every actor decodes, detects, classifies and tracks its video itself (tracking needs
    the frames in order), so here the pool may take every CPU: there are no detect tasks to
    starve.  ``every``: analyse every N-th frame.
    """
    import ray

    from ferkit.batch.resources import plan_resources

    ref = ModelRef.resolve(model)
    if plan is None:
        cluster = ray.cluster_resources()
        default = plan_resources(cluster)
        cpus = 1.0 if default.actor_gpus == 0 else default.actor_cpus
        actors = (default.actors if default.actor_gpus
                  else max(1, int(default.cluster_cpus // cpus)))
        plan = ResourcePlan(actors=actors, actor_cpus=cpus, actor_gpus=default.actor_gpus,
                            task_cpus=0.0, cluster_cpus=default.cluster_cpus)
    return ds.select_columns(["source"]).map_batches(
        VideoAnalyzer, batch_size=1, batch_format="numpy",
        fn_constructor_args=(ref.spec, ref.name, ref.version),
        fn_constructor_kwargs={"detector": detector,
                               "detector_options": dict(detector_options or {}),
                               "backend": backend, "batch_size": batch_size,
                               "threads": threads_for(plan.actor_cpus),
                               "use_gpu": plan.actor_gpus > 0, "every": every},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=plan.actors),
        num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus or None)
