"""Why DSAN's global stream (GFE-AN) collapsed in a trained checkpoint: measurements.

    python scripts/dsan_gfe_analysis.py default \
        --data ../shared/data/fer2013/fer2013.csv.gz --split test --limit 1024

Prints, over the first ``--limit`` faces of the split (docs/models.md quotes the output):

- the sparsemax support (non-zero weights of 512), and how often each element is chosen:
  input-dependent attention picks different elements for different faces;
- the scale of the scores entering sparsemax (spread, gap between the two largest);
- ``|g'| / |g|``: how much recalibration amplifies the pooled feature;
- the logit scale of each stream and the accuracy of each stream alone, of the plain
  (un-recalibrated) feature through the same classifier, and of the global stream when
  the sparsemax input is divided by a temperature at test time (no retraining).
"""

from __future__ import annotations

import argparse
import json

import torch

import ferkit
from ferkit.data import open_dataset
from ferkit.evaluation import model_inputs
from ferkit.models.dsan import sparsemax


@torch.no_grad()
def analyse(model, batches) -> dict:
    gfe = model.gfe
    rows: dict[str, list] = {k: [] for k in ("scores", "weights", "plain", "recal", "local",
                                             "labels")}
    for x, y in batches:
        feature_map = model.forward_features(x)
        s = model._streams(feature_map)
        rows["scores"].append(gfe.score(s["plain"]))
        rows["weights"].append(s["weights"])
        rows["plain"].append(s["plain"])
        rows["recal"].append(s["recalibrated"])
        rows["local"].append(s["local"])
        rows["labels"].append(torch.as_tensor(y))
    t = {k: torch.cat(v) for k, v in rows.items()}
    y = t["labels"]
    support = (t["weights"] > 0).sum(1).float()
    chosen = (t["weights"] > 0).float().mean(0)
    top2 = t["scores"].topk(2, dim=1).values
    logits = {"global": model.gfe_fc(t["recal"]), "local": model.mff_fc(t["local"]),
              "global_plain_feature": model.gfe_fc(t["plain"])}
    logits["fused"] = (logits["global"] + logits["local"]) / 2

    def acc(z: torch.Tensor) -> float:
        return float((z.argmax(1) == y).float().mean())

    out = {
        "faces": len(y),
        "support_median": float(support.median()), "support_mean": float(support.mean()),
        "support_max": int(support.max()),
        "elements_ever_chosen": int((chosen > 0).sum()),
        "top3_elements_share_of_faces": [round(float(v), 3) for v in chosen.topk(3).values],
        "score_std_per_face_median": float(t["scores"].std(1).median()),
        "score_top1_minus_top2_median": float((top2[:, 0] - top2[:, 1]).median()),
        "recal_norm_over_plain_norm_median": float(
            (t["recal"].norm(dim=1) / t["plain"].norm(dim=1)).median()),
        "logit_std": {k: float(v.std()) for k, v in logits.items()},
        "accuracy": {k: acc(v) for k, v in logits.items()},
        "global_accuracy_with_test_time_temperature": {},
    }
    for tau in (1, 4, 16, 64, 256):
        w = sparsemax(t["scores"] / tau, dim=-1)
        recal = t["plain"] * (w * w.shape[1])
        z = model.gfe_fc(recal)
        out["global_accuracy_with_test_time_temperature"][tau] = {
            "support_median": float((w > 0).sum(1).float().median()),
            "global": acc(z), "fused": acc((z + logits["local"]) / 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a DSAN checkpoint or 'default'")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=1024)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ferkit.load_checkpoint(args.checkpoint).eval()
    data, labels, _ = model_inputs(model, open_dataset(args.data, split=args.split))
    n = min(args.limit, len(labels))
    batches = []
    for start in range(0, n, 256):
        idx = range(start, min(start + 256, n))
        batches.append((torch.stack([data[i][0] for i in idx]), labels[list(idx)]))
    print(json.dumps(analyse(model, batches), indent=2))


if __name__ == "__main__":
    main()
