"""Ensemble probe: average the log-probabilities of several checkpoints (equal weights) and
measure FER2013 PublicTest, PrivateTest and expw_dev, each model alone and the ensemble,
with and without flip TTA (accuracy, mean class accuracy, in percent; fp32).

    python scripts/ensemble_probe.py default runs/ft1/best

Tells whether distilling an ensemble of our own runs could beat the shipped model: a
student rarely does better than its teacher.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ferkit.data import open_dataset
from ferkit.data.fer2013 import open_fer2013
from ferkit.evaluation import compute_metrics, model_inputs, predict_logits
from ferkit.weights import load_checkpoint


def _scores(log_probs: np.ndarray, labels: np.ndarray, label_names) -> list[float]:
    report = compute_metrics(labels, log_probs.argmax(axis=1), label_names=label_names)
    return [round(100 * report.accuracy, 2), round(100 * report.mean_class_accuracy, 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="shipped names or run folders")
    parser.add_argument("--fer2013", default="../shared/data/fer2013/fer2013.csv.gz")
    parser.add_argument("--expw", default="../shared/data/expw_dev")
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        parser.error("an ensemble needs at least two checkpoints")
    torch.set_num_threads(2)
    models = [load_checkpoint(name).eval() for name in args.checkpoints]
    names = [m.ferkit_config.label_names for m in models]
    if any(n != names[0] for n in names):
        raise SystemExit(f"the checkpoints' classes differ: {names}")
    sets = {"publictest": open_fer2013(args.fer2013, split="val"),
            "privatetest": open_fer2013(args.fer2013, split="test"),
            "expw_dev": open_dataset(args.expw, split="test")}
    rows: dict[str, dict[str, list[float]]] = {}
    for set_name, dataset in sets.items():
        log_probs = []
        for model in models:  # each model gets its own input pipeline
            data, labels, _ = model_inputs(model, dataset)
            logits = predict_logits(model, data, batch_size=256, tta="flip")
            log_probs.append(torch.log_softmax(torch.from_numpy(logits), dim=-1).numpy())
        for name, lp in [*zip(args.checkpoints, log_probs, strict=True),
                         ("ensemble", np.mean(log_probs, axis=0))]:
            rows.setdefault(name, {})[set_name] = _scores(lp[0], labels, names[0])
            rows[name][set_name + "_tta_flip"] = _scores(lp.mean(axis=0), labels, names[0])
    for name, row in rows.items():
        print(json.dumps({"model": name, **row}), flush=True)


if __name__ == "__main__":
    main()
