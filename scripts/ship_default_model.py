"""Measure a trained FER2013 checkpoint and write it into the package as shipped weights.

    python scripts/ship_default_model.py runs/fer2013_dsan/best \
        --data ../shared/data/fer2013/fer2013.csv.gz --train-minutes 95 \
        --expw ../shared/data/expw_dev [--ferplus ../shared/data/ferplus/fer2013new.csv]

What it does, in order:
1. evaluates the checkpoint (fp32) on PublicTest (model selection), PrivateTest (the
   reported number), PrivateTest without the images that also appear in Training, and
   PrivateTest with flip TTA (for reference; ``ferkit predict`` does not flip);
2. stores the weights as fp16 (the 25 MB package budget), reloads them and evaluates
   PrivateTest again: it refuses to ship when fp16 costs 0.2 points or more;
3. fits the softmax temperature on PublicTest (:mod:`ferkit.calibration`, what ``ferkit
   calibrate`` does) and measures expected calibration error (15 bins) on PrivateTest and,
   with ``--expw``, accuracy and ECE on the expw_dev photos (validation only: nothing is
   fitted on them), each with and without the temperature; with ``--ferplus``, accuracy on
   PrivateTest with FER+'s majority labels;
4. writes ``src/ferkit/weights/<name>/`` (``<name>``: the run's recipe name unless given)
   with the temperature, the metrics and the model card's facts in ``config.json`` (no
   local paths) and ``weights.json`` (the published name ``<architecture>.<tag>``, the
   sha256 of the weights, licence, dataset, recipe, metrics; ``<tag>``: the recipe's data
   format unless given), and prints the numbers for docs/model-card.md and the one line
   that registers the weights in ``src/ferkit/weights/shipped.py``.

The test ``tests/test_default_model.py`` re-measures the shipped files against these
numbers, so re-running this script is the only way the card and the weights change.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import ferkit
from ferkit.calibration import fit_temperature
from ferkit.checkpoint import read_config
from ferkit.data import open_dataset
from ferkit.data.fer2013 import open_fer2013
from ferkit.evaluation import evaluate, model_inputs, predict_logits
from ferkit.weights import load_checkpoint, publish_weights, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
#: The card's facts that depend on the labels a recipe trained on (its data.format).
FERPLUS_FACTS = {
    "dataset": "FER2013's images (Goodfellow et al., ICML 2013, via Kaggle; 48x48 grayscale) "
               "with FER+'s labels (Barsoum et al., ICMI 2016: ten annotators per image) as "
               "soft targets, half and half with FER2013's own label; 7 classes. Training "
               "(28,389 images FER+ keeps) for training, PublicTest to pick the epoch, "
               "PrivateTest for the reported numbers only",
    "data_licence": "FER2013 was released for the ICML 2013 challenge for research; FER+'s "
                    "labels are MIT-licensed (Microsoft); these weights are derived from both "
                    "and are for research use, not commercial use",
    "limits": "trained on FER2013's low-resolution, mostly frontal, web-scraped faces (with "
              "FER+'s cleaner labels) and made to look like photos by augmentation only: on "
              "real colour photos (expw_dev) it is far less accurate than on FER2013 and its "
              "confidence is too high; weakest on fear and disgust; no demographic balance "
              "was measured or enforced; an expression is not an emotion: do not use for "
              "decisions about people",
}
CARD_FACTS = {
    "card": "docs/model-card.md",
    "dataset": "FER2013 (Goodfellow et al., ICML 2013 Challenges in Representation Learning, "
               "via Kaggle): 48x48 grayscale faces, 7 classes. Training (28,709) for training, "
               "PublicTest (3,589) to pick the epoch, PrivateTest (3,589) for the reported "
               "numbers only",
    "data_licence": "FER2013 was released for the ICML 2013 challenge for research; these "
                    "weights are derived from it and are for research use, not commercial use",
    "input_pipeline": "RetinaFace box -> square of the box's longer side (face margin 0.0, "
                      "FER2013's framing) -> grayscale 48x48 bilinear -> (x/255 - 0.5) / 0.5",
    "limits": "trained on FER2013 only: low-resolution, mostly frontal, web-scraped faces with "
              "noisy labels (human accuracy about 65%); weakest on fear and disgust (547 "
              "training images); posed expressions dominate; no demographic balance was "
              "measured or enforced; an expression is not an emotion: do not use for decisions "
              "about people",
}


def _recipe_facts(recipe_name: str, recipe: dict) -> dict[str, str]:
    ferplus = recipe.get("data", {}).get("format") == "ferplus"
    data = "fer2013new.csv" if ferplus else "fer2013.csv.gz"
    start = recipe.get("model", {}).get("pretrained")
    return {
        **(FERPLUS_FACTS if ferplus else {}),
        "recipe": f"{recipe_name} (src/ferkit/training/recipes/{recipe_name}.yaml)"
                  + (f", starting from the shipped weights {start!r}" if start else ""),
        "reproduce": f"ferkit train -r {recipe_name} -d {data} --out RUN; then "
                     "python scripts/ship_default_model.py RUN/best --data fer2013.csv.gz"
                     + (" --ferplus fer2013new.csv" if ferplus else ""),
    }


def _report(model, data: str, split: str, **options) -> dict:
    fmt = options.pop("format", None)
    if fmt in ("faceboxes", "ferplus"):
        dataset = open_dataset(data, format=fmt, split=split)
    else:
        dataset = open_fer2013(data, split=split,
                               drop_train_duplicates=options.pop("dedup", False))
    report = evaluate(model, dataset, batch_size=256, **options)
    cal = report.calibration
    return {"n": report.num_samples, "accuracy": report.accuracy,
            "mean_class_accuracy": report.mean_class_accuracy, "f1_macro": report.f1_macro,
            "per_class_recall": {k: v.recall for k, v in report.per_class.items()},
            "ece": cal["ece"], "ece_uncalibrated": cal.get("ece_uncalibrated", cal["ece"]),
            "nll": cal["nll"]}


def _fit_temperature(model, data: str) -> float:
    """The temperature fitted on PublicTest (the model-selection split, never PrivateTest)."""
    model_data, labels, _ = model_inputs(model, open_fer2013(data, split="val"))
    return fit_temperature(predict_logits(model, model_data, batch_size=256), labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="RUN/best of a FER2013 recipe's run")
    parser.add_argument("--data", required=True, help="fer2013.csv[.gz] or its npz cache")
    parser.add_argument("--name", help="folder under src/ferkit/weights/ (default: the run's "
                        "recipe name)")
    parser.add_argument("--tag", help="published name's tag, <architecture>.<tag> (default: "
                        "the recipe's data format, e.g. fer2013)")
    parser.add_argument("--out", help="write the weights folder here instead of into the "
                        "package (measure a candidate without shipping it)")
    parser.add_argument("--train-minutes", type=float, help="wall time of the training run")
    parser.add_argument("--hardware", default="2 CPU cores (AMD EPYC, AVX2), no GPU")
    parser.add_argument("--expw", help="expw_dev folder (labels.csv + images/): measured, "
                        "never fitted on")
    parser.add_argument("--ferplus", help="FER+'s fer2013new.csv: PrivateTest accuracy with "
                        "its majority labels")
    args = parser.parse_args()
    torch.set_num_threads(2)

    model = load_checkpoint(args.checkpoint)
    cfg = read_config(args.checkpoint)
    recipe = json.loads(json.dumps(cfg.provenance.get("recipe", {})))
    recipe_name = recipe.get("name")
    if not recipe_name or recipe_name == "custom":
        raise SystemExit(f"{args.checkpoint} was not trained from a named recipe: only a "
                         "shipped recipe reproduces shipped weights")
    fp32 = {
        "publictest": _report(model, args.data, "val"),
        "privatetest": _report(model, args.data, "test"),
        "privatetest_dedup": _report(model, args.data, "test", dedup=True),
        "privatetest_tta_flip": _report(model, args.data, "test", tta="flip"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, tmp, half=True)
        half_model = load_checkpoint(tmp)
    temperature = _fit_temperature(half_model, args.data)
    half_model.ferkit_config = half_model.ferkit_config.replace(temperature=temperature)
    fp16 = {
        "privatetest": _report(half_model, args.data, "test"),
        "privatetest_dedup": _report(half_model, args.data, "test", dedup=True),
        "publictest": _report(half_model, args.data, "val"),
    }
    if args.expw:
        fp16["expw_dev"] = _report(half_model, args.expw, "test", format="faceboxes")
        fp16["expw_dev_tta_flip"] = _report(half_model, args.expw, "test", format="faceboxes",
                                            tta="flip")
    if args.ferplus:
        fp16["ferplus_privatetest"] = _report(half_model, args.ferplus, "test",
                                              format="ferplus")
    loss = 100 * (fp32["privatetest"]["accuracy"] - fp16["privatetest"]["accuracy"])
    print(json.dumps({"fp32": fp32, "fp16": fp16, "fp16_loss_points": loss}, indent=2))
    if loss >= 0.2:
        raise SystemExit(f"fp16 costs {loss:.2f} points on PrivateTest (limit 0.2): not shipped")

    if recipe.get("data", {}).get("source"):
        recipe["data"]["source"] = Path(recipe["data"]["source"]).name  # no local paths
    metrics = {
        "fer2013_privatetest_accuracy": fp16["privatetest"]["accuracy"],
        "fer2013_privatetest_mean_class_accuracy": fp16["privatetest"]["mean_class_accuracy"],
        "fer2013_privatetest_f1_macro": fp16["privatetest"]["f1_macro"],
        "fer2013_privatetest_dedup_accuracy": fp16["privatetest_dedup"]["accuracy"],
        "fer2013_privatetest_dedup_samples": fp16["privatetest_dedup"]["n"],
        "fer2013_publictest_accuracy": fp16["publictest"]["accuracy"],
        "fer2013_privatetest_accuracy_fp32": fp32["privatetest"]["accuracy"],
        "fer2013_privatetest_accuracy_tta_flip_fp32": fp32["privatetest_tta_flip"]["accuracy"],
        "best_epoch": cfg.metrics.get("epoch"),
        "temperature_fitted_on": "fer2013_publictest",
        "fer2013_privatetest_ece": fp16["privatetest"]["ece"],
        "fer2013_privatetest_ece_uncalibrated": fp16["privatetest"]["ece_uncalibrated"],
        "fer2013_publictest_ece": fp16["publictest"]["ece"],
        "fer2013_publictest_ece_uncalibrated": fp16["publictest"]["ece_uncalibrated"],
    }
    if "expw_dev" in fp16:
        expw = fp16["expw_dev"]
        metrics.update({
            "expw_dev_accuracy": expw["accuracy"],
            "expw_dev_mean_class_accuracy": expw["mean_class_accuracy"],
            "expw_dev_min_class_recall": min(expw["per_class_recall"].values()),
            "expw_dev_ece": expw["ece"],
            "expw_dev_ece_uncalibrated": expw["ece_uncalibrated"],
            "expw_dev_per_class_recall": expw["per_class_recall"],
            "expw_dev_accuracy_tta_flip": fp16["expw_dev_tta_flip"]["accuracy"],
            "expw_dev_mean_class_accuracy_tta_flip":
                fp16["expw_dev_tta_flip"]["mean_class_accuracy"],
        })
    if "ferplus_privatetest" in fp16:
        metrics.update({
            "ferplus_privatetest_majority_accuracy": fp16["ferplus_privatetest"]["accuracy"],
            "ferplus_privatetest_majority_samples": fp16["ferplus_privatetest"]["n"],
        })
    training = {
        "epochs": recipe.get("trainer", {}).get("epochs"),
        "selected_epoch": cfg.metrics.get("epoch"),
        "hardware": args.hardware,
        "wall_minutes": args.train_minutes,
        "trained_with": cfg.provenance.get("trained_with"),
        "weights": "fp16 (cast to fp32 when loaded)",
    }
    provenance = {"model_card": {**CARD_FACTS, **_recipe_facts(recipe_name, recipe),
                                 "training": training}, "recipe": recipe}
    # The run's provenance holds local paths (dataset source, run dir): replace it whole.
    model.ferkit_config = model.ferkit_config.replace(metrics={}, provenance={},
                                                      temperature=temperature)
    target = (Path(args.out) if args.out
              else ROOT / "src" / "ferkit" / "weights" / (args.name or recipe_name))
    save_checkpoint(model, target, half=True, metrics=metrics, provenance=provenance)
    name = f"{model.ferkit_config.architecture}.{args.tag or recipe['data']['format']}"
    card = provenance["model_card"]  # the facts for the labels this recipe trained on
    publish_weights(target, name=name, licence=card["data_licence"], dataset=card["dataset"],
                    recipe=recipe_name, metrics=metrics, card=card["card"])
    size = (target / "model.safetensors").stat().st_size / 2**20
    print(f"wrote {target} ({size:.1f} MiB), ferkit {ferkit.__version__}")
    if not args.out:
        print(f"register it in src/ferkit/weights/shipped.py: "
              f"register_shipped({name!r}, {target.name!r})  (and DEFAULT_NAME = {name!r} to "
              "make it the default)")


if __name__ == "__main__":
    main()
