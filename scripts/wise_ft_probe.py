"""WiSE-FT probe (Wortsman et al., CVPR 2022): average a fine-tuned checkpoint's weights with
the weights its recipe started from (``model.pretrained``, rebuilt with the recipe's options),
``alpha * fine_tuned + (1 - alpha) * start``, and measure FER2013 PublicTest, PrivateTest and
expw_dev for each alpha (accuracy, mean class accuracy, in percent; fp32).

    python scripts/wise_ft_probe.py runs/ft1/best 0.3 0.5 0.7
"""

from __future__ import annotations

import argparse
import json

import torch

from ferkit.data import open_dataset
from ferkit.data.fer2013 import open_fer2013
from ferkit.evaluation import evaluate
from ferkit.training.module import _pretrained_with_options
from ferkit.weights import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="RUN/best of a recipe with model.pretrained")
    parser.add_argument("alphas", nargs="+", type=float)
    parser.add_argument("--fer2013", default="../shared/data/fer2013/fer2013.csv.gz")
    parser.add_argument("--expw", default="../shared/data/expw_dev")
    args = parser.parse_args()
    torch.set_num_threads(2)
    tuned = load_checkpoint(args.checkpoint).eval()
    cfg = tuned.ferkit_config
    start_name = cfg.provenance.get("recipe", {}).get("model", {}).get("pretrained")
    if not start_name:
        raise SystemExit(f"{args.checkpoint}: its recipe has no model.pretrained to go back to")
    start = _pretrained_with_options(cfg.architecture, start_name, dict(cfg.model_kwargs))
    sets = {"publictest": open_fer2013(args.fer2013, split="val"),
            "privatetest": open_fer2013(args.fer2013, split="test"),
            "expw_dev": open_dataset(args.expw, split="test")}
    a, b = tuned.state_dict(), start.state_dict()
    for alpha in args.alphas:
        tuned.load_state_dict({k: alpha * v + (1 - alpha) * b[k] if v.is_floating_point()
                               else v for k, v in a.items()})
        row: dict[str, object] = {"alpha": alpha}
        for name, dataset in sets.items():
            report = evaluate(tuned, dataset, batch_size=256)
            row[name] = [round(100 * report.accuracy, 2),
                         round(100 * report.mean_class_accuracy, 2)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
