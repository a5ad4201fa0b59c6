"""Time the ``fer`` package (Haar + mini-Xception TFLite) on photos; print JSON.

Runs inside the separate fer virtual environment (see README_inference.md), started by
``inference_speed.py``::

    PYTHONPATH=benchmarks/fer_stub /tmp/ferenv/bin/python benchmarks/fer_baseline.py \
        --repeats 5 PHOTO...
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.INFO)

    import cv2
    from fer.fer import FER

    detector = FER(use_tflite=True)  # fer's defaults otherwise: Haar cascade, scale 1.1
    boxes: dict[str, list[list[float]]] = {}
    totals = []
    for repeat in range(args.repeats + 1):  # first pass warms up (file cache, XNNPACK)
        start = time.perf_counter()
        for path in args.photos:
            image = cv2.imread(path)  # fer's own examples decode with OpenCV
            faces = detector.detect_emotions(image)
            if repeat == 0:
                boxes[path] = [[float(x), float(y), float(x + w), float(y + h)]
                               for x, y, w, h in (f["box"] for f in faces)]
        if repeat:
            totals.append(time.perf_counter() - start)
    print(json.dumps({
        "fer_version": __import__("fer").__version__,
        "opencv": cv2.__version__,
        "seconds_per_pass": totals,
        "median_photos_per_s": len(args.photos) / statistics.median(totals),
        "boxes": boxes,
    }))


if __name__ == "__main__":
    main()
