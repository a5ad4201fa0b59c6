"""Training throughput: ferkit's engine (FERModule + Lightning Trainer) vs a plain PyTorch loop.

For each model, both loops train the same freshly seeded model on the same in-memory batches
(SGD, cross-entropy) for ``--warmup`` + ``--steps`` steps; only the last ``--steps`` are
timed.  The two alternate for ``--reps`` repetitions and the median is reported, so drift in
machine load hits both alike.  Peak memory is the peak resident-set growth during the timed
run on CPU (sampled every 5 ms, after ``malloc_trim``) and ``torch.cuda.max_memory_allocated``
on a GPU.  A third column times the data pipeline alone (FakeFER images decoded and
augmented by the model's ``train_transform``, through a DataLoader): it must outrun training.

    python benchmarks/train_throughput.py --threads 2 --batch-size 16 --size 64
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import ferkit
from ferkit.data import FakeFER
from ferkit.data.transforms import AugmentConfig, train_transform
from ferkit.training.module import FERModule

MODELS = ("baseline", "deep_emotion", "dan", "dacl", "dsan", "dan_convnext")


class PeakRSS:
    """Peak resident memory growth (MiB) while the block runs (CPU)."""

    def __enter__(self):
        # Hand freed heap back to the OS first, so growth is this run's, not reuse of an
        # earlier run's free blocks.
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.mib = (self.peak - self.base) / 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_model(name: str, size: int, seed: int, channels: int = 3):
    torch.manual_seed(seed)
    kwargs = {"backbone": "resnet18"} if name == "baseline" else {}
    input_size = (1, 48, 48) if name == "deep_emotion" else (channels, size, size)
    return ferkit.create_model(name, input_size=input_size, **kwargs)


def batches(model, n: int, batch_size: int, device) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n * batch_size, *model.ferkit_config.data.input_size, generator=g)
    y = torch.randint(0, 7, (n * batch_size,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


def plain_loop(model, loader, warmup: int, device, channels_last: bool) -> tuple[float, float]:
    model.to(device).train()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = None
    with PeakRSS() as mem:
        for i, (x, y) in enumerate(loader):
            if i == warmup:
                _sync(device)
                start = time.perf_counter()
            x, y = x.to(device).contiguous(memory_format=layout), y.to(device)
            loss = F.cross_entropy(model(x).logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        elapsed = time.perf_counter() - start
    return elapsed, mem.mib


class _Timer(L.Callback):
    def __init__(self, warmup: int, device) -> None:
        self.warmup, self.device = warmup, device

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        # Stop where the plain loop stops: after the last optimizer step, so Lightning's
        # once-per-fit epoch-end and teardown work stays outside the per-step figure.
        if batch_idx >= self.warmup:
            _sync(self.device)
            self.elapsed = time.perf_counter() - self.start


def ferkit_engine(model, loader, warmup: int, device, channels_last: bool
                  ) -> tuple[float, float]:
    recipe = {"model": {"name": model.ferkit_config.architecture},
              "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
              "trainer": {"epochs": 1, "channels_last": channels_last}}
    module = FERModule(recipe, model=model)
    timer = _Timer(warmup, device)
    trainer = L.Trainer(max_epochs=1, accelerator="gpu" if device.type == "cuda" else "cpu",
                        devices=1, precision="32-true", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[timer], log_every_n_steps=50)
    with PeakRSS() as mem:
        trainer.fit(module, train_dataloaders=loader)
    return timer.elapsed, mem.mib


def loader_alone(model, n_images: int, batch_size: int, workers: int) -> float:
    """Images/s of FakeFER -> train_transform (flip, affine, erasing) -> DataLoader."""
    cfg = model.ferkit_config.data
    aug = AugmentConfig.from_dict({"hflip": 0.5, "rotation": 10, "translate": 0.1,
                                   "erasing_p": 0.25})
    data = FakeFER(n_images, image_size=cfg.input_size[1], channels=cfg.in_chans,
                   transform=train_transform(cfg, aug))
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers)
    start = time.perf_counter()
    for _ in loader:
        pass
    return n_images / (time.perf_counter() - start)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--size", type=int, default=64, help="input side (deep_emotion: 48)")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3),
                        help="input channels (deep_emotion: 1); 1 with --size 48 is the "
                             "fer2013_resnet18 recipe's shape")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repetition")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (loader)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--nchw", action="store_true",
                        help="both loops in NCHW layout (default: channels_last, as recipes "
                             "train: trainer.channels_last)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    print(f"device {device} ({torch.get_num_threads()} threads), batch {args.batch_size}, "
          f"{'NCHW' if args.nchw else 'channels_last'}, "
          f"{args.warmup}+{args.steps} steps x {args.reps} reps (median)")
    header = (f"{'model':<13} {'input':<9} {'plain img/s':>11} {'ferkit img/s':>12} "
              f"{'ferkit/plain':>12} {'extra ms/step':>13} {'plain MiB':>9} {'ferkit MiB':>10} "
              f"{'loader img/s':>12}")
    print(header)
    print("-" * len(header))
    n = args.warmup + args.steps
    for name in args.models:
        plain_t, eng_t, plain_m, eng_m = [], [], [], []
        for kind in (plain_loop, ferkit_engine):  # untimed: first-touch allocations, caches
            warm = make_model(name, args.size, 0, args.channels)
            kind(warm, batches(warm, 2, args.batch_size, device), 1, device, not args.nchw)
        for rep in range(args.reps):
            for kind in (("plain", "ferkit") if rep % 2 == 0 else ("ferkit", "plain")):
                model = make_model(name, args.size, rep, args.channels)
                loader = batches(model, n, args.batch_size, device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                run = plain_loop if kind == "plain" else ferkit_engine
                elapsed, mib = run(model, loader, args.warmup, device, not args.nchw)
                if device.type == "cuda":
                    mib = torch.cuda.max_memory_allocated() / 2**20
                (plain_t if kind == "plain" else eng_t).append(elapsed)
                (plain_m if kind == "plain" else eng_m).append(mib)
                del model, loader
        images = args.steps * args.batch_size
        plain_ips = images / statistics.median(plain_t)
        eng_ips = images / statistics.median(eng_t)
        # The engine's cost per step beyond the plain loop's: fixed (Lightning's hooks and
        # logging), so it matters only where a step itself is short.
        extra_ms = 1000 * (statistics.median(eng_t) - statistics.median(plain_t)) / args.steps
        model = make_model(name, args.size, 0, args.channels)
        loader_ips = loader_alone(model, 8 * args.batch_size,
                                  args.batch_size, args.workers)
        size = "x".join(map(str, model.ferkit_config.data.input_size))
        print(f"{name:<13} {size:<9} {plain_ips:>11.1f} {eng_ips:>12.1f} "
              f"{eng_ips / plain_ips:>12.3f} {extra_ms:>13.1f} {max(plain_m):>9.0f} "
              f"{max(eng_m):>10.0f} "
              f"{loader_ips:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
