"""Batch inference on Ray Data: photos and videos by the million, on one machine or a cluster.

* :func:`predict_dataset`: add face detection and expression rows to a
  ``ray.data.Dataset`` of ``{"source": path or URI}`` rows (for composing pipelines);
* :func:`predict_video_dataset`: the same for videos, with track ids;
* :func:`run_batch`: a whole resumable job into a Parquet folder (``ferkit batch``).

Ray is optional (``pip install 'ferkit[ray]'``): importing this package does not import it.
docs/scale.md explains when to use it, the result columns and how to size the actors.
"""

from __future__ import annotations

from ferkit.batch.job import BatchSummary, ensure_ray, run_batch
from ferkit.batch.pipeline import ModelRef, predict_dataset, result_schema
from ferkit.batch.resources import ResourcePlan, plan_resources
from ferkit.batch.video import predict_video_dataset

__all__ = [
    "BatchSummary",
    "ModelRef",
    "ResourcePlan",
    "ensure_ray",
    "plan_resources",
    "predict_dataset",
    "predict_video_dataset",
    "result_schema",
    "run_batch",
]
