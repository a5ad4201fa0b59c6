"""Inference speed on CPU: classifier faces/s vs batch size and end-to-end photos/s, PyTorch
eager vs ONNX Runtime, side by side with the ``fer`` package; face recall on the 43 dlib
ground-truth boxes.

Run from the repository root (see benchmarks/README_inference.md for the fer venv)::

    PYTHONPATH=src python benchmarks/inference_speed.py --fer-python /tmp/ferenv/bin/python

Everything is measured in this one process (the fer package in a child process, in its own
venv, during the same run), as medians of ``--repeats`` timed passes after one warm-up,
with the backends interleaved so machine load hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "face_photos" / "dlib" / "examples" / "faces"


def ground_truth(folder: Path) -> dict[str, np.ndarray]:
    """photo name -> (K, 4) x1, y1, x2, y2 boxes from dlib's training.xml + testing.xml."""
    truth: dict[str, list] = {}
    for xml_name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / xml_name).getroot().iter("image"):
            boxes = truth.setdefault(Path(image.get("file")).name, [])
            for box in image.iter("box"):
                x, y = float(box.get("left")), float(box.get("top"))
                boxes.append([x, y, x + float(box.get("width")), y + float(box.get("height"))])
    return {k: np.array(v, dtype=np.float64).reshape(-1, 4) for k, v in truth.items()}


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def score_detections(truth: dict[str, np.ndarray], found: dict[str, np.ndarray],
                     threshold: float) -> dict[str, int]:
    """Ground-truth faces matched (IoU >= threshold), detections matching no face
    (IoU < 0.3 with every labelled face, in labelled photos), and detections on dogs.jpg."""
    hits = extra = 0
    for name, boxes in truth.items():
        got = found.get(name, np.zeros((0, 4)))
        iou = iou_matrix(boxes, got)
        hits += int((iou.max(1) >= threshold).sum()) if got.size else 0
        extra += int((iou.max(0) < 0.3).sum()) if got.size else 0
    return {"recall": hits, "of": sum(len(b) for b in truth.values()), "unmatched": extra,
            "on_dogs": len(found.get("dogs.jpg", []))}


def time_classifier(backends: dict, shape: tuple[int, ...], batch_sizes, repeats) -> dict:
    """faces/s per backend and batch size: median over ``repeats`` calls (interleaved)."""
    out: dict[str, dict[int, float]] = {name: {} for name in backends}
    rng = np.random.default_rng(0)
    for batch in batch_sizes:
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        times: dict[str, list[float]] = {name: [] for name in backends}
        for backend in backends.values():
            backend(x)  # warm-up: allocations, ORT kernel selection
        for _ in range(repeats):
            for name, backend in backends.items():
                start = time.perf_counter()
                backend(x)
                times[name].append(time.perf_counter() - start)
        for name in backends:
            out[name][batch] = batch / statistics.median(times[name])
    return out


def time_end_to_end(recognizers: dict, photos: list[Path], repeats: int):
    """photos/s per recognizer (load + detect + align + classify every photo), median over
    passes; and the boxes found on the first pass.  A name ending in "batched" gets all
    photos in one call (faces of all photos share classifier batches, as ``ferkit predict``
    does); the others one call per photo."""
    boxes: dict[str, dict[str, np.ndarray]] = {}
    passes: dict[str, list[float]] = {name: [] for name in recognizers}
    for repeat in range(repeats + 1):
        for name, rec in recognizers.items():
            start = time.perf_counter()
            if name.endswith("batched"):
                results = rec([str(p) for p in photos])
            else:
                results = [rec(str(p)) for p in photos]
            elapsed = time.perf_counter() - start
            if repeat == 0:  # warm-up pass; its boxes are the ones scored
                boxes[name] = {p.name: np.array([f.box for f in r.faces]).reshape(-1, 4)
                               for p, r in zip(photos, results, strict=True)}
            else:
                passes[name].append(elapsed)
    speed = {name: len(photos) / statistics.median(t) for name, t in passes.items()}
    return speed, boxes, passes


