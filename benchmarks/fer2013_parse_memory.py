"""FER2013 CSV parsing: time and peak memory, for the real file and for one over-long line.

The whole-file parser this replaced built a rows x longest-gap int64 matrix per 2,048-row
chunk, so one 1 MB field made it allocate ~12.7 GiB; the streaming parser's working memory
is a few times its 8 MB block.  Peak memory is measured with tracemalloc (numpy reports its
allocations to it), so it counts what the parser allocates, not the interpreter.

    PYTHONPATH=src python benchmarks/fer2013_parse_memory.py \\
        --csv ../shared/data/fer2013/fer2013.csv.gz --rows 2048
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from ferkit.data.fer2013 import clear_table_cache, load_fer2013_table


def measure(path: Path) -> tuple[float, float, int]:
    clear_table_cache()
    tracemalloc.start()
    start = time.perf_counter()
    table = load_fer2013_table(path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 2**20, len(table.lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="a real fer2013.csv[.gz] (optional)")
    parser.add_argument("--rows", type=int, default=2048, help="rows of the synthetic file")
    args = parser.parse_args()
    pixels = " ".join(str(i % 256) for i in range(2304))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fer2013.csv"
        rows = [f"{i % 7},{pixels},Training" for i in range(args.rows)]
        rows[args.rows // 2] = f"3,{pixels},{'x' * 1_000_000}"  # one 1 MB Usage field
        path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
        size = path.stat().st_size / 2**20
        seconds, peak, n = measure(path)
        print(f"synthetic, {n} rows ({size:.1f} MB) with one 1 MB line: "
              f"{seconds:.2f} s, peak {peak:.0f} MiB traced")
    if args.csv:
        seconds, peak, n = measure(args.csv)
        print(f"{args.csv.name}, {n} rows: {seconds:.2f} s, peak {peak:.0f} MiB traced")


if __name__ == "__main__":
    main()
