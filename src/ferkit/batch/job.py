"""A whole batch job, as ``ferkit batch`` runs it: inputs in, a resumable results folder out.

:func:`run_batch` lists the inputs, connects to Ray (an embedded local runtime by default,
``address=`` for a running cluster), skips the inputs ``out`` already has results for,
streams the rest through :func:`~ferkit.batch.pipeline.predict_dataset` (or
:func:`~ferkit.batch.video.predict_video_dataset`) and writes the rows with
:class:`~ferkit.batch.output.PartWriter`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferkit.batch.resources import ResourcePlan
from ferkit.errors import FerkitError


@dataclass
class BatchSummary:
    """What a :func:`run_batch` call did."""

    out: str
    inputs: int = 0
    skipped: int = 0
    processed: int = 0
    rows: int = 0
    faces: int = 0
    failed: int = 0
    seconds: float = 0.0
    plan: ResourcePlan | None = None
    parts: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None,
               num_gpus: int | None = None):
    """Import Ray and connect: to ``address`` (``auto`` or ``ray://host:10001``…), else to a
    runtime already started in this process, else start a local one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        options["address"] = address
    else:
        options.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    try:
        ray.init(**options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
        raise FerkitError(f"cannot connect to {where}: {exc}") from exc
    _quiet_ray_data()
    return ray


def import_ray():
    """The ``ray`` module, or a :class:`FerkitError` that says how to install it."""
    try:
        import ray
        import ray.data  # ray without the [data] extra lacks its dependencies
    except ImportError as exc:
        raise FerkitError(f"batch inference on Ray needs Ray Data ({exc}): pip install "
                          "'ferkit[ray]' (or use `ferkit predict` on one machine)") from exc
    return ray


def _quiet_ray_data() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    with contextlib.suppress(AttributeError):
        context.print_on_execution_start = False


def run_batch(inputs: Sequence[str], out: str, *, model: str = "default",
              detector: str = "retinaface", detector_options: dict[str, Any] | None = None,
              detect: bool = True, backend: str = "auto", batch_size: int = 32,
              video: bool = False, every: int = 1, address: str | None = None,
              num_cpus: int | None = None, actors: int | None = None,
              actor_cpus: float | None = None, gpus_per_actor: float | None = None,
              task_cpus: float | None = None, rows_per_part: int = 20_000,
              seconds_per_part: float = 30.0,
              on_progress: Callable[[BatchSummary], None] | None = None) -> BatchSummary:
    """Run a batch job; see ``ferkit batch --help`` and docs/scale.md.

    Raises:
        FerkitError: no inputs, Ray missing or unreachable, ``out`` holding another model's
            results, or resource settings that would stall the job.
    """
    from ferkit.batch.output import PartWriter, completed_sources, remove_partial
    from ferkit.batch.pipeline import ModelRef, predict_dataset
    from ferkit.batch.resources import plan_resources
    from ferkit.batch.sources import list_sources
    from ferkit.batch.video import predict_video_dataset

    import_ray()  # before any work: say at once when Ray is missing
    started = time.perf_counter()
    sources, problems = list_sources(inputs, video=video)
    if not sources:
        details = "; ".join(message for _, message in problems) or "no inputs given"
        raise FerkitError(f"nothing to read: {details}")
    ref = ModelRef.resolve(model)
    summary = BatchSummary(out=out, inputs=len(sources), problems=problems)
    remove_partial(out)
    done = completed_sources(out, model_version=ref.version)
    todo = [s for s in sources if s not in done]
    summary.skipped = len(sources) - len(todo)
    if not todo:
        summary.seconds = time.perf_counter() - started
        return summary
    ray = ensure_ray(address, num_cpus=num_cpus)
    cluster = ray.cluster_resources()
    plan = plan_resources(cluster, actors=actors, actor_cpus=actor_cpus,
                          gpus_per_actor=gpus_per_actor, task_cpus=task_cpus)
    summary.plan = plan
    # Enough blocks that every free CPU has a detect task to run, few enough to stay cheap.
    blocks = max(1, min(len(todo), max(2 * math.ceil(plan.cluster_cpus), len(todo) // 64)))
    ds = ray.data.from_items([{"source": s} for s in todo], override_num_blocks=blocks)
    if video:
        results = predict_video_dataset(ds, model=model, detector=detector,
                                        detector_options=detector_options, backend=backend,
                                        batch_size=batch_size, every=every)
    else:
        results = predict_dataset(ds, model=model, detector=detector,
                                  detector_options=detector_options, detect=detect,
                                  backend=backend, batch_size=batch_size, plan=plan)
    writer = PartWriter(out, rows_per_part=rows_per_part, seconds_per_part=seconds_per_part)
    seen: set[str] = set()
    for table in results.iter_batches(batch_size=None, batch_format="pyarrow"):
        writer.add(table)
        summary.rows += table.num_rows
        errors = table.column("error").to_pylist()
        faces = table.column("face_index").to_pylist()
        for source, error, face in zip(table.column("source").to_pylist(), errors, faces,
                                       strict=True):
            if source not in seen:
                seen.add(source)
                summary.failed += error is not None
            summary.faces += face is not None
        summary.processed = len(seen)
        if on_progress is not None:
            on_progress(summary)
    writer.close()
    summary.parts = writer.parts
    summary.seconds = time.perf_counter() - started
    return summary