def time_stages(rec, photos: list[Path], repeats: int) -> dict[str, float]:
    """Seconds per pass spent loading, detecting + aligning, and classifying (all faces of
    all photos in one classifier call, as the batched pipeline does): medians of passes."""
    from ferkit.inference.io import load_image

    stages: dict[str, list[float]] = {"load": [], "detect+align": [], "classify": []}
    for repeat in range(repeats + 1):
        t0 = time.perf_counter()
        images = [load_image(str(p)) for p in photos]
        t1 = time.perf_counter()
        crops = [face.crop for image in images for face in rec.detect_and_align(image, color="rgb")]
        t2 = time.perf_counter()
        rec.classify_crops(crops)
        t3 = time.perf_counter()
        if repeat:
            for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                stages[name].append(value)
    return {name: statistics.median(v) for name, v in stages.items()}


def run_fer(fer_python: str, photos: list[Path], repeats: int) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(BENCH / "fer_stub"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [fer_python, str(BENCH / "fer_baseline.py"), "--repeats", str(repeats),
           *map(str, photos)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(f"fer baseline failed ({proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_model(args):
    import ferkit

    if args.model:
        return ferkit.load_checkpoint(args.model), args.model
    torch.manual_seed(0)
    size = (3, args.size, args.size)
    model = ferkit.create_model("baseline", backbone=args.backbone, input_size=size)
    return model.eval(), (f"baseline {args.backbone} {'x'.join(map(str, size))} "
                          "(random weights: no shipped model yet)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint dir (default: a random baseline model)")
    parser.add_argument("--backbone", default="resnet18", help="random baseline's backbone")
    parser.add_argument("--size", type=int, default=112, help="random baseline's input side")
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fer-python", help="python of the venv holding fer (optional)")
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    parser.add_argument("--compare", help="a second checkpoint (e.g. the previous default) "
                        "timed in the same run, interleaved: its classifier rows and its "
                        "batched ONNX pipeline are labelled 'compare'")
    parser.add_argument("--int8-calibration", help="also time the model's int8 ONNX file "
                        "(ferkit.quantize), calibrated on this dataset's training faces, "
                        "e.g. ../shared/data/fer2013/fer2013.csv.gz")
    args = parser.parse_args()

    import ferkit
    from ferkit.faces import create_detector
    from ferkit.inference.backends import OnnxBackend, TorchBackend

    load_start = os.getloadavg()  # the machine's other work, reported with the results
    torch.set_num_threads(args.threads)
    model, model_desc = build_model(args)
    cache = tempfile.mkdtemp(prefix="ferkit-bench-")
    export_start = time.perf_counter()
    onnx_backend = OnnxBackend(model, threads=args.threads, cache_dir=cache)
    export_s = time.perf_counter() - export_start
    torch_backend = TorchBackend(model)
    shape = model.ferkit_config.data.input_size
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    backends = {"torch": torch_backend, "onnx": onnx_backend}
    other = ferkit.load_checkpoint(args.compare) if args.compare else None
    if other is not None:
        other_shape = tuple(other.ferkit_config.data.input_size)
        if other_shape != tuple(shape):
            raise SystemExit(f"--compare {args.compare}: input {other_shape} differs from "
                             f"the model's {tuple(shape)}")
        other_onnx = OnnxBackend(other, threads=args.threads, cache_dir=cache)
        backends.update({"compare torch": TorchBackend(other), "compare onnx": other_onnx})
    int8 = None
    if args.int8_calibration:
        from ferkit.quantize import quantize_onnx

        int8 = quantize_onnx(model, Path(cache) / "int8.onnx", args.int8_calibration,
                             exporter="torchscript")
        backends["int8 onnx"] = OnnxBackend(int8.path, threads=args.threads)
    classifier = time_classifier(backends, shape, batch_sizes, args.repeats)

    photos = sorted(args.photos.glob("*.jpg"))
    truth = ground_truth(args.photos)
    detector = create_detector("retinaface")
    recognizers = {
        "ferkit torch": ferkit.Recognizer(model, detector=detector, backend="torch"),
        "ferkit onnx": ferkit.Recognizer(model, detector=detector, backend="onnx"),
    }
    recognizers["ferkit onnx"].backend = onnx_backend  # same session as the classifier table
    recognizers["ferkit onnx, batched"] = recognizers["ferkit onnx"]
    if other is not None:
        compare = ferkit.Recognizer(other, detector=detector, backend="onnx")
        compare.backend = other_onnx
        recognizers["compare onnx, batched"] = compare
    if int8 is not None:
        recognizers["ferkit onnx int8, batched"] = ferkit.Recognizer(
            backends["int8 onnx"], detector=detector)
    speed, boxes, passes = time_end_to_end(recognizers, photos, args.repeats)
    stages = time_stages(recognizers["ferkit onnx"], photos, args.repeats)
    fer = run_fer(args.fer_python, photos, args.repeats) if args.fer_python else None
    if fer is not None:
        speed["fer 25.10.3"] = fer["median_photos_per_s"]
        boxes["fer 25.10.3"] = {Path(k).name: np.array(v).reshape(-1, 4)
                                for k, v in fer["boxes"].items()}
        passes["fer 25.10.3"] = fer["seconds_per_pass"]

    load_end = os.getloadavg()
    print(f"# ferkit inference speed ({platform.processor() or platform.machine()}, "
          f"{args.threads} threads, torch {torch.__version__}, load avg "
          f"{load_start[0]:.1f} at start, {load_end[0]:.1f} at end)")
    print(f"model: {model_desc}; ONNX export+verify+load {export_s:.1f} s (cached after)\n")
    print(f"## Classifier faces/s (median of {args.repeats} calls)\n")
    if other is not None:
        print(f"compare: {args.compare}\n")
        print("| batch | PyTorch eager | ONNX Runtime | speed-up | compare PyTorch | "
              "compare ONNX | ONNX model / compare |\n|---:|---:|---:|---:|---:|---:|---:|")
    else:
        print("| batch | PyTorch eager | ONNX Runtime | speed-up |\n|---:|---:|---:|---:|")
    for b in batch_sizes:
        t, o = classifier["torch"][b], classifier["onnx"][b]
        row = f"| {b} | {t:.1f} | {o:.1f} | {o / t:.2f}x |"
        if other is not None:
            ct, co = classifier["compare torch"][b], classifier["compare onnx"][b]
            row += f" {ct:.1f} | {co:.1f} | {o / co:.2f}x |"
        print(row)
    if int8 is not None:
        print(f"\n## int8 ONNX ({int8.quantized_convs} of {int8.total_convs} convolutions; "
              f"calibrated on {int8.calibration_samples} faces of {int8.calibration}; top-1 "
              f"agreement with fp32 {int8.top1_agreement:.2%} on {int8.check_samples} others)\n")
        print("| batch | ONNX fp32 | ONNX int8 | int8 / fp32 |\n|---:|---:|---:|---:|")
        for b in batch_sizes:
            o, q = classifier["onnx"][b], classifier["int8 onnx"][b]
            print(f"| {b} | {o:.1f} | {q:.1f} | {q / o:.2f}x |")
    print(f"\n## End to end: {len(photos)} photos ({args.photos.name}), load + detect + align "
          f"+ classify, photos/s (median of {args.repeats} passes)\n")
    print("| pipeline | photos/s | recall IoU>=0.5 | recall IoU>=0.4 | unmatched | dogs.jpg |")
    print("|---|---:|---:|---:|---:|---:|")
    scores = {}
    for name in speed:
        s5 = score_detections(truth, boxes[name], 0.5)
        s4 = score_detections(truth, boxes[name], 0.4)
        scores[name] = {"iou0.5": s5, "iou0.4": s4}
        print(f"| {name} | {speed[name]:.2f} | {s5['recall']}/{s5['of']} | "
              f"{s4['recall']}/{s4['of']} | {s5['unmatched']} | {s5['on_dogs']} |")
    print("\nferkit onnx, seconds per pass by stage: " + ", ".join(
        f"{name} {value:.3f}" for name, value in stages.items()))
    if fer is not None:
        fer_speed = speed["fer 25.10.3"]
        print("\nvs fer: " + ", ".join(f"{name} {value / fer_speed:.2f}x" for name, value
                                        in speed.items() if name.startswith("ferkit")))
    if args.json:
        args.json.write_text(json.dumps({
            "model": model_desc, "threads": args.threads, "repeats": args.repeats,
            "classifier_faces_per_s": classifier, "photos_per_s": speed,
            "seconds_per_pass": passes, "stages_s": stages, "detection": scores,
            "export_s": export_s, "load_avg": [load_start[0], load_end[0]],
            "compare": args.compare,
            "int8": None if int8 is None else int8.to_dict(),
        }, indent=2))


if __name__ == "__main__":
    main()
