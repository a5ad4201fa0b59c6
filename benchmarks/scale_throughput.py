"""Photos/s of ``ferkit batch`` (Ray Data) vs ``ferkit predict`` on the same photos and cores,
and how the Ray path scales from 1 to 2 detect worker processes.

Run from the repository root (benchmarks/README_scale.md has the table this printed)::

    PYTHONPATH=src python benchmarks/scale_throughput.py --photos 2000 --repeats 2

Every configuration runs end to end on the same ``--photos`` ExpW crops (decode, RetinaFace,
alignment, classification, model loading; the Ray path also starts its actor and writes its
Parquet parts), interleaved ``--repeats`` times so machine load hits them alike; medians
are reported.  The local Ray runtime (``--cpus`` CPUs) starts once, before the clock; a
64-photo job then starts Ray's worker processes and measures a job's fixed cost.  The
per-stage rates measured at the end (one thread each) give the projection for N nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXPW = REPO.parent / "shared" / "data" / "expw_dev" / "images"
PREDICT = "ferkit predict (1 process)"


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def time_predict(files: list[str], backend: str) -> tuple[float, str]:
    """``ferkit predict``'s loop (run_predict without printing), model loading included."""
    from ferkit.inference.recognizer import Recognizer

    start = time.perf_counter()
    recognizer = Recognizer.from_pretrained("default", backend=backend, batch_size=16)
    count = sum(1 for _ in recognizer.iter_results(files))
    assert count == len(files)
    return time.perf_counter() - start, "one process, 2 threads"


def time_batch(files: list[str], backend: str, task_cpus: float) -> tuple[float, str]:
    """``ferkit batch`` on the running runtime, actor start and model loading included."""
    from ferkit.batch import run_batch

    out = tempfile.mkdtemp(prefix="ferkit-bench-")
    try:
        summary = run_batch(files, out, backend=backend, task_cpus=task_cpus)
        assert summary.processed == len(files), summary
        return summary.seconds, summary.plan.describe()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def stage_rates(files: list[str], backend: str) -> dict[str, float]:
    """Photos/s of decode+detect and faces/s of classification, one thread each."""
    import torch

    from ferkit.batch.pipeline import ModelRef, detect_faces, load_recognizer

    torch.set_num_threads(1)
    ref = ModelRef.resolve("default")
    sample = files[:200]
    detect_faces({"source": np.array(sample[:8], dtype=object)}, data=ref.config.data)
    start = time.perf_counter()
    detected = detect_faces({"source": np.array(sample, dtype=object)}, data=ref.config.data,
                            threads=1)
    detect_s = time.perf_counter() - start
    crops = [f.crop for blob in detected["faces"] for f in pickle.loads(blob)]
    recognizer = load_recognizer(str(ref.directory), backend=backend, device="cpu",
                                 batch_size=32, threads=1)
    recognizer.classify_crops(crops[:32])  # warm-up
    start = time.perf_counter()
    recognizer.classify_crops(crops)
    classify_s = time.perf_counter() - start
    return {"detect_photos_per_s_1thread": len(sample) / detect_s,
            "classify_faces_per_s_1thread": len(crops) / classify_s,
            "faces_per_photo": len(crops) / len(sample)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    files = [str(p) for p in sorted(EXPW.glob("*.jpg"))[:args.photos]]
    from ferkit.batch import ensure_ray

    load_start = load()
    started = time.perf_counter()
    ensure_ray(num_cpus=args.cpus)
    ray_start_s = time.perf_counter() - started
    fixed_s, _ = time_batch(files[:64], args.backend, 1.0)  # also starts Ray's workers
    configs = {
        PREDICT: lambda: time_predict(files, args.backend),
        "ferkit batch, 1 detect worker": lambda: time_batch(files, args.backend, 1.0),
        "ferkit batch, 2 detect workers": lambda: time_batch(files, args.backend, 0.75),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    plans: dict[str, str] = {}
    for _ in range(args.repeats):
        for name, run in configs.items():
            seconds, plan = run()
            times[name].append(seconds)
            plans[name] = plan
            print(f"{name}: {seconds:.1f} s ({len(files) / seconds:.1f} photos/s); "
                  f"load {load()}", flush=True)
    rates = stage_rates(files, args.backend)
    base = statistics.median(times[PREDICT])
    report = {
        "photos": len(files), "cpus": args.cpus, "backend": args.backend,
        "ray_start_s": ray_start_s, "first_64_photo_job_s": fixed_s,
        "load_start": load_start, "load_end": load(),
        "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "configs": {name: {"median_s": statistics.median(t), "runs_s": t,
                           "photos_per_s": len(files) / statistics.median(t),
                           "vs_predict": base / statistics.median(t), "plan": plans[name]}
                    for name, t in times.items()},
        "stage_rates": rates,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
