"""How long ferkit takes to start: ``import ferkit``, ``ferkit --help``, ``ferkit --version``.

Each command runs in a fresh interpreter, the commands interleaved round by round (so a busy
moment on a shared machine hits all of them alike), ``--repeats`` rounds after one warm-up
round; the table gives the median wall time and its ratio to ``python -c pass`` measured in the
same rounds.  ``import torch`` is listed for scale: it is what the lazy imports avoid.

Usage:
    PYTHONPATH=src python benchmarks/startup.py [--repeats 5] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

PY = sys.executable
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [PY, "-c", "pass"],
    "import ferkit": [PY, "-c", "import ferkit"],
    "ferkit --version": [PY, "-m", "ferkit", "--version"],
    "ferkit --help": [PY, "-m", "ferkit", "--help"],
    "ferkit predict --help": [PY, "-m", "ferkit", "predict", "--help"],
    "import torch (for scale)": [PY, "-c", "import torch"],
}


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def measure(repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_ in range(repeats + 1):
        for name, argv in COMMANDS.items():
            elapsed = run_once(argv)
            if round_:  # round 0 warms the file cache
                times[name].append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    times = measure(args.repeats)
    base = statistics.median(times["python -c pass"])
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs (load "
          f"{os.getloadavg()[0]:.1f}), median of {args.repeats}")
    if args.markdown:
        print("| command | median (s) | min (s) | x `python -c pass` |")
        print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        if args.markdown:
            print(f"| `{name}` | {median:.3f} | {min(values):.3f} | {median / base:.1f} |")
        else:
            print(f"{name:<26} median {median:6.3f} s  min {min(values):6.3f} s  "
                  f"x{median / base:5.1f}")


if __name__ == "__main__":
    main()
