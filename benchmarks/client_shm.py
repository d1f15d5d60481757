"""System shared memory vs plain requests from ``EscClient`` to a Triton server on this host.

Starts a real ``tritonserver`` on free loopback ports over a model repository (default
``artifacts/model_repository``), then for each protocol (gRPC, HTTP), transport (plain
request bodies, system shared memory) and batch size sends sequential requests of 5 s clips
(the model's clip length; seeded noise: the content does not change the cost) and asks for both
ensemble outputs (PROBABILITIES and LOGMEL). Reports the median and p90 latency per request
and the throughput in clips/s (clips sent / time spent in requests), as a table and as JSON (``--out``).
Configurations take turns (``--rounds``), so that a change of machine load hits all of them alike.
Bounded: ``--requests`` per configuration, or ``--max-seconds`` in all, whichever comes first.
Does not cover: concurrent clients (one shared-memory client serialises its requests), CUDA
shared memory, remote servers.

    python -m benchmarks.client_shm --requests 100 --batch 1 8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from client.triton import EscClient
from model_repository.server import Ports, TritonServer

log = logging.getLogger("benchmarks.client_shm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(client: EscClient, batch: np.ndarray, requests: int) -> list[float]:
    """Latencies (s) of ``requests`` sequential ``client.infer(batch)`` calls."""
    latencies = []
    for _ in range(requests):
        t0 = time.perf_counter()
        client.infer(batch)
        latencies.append(time.perf_counter() - t0)
    return latencies


def summary(latencies: list[float], batch: int) -> dict:
    """Median/p90 latency (ms) and throughput (clips/s over the summed request time)."""
    ms = np.array(latencies) * 1e3
    return {"requests": len(ms), "median_ms": round(float(np.median(ms)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "clips_per_s": round(len(ms) * batch / (ms.sum() / 1e3), 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-repository", type=Path, default=Path("artifacts/model_repository"))
    parser.add_argument("--requests", type=int, default=100, help="per configuration (default 100)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="configurations take turns, requests/rounds at a time (default 10)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="in all (default 300)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--out", type=Path, default=Path("build/benchmarks/client_shm.json"))
    args = parser.parse_args(argv)
    configs = [(p, t, b) for p in ("grpc", "http") for t in ("plain", "shm") for b in args.batch]
    latencies: dict[tuple, list[float]] = {c: [] for c in configs}
    log_file = Path(tempfile.mkdtemp(prefix="client_shm-")) / "tritonserver.log"
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            TritonServer(args.model_repository, Ports(free_port(), free_port(), free_port()), log_file=log_file))
        clients = {
            (p, t): stack.enter_context(EscClient(server.grpc_url if p == "grpc" else server.http_url, p,
                                                  shared_memory=t == "shm"))
            for p in ("grpc", "http") for t in ("plain", "shm")
        }
        client = clients["grpc", "plain"]
        clip = round(client.clip_seconds * client.sample_rate)
        noise = np.random.default_rng(0).normal(0, 0.1, (max(args.batch), clip)).astype(np.float32)
        for p, t, b in configs:
            timed(clients[p, t], noise[:b], args.warmup)
        start = time.perf_counter()
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):  # interleaved, so that a change of load hits every configuration
            for p, t, b in configs:
                latencies[p, t, b] += timed(clients[p, t], noise[:b], per_round)
            if time.perf_counter() - start > args.max_seconds:
                log.warning("stopped after %.0f s (--max-seconds)", time.perf_counter() - start)
                break
    rows = [{"protocol": p, "transport": t, "batch": b, **summary(latencies[p, t, b], b)} for p, t, b in configs]
    plain = {(r["protocol"], r["batch"]): r for r in rows if r["transport"] == "plain"}
    for r in rows:
        base = plain[(r["protocol"], r["batch"])]
        r["median_vs_plain"] = round(r["median_ms"] / base["median_ms"], 3)
    report = {"host": platform.node(), "cpus": len(os.sched_getaffinity(0)),
              "load_average_1min_at_end": round(os.getloadavg()[0], 2),
              "clip_seconds": client.clip_seconds, "sample_rate": client.sample_rate,
              "outputs": ["PROBABILITIES", "LOGMEL"], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'protocol':8s} {'transport':9s} {'batch':>5s} {'median ms':>10s} {'p90 ms':>8s} "
          f"{'clips/s':>8s} {'vs plain':>8s}")
    for r in rows:
        print(f"{r['protocol']:8s} {r['transport']:9s} {r['batch']:5d} {r['median_ms']:10.2f} "
              f"{r['p90_ms']:8.2f} {r['clips_per_s']:8.1f} {r['median_vs_plain']:8.3f}")
    print(f"written to {args.out}")
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main()
