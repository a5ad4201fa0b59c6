"""CPU training speed options, side by side: fp32 NCHW, channels_last, bf16 autocast and
torch.compile for a model's training step, and DataLoader settings for its input pipeline.

Each step variant trains its own copy of the same freshly seeded model on the same
in-memory batch (SGD, cross-entropy, backward, step); after ``--warmup`` steps (compile
happens there) ``--steps`` are timed; the variants alternate for ``--reps`` repetitions and
the median images/s is reported, so changes in machine load hit all of them alike.  The
loader part times FakeFER images through the recipe's ``train_transform`` with 0, 1 and 2
workers (persistent workers; pin_memory only matters for a GPU and is left off).  The load
average is printed before and after: on a shared machine it is part of the result.

    python benchmarks/train_speed_options.py --model dsan --size 48 --channels 1 --batch-size 64
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import ferkit
from ferkit.data import FakeFER
from ferkit.data.transforms import AugmentConfig, train_transform


def _cpu_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0]
    except (OSError, IndexError):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return " ".join(f for f in wanted if f" {f}" in flags) or "none of " + "/".join(wanted)


def _step_fn(model, variant: str):
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if variant == "compile" else model
    if variant == "channels_last":
        model.to(memory_format=torch.channels_last)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if variant == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            loss = F.cross_entropy(forward(x).logits.float(), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


def bench_steps(args) -> dict[str, float]:
    torch.manual_seed(0)
    base = ferkit.create_model(args.model, input_size=(args.channels, args.size, args.size),
                               mean=(0.5,) * args.channels, std=(0.5,) * args.channels,
                               **dict(kv.split("=") for kv in args.kwarg))
    x = torch.randn(args.batch_size, args.channels, args.size, args.size)
    y = torch.randint(0, 7, (args.batch_size,))
    steps = {v: _step_fn(copy.deepcopy(base), v) for v in args.variants}
    for variant, step in steps.items():
        start = time.perf_counter()
        for _ in range(args.warmup):
            step(x, y)
        print(f"  warm-up {variant}: {time.perf_counter() - start:.1f} s", flush=True)
    rates: dict[str, list[float]] = {v: [] for v in steps}
    for _ in range(args.reps):
        for variant, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(x, y)
            rates[variant].append(args.steps * args.batch_size / (time.perf_counter() - start))
    return {v: statistics.median(r) for v, r in rates.items()}


def bench_loader(args) -> dict[str, float]:
    cfg = ferkit.create_model(args.model, input_size=(args.channels, args.size, args.size),
                              mean=(0.5,) * args.channels, std=(0.5,) * args.channels
                              ).ferkit_config.data
    dataset = FakeFER(args.loader_images, image_size=args.size, seed=0,
                      transform=train_transform(cfg, AugmentConfig.preset(args.augment)))
    out = {}
    for workers in (0, 1, 2):
        loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                            num_workers=workers, persistent_workers=workers > 0)
        for _ in loader:  # first epoch starts the workers
            pass
        start = time.perf_counter()
        for _ in loader:
            pass
        out[f"{workers} workers"] = len(dataset) / (time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dsan")
    parser.add_argument("--kwarg", nargs="*", default=[], help="model kwargs key=value (str)")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+",
                        default=["fp32", "channels_last", "bf16", "compile"])
    parser.add_argument("--augment", default="fer2013", help="augment preset for the loader")
    parser.add_argument("--loader-images", type=int, default=512)
    parser.add_argument("--skip-loader", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible, {args.threads} threads, "
          f"CPU flags: {_cpu_flags()}, load average before: {os.getloadavg()[0]:.1f}")
    steps = bench_steps(args)
    base = steps.get("fp32")
    print(f"\n{args.model} {args.channels}x{args.size}x{args.size}, batch {args.batch_size}: "
          "training images/s (median)")
    for variant, rate in steps.items():
        ratio = f"  {rate / base:.2f}x fp32" if base else ""
        print(f"  {variant:<14} {rate:8.1f}{ratio}")
    if not args.skip_loader:
        print(f"\nloader, preset {args.augment!r}, {args.loader_images} images: images/s")
        for name, rate in bench_loader(args).items():
            print(f"  {name:<14} {rate:8.1f}")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
