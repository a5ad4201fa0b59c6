"""How fast ferkit's data side is: FER2013 parsing, the npz cache, and per-sample transforms.

Run from the repository root (needs ../shared/data/fer2013/fer2013.csv.gz or --csv):

    python benchmarks/data_pipeline.py [--csv PATH] [--samples 1000]

Prints one table row per measurement; the training engine's throughput is benchmarked
separately (the data pipeline must not be its bottleneck: compare img/s per worker here
with the model's training img/s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ferkit.config import GRAY48_DATA, IMAGENET_DATA
from ferkit.data import AugmentConfig, open_dataset, train_transform
from ferkit.data.fer2013 import clear_table_cache, fer2013_to_npz, load_fer2013_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared/data/fer2013/fer2013.csv.gz"
    parser.add_argument("--csv", type=Path, default=default)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one DataLoader worker's view

    rows: list[tuple[str, str]] = []
    start = time.perf_counter()
    table = load_fer2013_table(args.csv)
    rows.append(("parse FER2013 CSV (35,887 rows)", f"{time.perf_counter() - start:.2f} s"))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cache = fer2013_to_npz(args.csv, Path(tmp) / "fer2013.npz")
        rows.append(("write npz cache", f"{time.perf_counter() - start:.2f} s "
                                        f"({cache.stat().st_size / 1e6:.0f} MB)"))
        clear_table_cache()
        start = time.perf_counter()
        dataset = open_dataset(cache, split="train")
        rows.append(("open train split from npz", f"{time.perf_counter() - start:.2f} s"))
    del table
    setups = [
        ("1x48x48, preset fer2013", GRAY48_DATA, "fer2013"),
        ("3x112x112, preset dan", IMAGENET_DATA.replace(input_size=(3, 112, 112)), "dan"),
        ("3x224x224, preset dacl", IMAGENET_DATA, "dacl"),
    ]
    for name, data_cfg, preset in setups:
        dataset.transform = train_transform(data_cfg, AugmentConfig.preset(preset))
        start = time.perf_counter()
        for index in range(args.samples):
            dataset[index]
        rate = args.samples / (time.perf_counter() - start)
        rows.append((f"train transform {name}", f"{rate:.0f} img/s per worker"))
    width = max(len(r[0]) for r in rows)
    print(f"| {'measurement':<{width}} | result |\n|{'-' * (width + 2)}|--------|")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")


if __name__ == "__main__":
    main()
