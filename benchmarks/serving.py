"""Serving benchmark of the exported model; writes ``docs/benchmarks.json`` and ``docs/benchmarks.md``.

Measures, on this machine, with real clips from ``data/prepared`` and the model of ``artifacts/``
(``dvc repro export``) and ``models/model.pt``:

- Triton (the pip-installed ``tritonserver``, embedded repository built with params.yaml's
  ``serving`` block) driven by Triton's own ``perf_analyzer`` over gRPC and HTTP at each
  concurrency: throughput, p50/p99 latency, and the batch each model execution formed
  (from the metrics endpoint: inferences per execution);
- the older architecture: FastAPI + uvicorn + eager PyTorch per request
  (``benchmarks/fastapi_server.py``), driven by this module's own load generator (threads with
  keep-alive connections, bounded in time and count, loopback only) at the same concurrencies;
  at 8 also a second FastAPI process with glibc malloc set like the Triton stubs
  (``serving.keep_freed_memory_mb``), so that the ratio is also known without that difference;
- the same Triton with the classifier's other precision (FP32 or the INT8 quantisation of the
  export stage, ``serving.classifier_precision``), over gRPC, side by side; the INT8 model's
  agreement with FP32 on held-out clips comes from ``metrics/export.json``;
- in-process onnxruntime (logmel.onnx + classifier.onnx, all cores) at each batch size: the
  ceiling that serving overhead is measured against, and the same for the served FFT log-mel
  (with either classifier precision); this process sets glibc malloc like the stubs first;
- the log-mel engines one by one (onnxruntime, FFT with scipy or numpy, eager PyTorch);
- cold start to ready (median of several starts), model sizes on disk, server memory (RSS and
  PSS of tritonserver and its Python stubs) after load and under load;
- a sweep of serving settings (instances, threads, spinning, queue delay, preferred batch sizes,
  log-mel engine, the stubs' allocator) at a light and a heavy load, the evidence for params.yaml's ``serving`` defaults.

Before each phase it waits (up to ``Settings.quiet_wait_s``) for other processes to leave the CPU,
and records how busy they kept it: numbers taken next to other work are not comparable.

``perf_analyzer`` comes from the ``tritonclient==2.51.0`` wheel (later wheels need glibc 2.38),
installed with ``--no-deps`` into its own environment ``build/venv-perf`` with
``nvidia-cuda-runtime-cu12`` for ``libcudart.so.12``; it also needs ``libb64-0d`` (apt).
Not covered: GPUs, the native repository (no onnxruntime backend in the pip-installed server),
other machines (numbers are this machine's only).

    python -m benchmarks.serving                 # everything, about 10 minutes on 2 quiet cores
    python -m benchmarks.serving --tune-only     # the sweep again, into the existing JSON
    python -m benchmarks.serving --render-only   # rewrite docs/benchmarks.md from the JSON
"""

from __future__ import annotations

import argparse
import base64
import csv
import http.client
import json
import logging
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import psutil
import torch

from model_repository.build import (
    CLASSIFIER, ENSEMBLE, LOGMEL, LOGMEL_T, PROBABILITIES, WAVEFORM, ExportedModel, ServingConfig,
    build_repository,
)
from model_repository.python_models.onnx_model import FFTLogMel, keep_freed_memory, logmel_fft, malloc_thresholds
from model_repository.server import Ports, TritonServer
from pipelines import paths
from pipelines.export import logmel_tables, parity_waveforms
from pipelines.params import from_dict, load_params
from pipelines.train import cpu_model
from training.checkpoint import TrainedModel, load_checkpoint

log = logging.getLogger(__name__)

WORK = Path("build/bench")
PERF_ENV = Path("build/venv-perf")
PERF_WHEELS = ("tritonclient==2.51.0", "nvidia-cuda-runtime-cu12==12.9.79")
JSON_OUT, MD_OUT = Path("docs/benchmarks.json"), Path("docs/benchmarks.md")
CONCURRENCIES = (1, 2, 4, 8, 16)
BATCH_SIZES = (1, 2, 4, 8, 16)
TARGETS = {  # issue 4
    "triton_over_fastapi_at_8": 3.0,  # throughput ratio, at least
    "triton_over_onnxruntime_same_batch": 0.70,  # throughput ratio at concurrency == batch size, at least
    "ready_seconds": 3.0,  # median cold start, at most
    "classifier_onnx_mb": 5.0,  # at most (1 MB = 10^6 bytes)
}


@dataclass(frozen=True)
class Settings:
    """How long and how often each measurement runs."""

    concurrencies: tuple[int, ...] = CONCURRENCIES
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    clips: int = 16  # real clips the load cycles through
    window_ms: int = 3000  # perf_analyzer measurement window
    max_trials: int = 6  # perf_analyzer windows before it gives up on stability
    stability_pct: int = 25
    fastapi_seconds: float = 6.0  # timed phase per concurrency
    max_requests: int = 2000  # per load-generator run
    cold_starts: int = 5
    ort_seconds: float = 2.0  # per batch size
    repeats: int = 3  # at concurrency 8, the headline comparison: medians over repeats
    quiet_wait_s: float = 60.0  # before each phase, wait up to this long for other processes to go quiet
    tune: bool = True
    tune_concurrencies: tuple[int, ...] = (2, 8)  # light and heavy load


QUICK = Settings(concurrencies=(1, 8), batch_sizes=(1, 8), clips=4, window_ms=1500, max_trials=3,
                 stability_pct=50, fastapi_seconds=2.0, max_requests=200, cold_starts=1,
                 ort_seconds=0.5, repeats=1, quiet_wait_s=0.0, tune=False)


# --- setup -------------------------------------------------------------------------------------

def perf_analyzer(env_dir: Path = PERF_ENV) -> tuple[Path, dict[str, str]]:
    """The perf_analyzer binary and the environment it runs in; creates ``env_dir`` if needed."""
    binary = env_dir / "bin" / "perf_analyzer"
    if not binary.exists():
        log.info("installing perf_analyzer into %s (%s)", env_dir, ", ".join(PERF_WHEELS))
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env_dir)], check=True)
        subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                        *PERF_WHEELS], check=True)
    cudart = next(env_dir.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib"), None)
    env = dict(os.environ)
    if cudart is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(cudart), env.get("LD_LIBRARY_PATH")]))
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env).stdout
    missing = [line.split()[0] for line in ldd.splitlines() if "not found" in line]
    if missing:
        fix = "apt-get install libb64-0d" if any("b64" in m for m in missing) else f"rm -rf {env_dir} and rerun"
        raise RuntimeError(f"perf_analyzer cannot load {missing}; {fix}")
    return binary, env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports() -> Ports:
    return Ports(free_port(), free_port(), free_port())


def exported_model(clip: np.ndarray, trained: TrainedModel, clip_seconds: float,
                   onnx_dir: Path = paths.ARTIFACTS / "onnx") -> ExportedModel:
    """The export in ``onnx_dir`` as the builder takes it (the benchmark builds its own repositories)."""
    files = [onnx_dir / "logmel.onnx", onnx_dir / "classifier.onnx"]
    int8 = onnx_dir / "classifier_int8.onnx"
    if not all(f.is_file() for f in files):
        raise FileNotFoundError(f"{onnx_dir} lacks logmel.onnx/classifier.onnx; run `dvc repro export`")
    with torch.no_grad():
        mel = trained.front_end(torch.from_numpy(clip)[None])[0].numpy()
    cfg = trained.front_end.cfg
    return ExportedModel(files[0], files[1], tuple(trained.labels), cfg.sample_rate, clip_seconds,
                         cfg.n_mels, logmel_tables(trained.front_end), clip, mel,
                         classifier_int8_onnx=int8 if int8.is_file() else None)


# --- measurements ------------------------------------------------------------------------------

def process_memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MiB of a process and all its descendants (tritonserver + Python stubs)."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        rss, pss = rss + info.rss, pss + info.pss
    return {"processes": len(procs), "rss_mib": rss / 2**20, "pss_mib": pss / 2**20}


@contextmanager
def peak_memory(pid: int, every_s: float = 0.25) -> Iterator[dict[str, float]]:
    """Samples ``process_memory`` in the background; the yielded dict holds the peaks on exit."""
    peak: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            for key, value in process_memory(pid).items():
                peak[key] = max(peak.get(key, 0), value)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def scrape_counts(metrics_url: str, timeout: float = 10.0) -> dict[str, dict[str, float]]:
    """Counts from the metrics endpoint, which may start a moment after the server is ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=5) as r:
                return parse_counts(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def parse_counts(text: str) -> dict[str, dict[str, float]]:
    """Per model: inference and execution counts from Triton's Prometheus metrics text."""
    counts: dict[str, dict[str, float]] = {}
    for metric, model, value in re.findall(
            r'^(nv_inference_count|nv_inference_exec_count)\{model="([^"]+)"[^}]*\} (\S+)$', text, re.M):
        counts.setdefault(model, {})[metric] = float(value)
    return counts


def batch_per_execution(before: dict, after: dict) -> dict[str, float]:
    """Mean batch each model execution formed between two scrapes (requests are single clips)."""
    out = {}
    for model in (LOGMEL, CLASSIFIER):
        runs = after[model]["nv_inference_exec_count"] - before[model]["nv_inference_exec_count"]
        items = after[model]["nv_inference_count"] - before[model]["nv_inference_count"]
        out[model] = items / runs if runs else 0.0
    return out


def perf_input_data(waves: np.ndarray, path: Path) -> Path:
    """perf_analyzer ``--input-data`` JSON: one entry per real clip, raw float32 as base64."""
    data = [{WAVEFORM: {"b64": base64.b64encode(w.astype("<f4").tobytes()).decode(), "shape": [w.size]}}
            for w in waves]
    path.write_text(json.dumps({"data": data}))
    return path


def read_perf_csv(path: Path) -> dict[str, float]:
    """Throughput (inferences/s) and latencies (ms) from perf_analyzer's ``-f`` CSV."""
    with path.open() as f:
        (row,) = list(csv.DictReader(f))
    return {
        "throughput": float(row["Inferences/Second"]),
        "p50_ms": float(row["p50 latency"]) / 1000,
        "p90_ms": float(row["p90 latency"]) / 1000,
        "p99_ms": float(row["p99 latency"]) / 1000,
        "server_compute_ms": float(row["Server Compute Infer"]) / 1000,
    }


def perf_command(binary: Path, server: TritonServer, protocol: str, concurrency: int, data: Path,
                 samples: int, settings: Settings, csv_path: Path) -> list[str]:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    return [
        str(binary), "-m", ENSEMBLE, "-u", url, "-i", protocol,
        "--concurrency-range", f"{concurrency}:{concurrency}",
        "--shape", f"{WAVEFORM}:{samples}", "--input-data", str(data),
        "--measurement-interval", str(settings.window_ms), "--max-trials", str(settings.max_trials),
        "--stability-percentage", str(settings.stability_pct), "-f", str(csv_path),
    ]


def run_perf(binary: Path, env: dict, server: TritonServer, protocol: str, concurrency: int,
             data: Path, samples: int, settings: Settings) -> dict:
    csv_path = WORK / f"perf_{protocol}_{concurrency}.csv"
    csv_path.unlink(missing_ok=True)
    cmd = perf_command(binary, server, protocol, concurrency, data, samples, settings, csv_path)
    before = scrape_counts(f"127.0.0.1:{server.ports.metrics}")
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    after = scrape_counts(f"127.0.0.1:{server.ports.metrics}")
    record = {"protocol": protocol, "concurrency": concurrency, "command": shlex.join(cmd)}
    if result.returncode != 0 or not csv_path.exists():
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        log.warning("perf_analyzer %s c=%d failed: %s", protocol, concurrency, " | ".join(tail))
        return record | {"error": " | ".join(tail)}
    record |= read_perf_csv(csv_path) | {"batch_per_execution": batch_per_execution(before, after)}
    log.info("triton %s c=%d: %.1f/s p50 %.1f ms p99 %.1f ms batch %s", protocol, concurrency,
             record["throughput"], record["p50_ms"], record["p99_ms"], record["batch_per_execution"])
    return record


def load_http(host: str, port: int, bodies: list[bytes], concurrency: int, seconds: float,
              max_requests: int, path: str = "/predict") -> dict:
    """Closed-loop load: ``concurrency`` threads, each with a keep-alive connection, send the next
    body as soon as the previous answer arrives. One untimed request per thread first; then the
    timed phase stops after ``seconds`` or ``max_requests`` requests, whichever comes first."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    sent = 0
    warmed = threading.Barrier(concurrency + 1)
    go = threading.Event()
    deadline = [0.0]

    def worker(k: int) -> None:
        nonlocal errors, sent
        conn = http.client.HTTPConnection(host, port, timeout=120)
        headers = {"Content-Type": "application/octet-stream"}

        def call(body: bytes) -> bool:
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                return response.status == 200
            except (http.client.HTTPException, OSError):  # counted as an error; reconnect next time
                conn.close()
                return False

        call(bodies[k % len(bodies)])  # warm-up, untimed
        warmed.wait()
        go.wait()
        while True:
            with lock:
                if time.monotonic() >= deadline[0] or sent >= max_requests:
                    break
                body = bodies[sent % len(bodies)]  # the clips in turn, across all threads
                sent += 1
            t0 = time.perf_counter()
            ok = call(body)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                errors += not ok
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    warmed.wait()
    t_start = time.monotonic()
    deadline[0] = t_start + seconds  # set before releasing the workers
    go.set()
    for t in threads:
        t.join()
    wall = time.monotonic() - t_start
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency, "requests": len(latencies), "errors": errors,
        "seconds": wall, "throughput": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)), "avg_ms": float(ms.mean()),
    }


def time_per_call(fn: Callable[[], object], seconds: float, min_calls: int = 3) -> float:
    """Median seconds per call of ``fn`` after one warm-up call."""
    fn()
    times: list[float] = []
    end = time.monotonic() + seconds
    while len(times) < min_calls or time.monotonic() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ort_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def inprocess(model: ExportedModel, waves: np.ndarray, settings: Settings) -> dict:
    """Clips/s of logmel + classifier in this process, all cores, per batch size: onnxruntime
    for both (the ceiling), and the served FFT log-mel + onnxruntime classifier (FP32 and INT8)."""
    logmel, classifier = ort_session(model.logmel_onnx, 0), ort_session(model.classifier_onnx, 0)
    fft_logmel = FFTLogMel(model.logmel_tables)
    pipelines = {"onnxruntime": (logmel, classifier), "fft_logmel+onnxruntime": (fft_logmel, classifier)}
    if model.classifier_int8_onnx is not None:
        pipelines["fft_logmel+onnxruntime_int8"] = (fft_logmel, ort_session(model.classifier_int8_onnx, 0))

    def pipeline(front_end, head, batch: np.ndarray) -> Callable[[], object]:
        return lambda: head.run([PROBABILITIES], {LOGMEL_T: front_end.run([LOGMEL_T], {WAVEFORM: batch})[0]})

    out: dict[str, list[dict]] = {name: [] for name in pipelines}
    for b in settings.batch_sizes:
        batch = np.resize(waves, (b, waves.shape[1]))  # real clips, repeated when b > clips
        for name, (front_end, head) in pipelines.items():
            seconds = time_per_call(pipeline(front_end, head, batch), settings.ort_seconds)
            out[name].append({"batch": b, "throughput": b / seconds, "ms_per_batch": seconds * 1000})
            log.info("in-process %s batch %d: %.1f clips/s", name, b, b / seconds)
    return out


def logmel_engines(model: ExportedModel, trained: TrainedModel, waves: np.ndarray, settings: Settings) -> dict:
    """Milliseconds per clip of each log-mel engine, one thread, at batch 1 and 8."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engines = {
        "onnxruntime (logmel.onnx)": ort_session(model.logmel_onnx, 1).run,
        "FFT, scipy float32 (served)": FFTLogMel(model.logmel_tables).run,
        "FFT, numpy float64": lambda outputs, feeds: [logmel_fft(
            feeds[WAVEFORM], *(np.asarray(model.logmel_tables[k], np.float32) for k in ("window", "filterbank")),
            int(model.logmel_tables["hop_length"]), float(model.logmel_tables["log_floor"]), rfft=np.fft.rfft)],
        "PyTorch eager (training.features.LogMel)":
            lambda outputs, feeds: [trained.front_end(torch.from_numpy(feeds[WAVEFORM]))],
    }
    out = {}
    try:
        with torch.no_grad():
            for name, run in engines.items():
                out[name] = {}
                for b in (1, 8):
                    batch = np.resize(waves, (b, waves.shape[1]))
                    seconds = time_per_call(lambda: run([LOGMEL_T], {WAVEFORM: batch}), settings.ort_seconds)
                    out[name][f"batch_{b}_ms_per_clip"] = seconds * 1000 / b
    finally:
        torch.set_num_threads(torch_threads)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    out["torch_import_seconds"] = time.perf_counter() - t0
    return out


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def cold_starts(repo: Path, n: int) -> list[float]:
    """Seconds from launching tritonserver to ``/v2/health/ready``, ``n`` fresh starts."""
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        with TritonServer(repo, free_ports(), log_file=WORK / "cold_start.log"):
            times.append(time.monotonic() - t0)
    return times


def malloc_env(megabytes: int) -> dict[str, str]:
    """Environment that sets glibc malloc like ``keep_freed_memory(megabytes)`` in a stub."""
    if megabytes <= 0:
        return {}
    mmap_bytes, trim_bytes = malloc_thresholds(megabytes)
    return {"MALLOC_MMAP_THRESHOLD_": str(mmap_bytes), "MALLOC_TRIM_THRESHOLD_": str(trim_bytes)}


@contextmanager
def fastapi_server(checkpoint: Path, log_file: Path, extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.fastapi_server:create_app",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--timeout-keep-alive", "120",
           "--log-level", "warning"]
    extra_env = extra_env or {}
    env = dict(os.environ, ESC_CHECKPOINT=str(checkpoint), **extra_env)
    t0 = time.monotonic()
    with log_file.open("ab") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}; see {log_file}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() - t0 > 120:
                    raise TimeoutError(f"FastAPI not ready after 120 s; see {log_file}")
                time.sleep(0.1)
        yield {"port": port, "pid": process.pid, "ready_seconds": time.monotonic() - t0,
               "command": shlex.join([*(f"{k}={v}" for k, v in extra_env.items()),
                                           f"ESC_CHECKPOINT={checkpoint}", "python", *cmd[1:]])}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def background_cpu(wait_s: float, quiet_pct: float = 15.0) -> float:
    """CPU % in use by other processes (this benchmark is idle while it samples); waits up to
    ``wait_s`` for it to fall to ``quiet_pct``, then reports what it is."""
    end = time.monotonic() + wait_s
    while True:
        busy = psutil.cpu_percent(interval=1.0)
        if busy <= quiet_pct or time.monotonic() >= end:
            return busy


def median_run(rows: list[dict], **match) -> dict | None:
    """The median of each measured field over the repeats of one setting (None if all failed)."""
    rows = [r for r in rows if all(r.get(k) == v for k, v in match.items()) and "error" not in r]
    if not rows:
        return None
    numeric = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {**rows[0], **{k: statistics.median(r[k] for r in rows) for k in numeric}, "repeats": len(rows)}
    if "batch_per_execution" in rows[0]:
        out["batch_per_execution"] = {m: statistics.median(r["batch_per_execution"][m] for r in rows)
                                      for m in rows[0]["batch_per_execution"]}
    return out


def side_by_side(repo: Path, checkpoint: Path, waves: np.ndarray, binary: Path, env: dict, data: Path,
                 settings: Settings, variant_repo: Path | None = None, malloc: dict[str, str] | None = None) -> dict:
    """Triton (gRPC, HTTP), Triton on ``variant_repo`` (gRPC; the other classifier precision) and
    FastAPI, all running, measured one after the other at each concurrency (and
    ``settings.repeats`` times at 8), so that all see the same machine. With ``malloc`` (glibc
    environment variables), a second FastAPI process with them is measured at 8 as well."""
    samples = waves.shape[1]
    bodies = [w.astype("<f4").tobytes() for w in waves]
    triton = TritonServer(repo, free_ports(), log_file=WORK / "tritonserver.log")
    variant = (TritonServer(variant_repo, free_ports(), log_file=WORK / "tritonserver_variant.log")
               if variant_repo else nullcontext())
    variant_runs: list[dict] = []
    tuned_api = (fastapi_server(checkpoint, WORK / "fastapi_malloc.log", malloc) if malloc else nullcontext())
    tuned_runs: list[dict] = []
    with triton, variant, fastapi_server(checkpoint, WORK / "fastapi.log") as api, tuned_api as api_malloc:
        pids = {"triton": triton.process.pid, "fastapi": api["pid"]}
        out = {name: {"runs": [], "memory_after_load": process_memory(pid), "memory_peak_under_load": {}}
               for name, pid in pids.items()}
        top = max(settings.concurrencies)
        for c in settings.concurrencies:
            for repeat in range(settings.repeats if c == 8 else 1):
                quiet = background_cpu(settings.quiet_wait_s)
                with peak_memory(pids["triton"]) as peak:
                    for protocol in ("grpc", "http"):
                        out["triton"]["runs"].append(run_perf(binary, env, triton, protocol, c, data, samples,
                                                              settings) | {"background_cpu_pct": quiet})
                if c == top:
                    out["triton"]["memory_peak_under_load"] = dict(peak)
                if variant_repo:
                    variant_runs.append(run_perf(binary, env, variant, "grpc", c, data, samples, settings)
                                        | {"background_cpu_pct": quiet})
                with peak_memory(pids["fastapi"]) as peak:
                    run = load_http("127.0.0.1", api["port"], bodies, c, settings.fastapi_seconds,
                                    settings.max_requests)
                if c == top:
                    out["fastapi"]["memory_peak_under_load"] = dict(peak)
                out["fastapi"]["runs"].append(run | {"background_cpu_pct": quiet})
                log.info("fastapi c=%d: %.1f/s p50 %.1f ms p99 %.1f ms", c, run["throughput"], run["p50_ms"],
                         run["p99_ms"])
                if api_malloc and c == 8:
                    run = load_http("127.0.0.1", api_malloc["port"], bodies, c, settings.fastapi_seconds,
                                    settings.max_requests)
                    tuned_runs.append(run | {"background_cpu_pct": quiet})
                    log.info("fastapi (malloc like the stubs) c=%d: %.1f/s", c, run["throughput"])
    out["triton"]["memory_load_concurrency"] = top
    if variant_repo:
        out["triton_variant"] = {"runs": variant_runs}
    if malloc:
        out["fastapi_malloc"] = {"runs": tuned_runs, "environment": malloc, "command": api_malloc["command"]}
    out["fastapi"] |= {"ready_seconds": api["ready_seconds"], "command": api["command"],
                       "torch_threads": torch.get_num_threads(),
                       "load_generator": "benchmarks.serving.load_http (threads, keep-alive, raw float32 body)"}
    return out


def tuning_grid(base: ServingConfig) -> list[tuple[str, ServingConfig]]:
    """The settings compared; the first is the pre-tuning default."""
    fft = replace(base, logmel_engine="fft", instances=1, intra_op_threads=2, max_queue_delay_us=0,
                  preferred_batch_sizes=(), allow_spinning=False)
    return [
        ("before: onnxruntime log-mel, 1 instance, 1 thread, delay 2 ms, glibc malloc defaults",
         replace(fft, logmel_engine="onnxruntime", intra_op_threads=1, max_queue_delay_us=2000,
                 keep_freed_memory_mb=0)),
        ("FFT log-mel, 1 instance, 1 thread, delay 2 ms", replace(fft, intra_op_threads=1, max_queue_delay_us=2000)),
        ("FFT, 1 instance, 2 threads, delay 2 ms", replace(fft, max_queue_delay_us=2000)),
        ("FFT, 1 instance, 2 threads, delay 2 ms, spinning", replace(fft, max_queue_delay_us=2000, allow_spinning=True)),
        ("FFT, 2 instances, 1 thread, delay 2 ms", replace(fft, instances=2, intra_op_threads=1, max_queue_delay_us=2000)),
        ("FFT, 1 instance, 2 threads, delay 0", fft),
        ("FFT, 1 instance, 2 threads, delay 0, glibc malloc defaults", replace(fft, keep_freed_memory_mb=0)),
        ("FFT, 1 instance, 2 threads, delay 0.5 ms", replace(fft, max_queue_delay_us=500)),
        ("FFT, 1 instance, 2 threads, delay 5 ms, preferred 4, 8",
         replace(fft, max_queue_delay_us=5000, preferred_batch_sizes=(4, 8))),
    ]


def tune(model: ExportedModel, base: ServingConfig, binary: Path, env: dict, data: Path, samples: int,
         settings: Settings) -> list[dict]:
    rows = []
    for i, (label, cfg) in enumerate(tuning_grid(base)):
        repo = build_repository(WORK / f"tune_{i}", model, cfg, "embedded")
        quiet = background_cpu(settings.quiet_wait_s)
        with TritonServer(repo, free_ports(), log_file=WORK / "tritonserver.log") as server:
            runs = [run_perf(binary, env, server, "grpc", c, data, samples, settings)
                    for c in settings.tune_concurrencies]
        busy = max(quiet, background_cpu(0.0))  # before and after: others may have started meanwhile
        rows += [{"label": label, "serving": asdict(cfg), "background_cpu_pct": busy,
                  **{k: v for k, v in run.items() if k != "command"}} for run in runs]
        shutil.rmtree(repo)
    return rows


def machine() -> dict:
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(),
        "python": platform.python_version(), "onnxruntime": ort.__version__, "torch": torch.__version__,
        "numpy": np.__version__, "tritonserver": "2.51.0 (nvidia-pytriton 0.7.0)",
        "perf_analyzer": "tritonclient 2.51.0 wheel",
    }


@dataclass(frozen=True)
class Setup:
    serving: ServingConfig
    checkpoint: Path
    trained: TrainedModel
    waves: np.ndarray  # (clips, samples) real prepared clips
    model: ExportedModel
    binary: Path
    env: dict
    data: Path


def setup(settings: Settings) -> Setup:
    """Everything the measurements read: params.yaml's serving block, the export, real clips, perf_analyzer."""
    params = load_params()
    serving = from_dict(ServingConfig, params["serving"], where="params.yaml: serving")
    checkpoint = paths.MODELS / "model.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint} not found; run `dvc repro export`")
    WORK.mkdir(parents=True, exist_ok=True)
    binary, env = perf_analyzer()
    try:
        trained = load_checkpoint(checkpoint)
    except RuntimeError as err:  # state_dict keys of an older training/models.py
        raise RuntimeError(f"{checkpoint} does not fit training/models.py ({str(err)[:120]}...); "
                           "run `dvc repro` to train and export it again") from err
    waves = parity_waveforms(settings.clips)
    model = exported_model(waves[0], trained, float(params["data"]["clip_seconds"]))
    data = perf_input_data(waves, WORK / "input_data.json")
    return Setup(serving, checkpoint, trained, waves, model, binary, env, data)


def run_tuning(settings: Settings) -> list[dict]:
    s = setup(settings)
    return tune(s.model, s.serving, s.binary, s.env, s.data, s.waves.shape[1], settings)


def run_all(settings: Settings) -> dict:
    s = setup(settings)
    serving, checkpoint, trained, waves, model = s.serving, s.checkpoint, s.trained, s.waves, s.model
    binary, env, data, samples = s.binary, s.env, s.data, s.waves.shape[1]
    repo = build_repository(WORK / "model_repository", model, serving, "embedded")
    native = build_repository(WORK / "model_repository_native", model, serving, "native")
    other = {"fp32": "int8", "int8": "fp32"}[serving.classifier_precision]
    variant_repo = (build_repository(WORK / "model_repository_variant", model,
                                     replace(serving, classifier_precision=other), "embedded")
                    if model.classifier_int8_onnx is not None else None)
    export_report = paths.METRICS / "export.json"
    int8_quality = ({k: v for k, v in json.loads(export_report.read_text()).items() if "int8" in k or k == "fp32_accuracy"}
                    if export_report.is_file() else {})
    t_start = time.monotonic()
    results: dict = {
        "machine": machine(), "settings": asdict(settings), "serving": asdict(serving),
        "clips": {"count": len(waves), "samples": samples, "sample_rate": model.sample_rate,
                  "source": str(paths.PREPARED)},
        "model": {"checkpoint": str(checkpoint), "classes": len(trained.labels),
                  "config": torch.load(checkpoint, map_location="cpu", weights_only=True)["model_config"]},
        "targets": TARGETS,
        "variant": {"classifier_precision": other, "int8_quality": int8_quality} if variant_repo else None,
        "sizes_bytes": {
            "logmel.onnx": model.logmel_onnx.stat().st_size,
            "classifier.onnx": model.classifier_onnx.stat().st_size,
            **({"classifier_int8.onnx": model.classifier_int8_onnx.stat().st_size} if variant_repo else {}),
            "logmel.npz (served FFT log-mel)": (repo / LOGMEL / "1" / "logmel.npz").stat().st_size
            if (repo / LOGMEL / "1" / "logmel.npz").exists() else 0,
            "embedded repository": dir_bytes(repo), "native repository": dir_bytes(native),
            "models/model.pt": checkpoint.stat().st_size,
        },
    }
    log.info("log-mel engines")
    keep_freed_memory(serving.keep_freed_memory_mb)  # as in the stubs: the same math, the same allocator
    results["background_cpu_pct_before_in_process"] = background_cpu(settings.quiet_wait_s)
    results["logmel_engines"] = logmel_engines(model, trained, waves, settings)
    log.info("in-process onnxruntime")
    results["inprocess"] = inprocess(model, waves, settings)
    log.info("cold starts")
    results["background_cpu_pct_before_cold_starts"] = background_cpu(settings.quiet_wait_s)
    results["cold_start_seconds"] = cold_starts(repo, settings.cold_starts)
    log.info("triton and fastapi under load")
    results |= side_by_side(repo, checkpoint, waves, binary, env, data, settings, variant_repo,
                            malloc_env(serving.keep_freed_memory_mb))
    if settings.tune:
        log.info("tuning sweep")
        results["tuning"] = tune(model, serving, binary, env, data, samples, settings)
    results["summary"] = summarize(results)
    results["wall_seconds"] = time.monotonic() - t_start
    return results


# --- summary and report ------------------------------------------------------------------------

def same_math(precision: str) -> str:
    """The in-process pipeline that computes what the embedded repository serves."""
    return "fft_logmel+onnxruntime_int8" if precision == "int8" else "fft_logmel+onnxruntime"


def summarize(results: dict) -> dict:
    """Ratios and the verdict on each target."""
    grpc, fastapi = results["triton"]["runs"], results["fastapi"]["runs"]
    at8 = median_run(grpc, protocol="grpc", concurrency=8)
    fast8 = median_run(fastapi, concurrency=8)
    over_fastapi = at8["throughput"] / fast8["throughput"] if at8 and fast8 else None

    def over(ceiling: list[dict], runs: list[dict] = grpc) -> dict[str, float]:  # str keys: JSON
        ratios = {}
        for row in ceiling:
            triton_row = median_run(runs, protocol="grpc", concurrency=row["batch"])
            if triton_row:
                ratios[str(row["batch"])] = triton_row["throughput"] / row["throughput"]
        return ratios

    served_math = results["inprocess"][same_math(results["serving"].get("classifier_precision", "fp32"))]
    over_ort = over(results["inprocess"]["onnxruntime"])
    over_same_math = over(served_math)
    ready = statistics.median(results["cold_start_seconds"])
    classifier_mb = results["sizes_bytes"]["classifier.onnx"] / 1e6
    t = results["targets"]
    variant = {}
    v8 = None  # the variant's median at concurrency 8
    if results.get("variant") and results.get("triton_variant"):
        runs = results["triton_variant"]["runs"]
        v8 = median_run(runs, protocol="grpc", concurrency=8)
        ratio = v8["throughput"] / fast8["throughput"] if v8 and fast8 else None
        by_batch = over(results["inprocess"].get(same_math(results["variant"]["classifier_precision"]), []), runs)
        variant = {
            "variant_over_fastapi_at_8": ratio,
            "variant_over_same_math_in_process_by_batch": by_batch,
            "variant_met": {
                "triton_over_fastapi_at_8": ratio is not None and ratio >= t["triton_over_fastapi_at_8"],
                "triton_over_same_math_in_process_same_batch": bool(by_batch) and min(
                    by_batch.values()) >= t["triton_over_onnxruntime_same_batch"],
            },
        }
    # The most the served math does in process, at its best batch size, over FastAPI at 8: what
    # Triton would reach over FastAPI with no serving overhead at all.
    best = max((r["throughput"] for r in served_math), default=None)
    # FastAPI with glibc malloc set like the stubs: how much of the ratio that setting explains.
    tuned8 = median_run(results.get("fastapi_malloc", {}).get("runs", []), concurrency=8)
    over_tuned = {name: run["throughput"] / tuned8["throughput"] if run else None
                  for name, run in (("triton", at8), ("variant", v8))} if tuned8 else None
    return variant | {
        "over_fastapi_malloc_at_8": over_tuned,
        "ceiling_over_fastapi_at_8": best / fast8["throughput"] if best and fast8 else None,
        "triton_over_fastapi_at_8": over_fastapi,
        "triton_over_onnxruntime_by_batch": over_ort,
        "triton_over_same_math_in_process_by_batch": over_same_math,
        "ready_seconds_median": ready,
        "classifier_onnx_mb": classifier_mb,
        "met": {
            "triton_over_fastapi_at_8": over_fastapi is not None and over_fastapi >= t["triton_over_fastapi_at_8"],
            "triton_over_onnxruntime_same_batch": bool(over_ort) and min(over_ort.values())
            >= t["triton_over_onnxruntime_same_batch"],
            "triton_over_onnxruntime_at_8": over_ort.get("8", 0) >= t["triton_over_onnxruntime_same_batch"],
            "triton_over_same_math_in_process_same_batch": bool(over_same_math) and min(
                over_same_math.values()) >= t["triton_over_onnxruntime_same_batch"],
            "ready_seconds": ready <= t["ready_seconds"],
            "classifier_onnx_mb": classifier_mb <= t["classifier_onnx_mb"],
        },
    }


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def every_batch(ratios: dict[str, float], target: float) -> str:
    """Verdict over batch sizes: met at all, or which ones miss."""
    missed = [f"b{b}" for b, r in ratios.items() if r < target]
    return "**met** at every batch size" if ratios and not missed else f"**not met** at {', '.join(missed) or 'any'}"


def env_text(env: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items())


def variant_label(results: dict) -> str:
    return (results.get("variant") or {}).get("classifier_precision", "").upper()


def variant_target_rows(results: dict, yes: dict) -> list[list[str]]:
    """Target rows of Triton with the classifier's other precision, with its measured agreement."""
    summary, t = results["summary"], results["targets"]
    if "variant_over_fastapi_at_8" not in summary:
        return []
    name, q = variant_label(results), results["variant"]["int8_quality"]
    quality = (f"; INT8 top-1 agreement with FP32 {q['int8_top1_agreement']:.1%} on {q['int8_eval_clips']} "
               f"clips of held-out fold {q['int8_eval_fold']}, accuracy {q['int8_accuracy']:.1%} (INT8) vs "
               f"{q['fp32_accuracy']:.1%} (FP32)") if q.get("int8_eval_clips") else ""
    met = summary["variant_met"]
    return [
        [f"the same with the {name} classifier (`serving.classifier_precision={name.lower()}`{quality})",
         f"{_f(summary['variant_over_fastapi_at_8'], 2)}x", yes[met["triton_over_fastapi_at_8"]]],
        [f"{name} Triton >= {t['triton_over_onnxruntime_same_batch']:.0%} of its own math in process "
         f"(FFT log-mel + {name} classifier)",
         ", ".join(f"b{b}: {r:.0%}" for b, r in summary["variant_over_same_math_in_process_by_batch"].items()),
         every_batch(summary["variant_over_same_math_in_process_by_batch"], t["triton_over_onnxruntime_same_batch"])],
    ]


def render_markdown(results: dict) -> str:
    """docs/benchmarks.md from the results JSON (the file is generated, never edited by hand)."""
    m, s, summary = results["machine"], results["settings"], results["summary"]
    t, met = results["targets"], summary["met"]
    yes = {True: "**met**", False: "**not met**"}
    lines = [
        "# Serving benchmark",
        "",
        "Generated by `python -m benchmarks.serving` (`make bench`) from `docs/benchmarks.json`; "
        "do not edit by hand.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['platform']}; Python "
        f"{m['python']}, onnxruntime {m['onnxruntime']}, torch {m['torch']}, numpy {m['numpy']}; "
        f"tritonserver {m['tritonserver']}; perf_analyzer from the {m['perf_analyzer']}. No GPU: every "
        "number is CPU.",
        "",
        f"Load: {results['clips']['count']} real clips of {results['clips']['samples']} samples "
        f"({results['clips']['samples'] / results['clips']['sample_rate']:.1f} s at "
        f"{results['clips']['sample_rate']} Hz) from `{results['clips']['source']}`, one clip per request. "
        f"Whole run: {results.get('wall_seconds', 0) / 60:.1f} min.",
        "",
        f"Model: `{results['model']['checkpoint']}` and its ONNX export in `artifacts/onnx`, "
        f"{results['model']['classes']} classes, network " + ", ".join(
            f"{k}={v}" for k, v in results["model"]["config"].items()) + ".",
        "",
        "## Targets",
        "",
    ]
    over_ort = summary["triton_over_onnxruntime_by_batch"]
    lines += _table(["target", "measured", "verdict"], [
        [f"Triton gRPC throughput at concurrency 8 >= {t['triton_over_fastapi_at_8']:.0f}x FastAPI + eager PyTorch",
         f"{_f(summary['triton_over_fastapi_at_8'], 2)}x", yes[met["triton_over_fastapi_at_8"]]],
        *variant_target_rows(results, yes),
        *([["for reference: the same ratios over a FastAPI process with glibc malloc set like the Triton stubs "
            f"(`{env_text(results['fastapi_malloc']['environment'])}`)",
            " / ".join(f"{_f(summary['over_fastapi_malloc_at_8'][k], 2)}x ({label})" for k, label in
                       (("triton", results["serving"].get("classifier_precision", "fp32").upper()),
                        ("variant", variant_label(results) or "-")) if summary["over_fastapi_malloc_at_8"][k]),
            "-"]] if summary.get("over_fastapi_malloc_at_8") else []),
        *([["for reference: the served math in process at its best batch size over FastAPI at 8, i.e. what "
            "a server with no overhead at all would reach", f"{_f(summary['ceiling_over_fastapi_at_8'], 2)}x",
            "-"]] if summary.get("ceiling_over_fastapi_at_8") else []),
        [f"Triton >= {t['triton_over_onnxruntime_same_batch']:.0%} of in-process onnxruntime at the same "
         "batch size (concurrency = batch)",
         ", ".join(f"b{b}: {r:.0%}" for b, r in over_ort.items()),
         f"{every_batch(over_ort, t['triton_over_onnxruntime_same_batch'])}; "
         f"{yes[met['triton_over_onnxruntime_at_8']]} at 8"],
        [f"the same, against the served math in process (FFT log-mel + onnxruntime classifier): "
         "the serving overhead alone",
         ", ".join(f"b{b}: {r:.0%}" for b, r in summary["triton_over_same_math_in_process_by_batch"].items()),
         every_batch(summary["triton_over_same_math_in_process_by_batch"], t["triton_over_onnxruntime_same_batch"])],
        [f"ready <= {t['ready_seconds']:.0f} s (median cold start)",
         f"{summary['ready_seconds_median']:.2f} s", yes[met["ready_seconds"]]],
        [f"classifier ONNX <= {t['classifier_onnx_mb']:.0f} MB", f"{summary['classifier_onnx_mb']:.2f} MB",
         yes[met["classifier_onnx_mb"]]],
    ])
    serving = results["serving"]
    lines += [
        "",
        "Served configuration (params.yaml `serving`): " + ", ".join(
            f"`{k}={v}`" for k, v in serving.items() if k not in ("trt_precision", "trt_cache_dir", "device")),
        "",
        "## Triton (perf_analyzer) vs FastAPI + eager PyTorch",
        "",
        "Throughput in clips/s; latency in ms. Both servers run side by side and are measured one after "
        f"the other at each concurrency; at 8, {s['repeats']} times in turn, medians shown. `batch/exec`: "
        "clips per model execution on the server (logmel, classifier), from the metrics endpoint: "
        "equal-length requests queued together run as one call. `busy`: CPU % used by other processes "
        "just before (0 on a quiet machine).",
        "",
    ]
    name = variant_label(results)
    if name:
        lines[-1:-1] = [f"{name}: a third server, the same repository with the {name} classifier, measured "
                        "over gRPC in the same turn.", ""]
    rows = []
    for c in s["concurrencies"]:
        cells = [c]
        for protocol in ("grpc", "http"):
            r = median_run(results["triton"]["runs"], protocol=protocol, concurrency=c)
            cells += [_f(r["throughput"]), _f(r["p50_ms"]), _f(r["p99_ms"])] if r else ["error"] * 3
            if protocol == "grpc":
                b = r["batch_per_execution"] if r else {}
                cells.append(f"{_f(b.get(LOGMEL))}, {_f(b.get(CLASSIFIER))}")
        if name:
            v = median_run(results["triton_variant"]["runs"], protocol="grpc", concurrency=c)
            cells += [_f(v["throughput"]), _f(v["p50_ms"]), _f(v["p99_ms"])] if v else ["error"] * 3
        f = median_run(results["fastapi"]["runs"], concurrency=c)
        cells += [_f(f["throughput"]), _f(f["p50_ms"]), _f(f["p99_ms"])] if f else ["n/a"] * 3
        cells.append(_f(f.get("background_cpu_pct"), 0) if f else "n/a")
        rows.append(cells)
    variant_header = [f"{name} gRPC clips/s", f"{name} p50", f"{name} p99"] if name else []
    lines += _table(["concurrency", "gRPC clips/s", "gRPC p50", "gRPC p99", "batch/exec",
                     "HTTP clips/s", "HTTP p50", "HTTP p99", *variant_header, "FastAPI clips/s", "FastAPI p50",
                     "FastAPI p99", "busy %"], rows)
    tuned = results.get("fastapi_malloc")
    tuned8 = median_run(tuned["runs"], concurrency=8) if tuned else None
    if tuned8:
        lines += ["", f"FastAPI with glibc malloc set like the Triton stubs "
                  f"(`{env_text(tuned['environment'])}`), a fourth server measured "
                  f"in the same turns at concurrency 8: {_f(tuned8['throughput'])} clips/s, p50 "
                  f"{_f(tuned8['p50_ms'])} ms, p99 {_f(tuned8['p99_ms'])} ms (median of {len(tuned['runs'])})."]
    errors = [r for r in results["triton"]["runs"] if "error" in r]
    if errors:
        lines += ["", "perf_analyzer failures: " + "; ".join(
            f"{r['protocol']} c={r['concurrency']}: {r['error']}" for r in errors)]
    lines += ["", "## In-process onnxruntime (the ceiling) and Triton at the same batch size", "",
              "In-process: one session per model, all cores, the batch as one call; clips/s. Triton: gRPC at "
              "concurrency = batch size. Other processes used "
              f"{_f(results.get('background_cpu_pct_before_in_process'), 0)} % of the CPU before the "
              "in-process phase.", ""]
    fft_rows = {r["batch"]: r for r in results["inprocess"]["fft_logmel+onnxruntime"]}
    int8_rows = {r["batch"]: r for r in results["inprocess"].get("fft_logmel+onnxruntime_int8", [])}
    same = summary["triton_over_same_math_in_process_by_batch"]
    variant_same = summary.get("variant_over_same_math_in_process_by_batch", {})
    rows = []
    for r in results["inprocess"]["onnxruntime"]:
        b = str(r["batch"])
        tr = median_run(results["triton"]["runs"], protocol="grpc", concurrency=r["batch"])
        cells = [b, _f(r["throughput"]), _f(fft_rows[r["batch"]]["throughput"])]
        cells += [_f(int8_rows[r["batch"]]["throughput"])] if int8_rows else []
        cells += [_f(tr["throughput"]) if tr else "n/a", f"{over_ort[b]:.0%}" if b in over_ort else "n/a",
                  f"{same[b]:.0%}" if b in same else "n/a"]
        if name:
            v = median_run(results["triton_variant"]["runs"], protocol="grpc", concurrency=r["batch"])
            cells += [_f(v["throughput"]) if v else "n/a", f"{variant_same[b]:.0%}" if b in variant_same else "n/a"]
        rows.append(cells)
    lines += _table(["batch", "onnxruntime logmel+classifier", "FFT log-mel + onnxruntime classifier",
                     *(["FFT log-mel + INT8 classifier"] if int8_rows else []),
                     "Triton gRPC", "Triton / onnxruntime", "Triton / same math in process",
                     *([f"{name} Triton gRPC", f"{name} Triton / its math in process"] if name else [])], rows)
    engines = results["logmel_engines"]
    lines += ["", "## Log-mel engines (one thread, ms per 5 s clip)", ""]
    lines += _table(["engine", "batch 1", "batch 8"], [
        [name, _f(v["batch_1_ms_per_clip"], 2), _f(v["batch_8_ms_per_clip"], 2)]
        for name, v in engines.items() if isinstance(v, dict)])
    lines += ["", f"Importing torch in a Python-backend stub would add {engines['torch_import_seconds']:.1f} s "
              "to every cold start.", "", "## Cold start, sizes, memory", ""]
    cold = results["cold_start_seconds"]
    lines += [f"Cold start to `/v2/health/ready` (embedded repository, {len(cold)} starts, other processes "
              f"using {_f(results.get('background_cpu_pct_before_cold_starts'), 0)} % of the CPU before): median "
              f"{statistics.median(cold):.2f} s (all: {', '.join(f'{x:.2f}' for x in cold)}). "
              f"FastAPI + PyTorch ready after {results['fastapi']['ready_seconds']:.2f} s.", ""]
    lines += _table(["file", "bytes", "MB"], [[k, v, f"{v / 1e6:.2f}"] for k, v in results["sizes_bytes"].items()])
    lines += [""]
    mem_rows = []
    for name in ("triton", "fastapi"):
        r = results[name]
        loaded, peak = r["memory_after_load"], r["memory_peak_under_load"]
        mem_rows.append([name, loaded["processes"], _f(loaded["rss_mib"]), _f(loaded["pss_mib"]),
                         _f(peak.get("rss_mib")), _f(peak.get("pss_mib"))])
    lines += _table(["server", "processes", "RSS after load (MiB)", "PSS after load", "peak RSS under load",
                     "peak PSS under load"], mem_rows)
    lines += ["", f"Under load: concurrency {results['triton']['memory_load_concurrency']}. Triton: tritonserver "
              "plus one Python stub per model instance; RSS counts shared pages once per process, PSS "
              "divides them."]
    if results.get("tuning"):
        lines += ["", "## Tuning sweep (embedded repository, gRPC)", "",
                  "The evidence for params.yaml's `serving` defaults (threads are onnxruntime's, per classifier "
                  "instance; the FFT log-mel uses one); the row marked * is the served configuration. "
                  "clips/s and p50 ms at each concurrency.", ""]
        concurrencies = s["tune_concurrencies"]
        rows = []
        for label in dict.fromkeys(r["label"] for r in results["tuning"]):
            runs = [r for r in results["tuning"] if r["label"] == label]
            mark = " *" if runs[0]["serving"] == serving else ""
            cells = [label + mark]
            for c in concurrencies:
                r = median_run(runs, concurrency=c)
                cells += [_f(r["throughput"]), _f(r["p50_ms"])] if r else ["error"] * 2
            b = (median_run(runs, concurrency=concurrencies[-1]) or {}).get("batch_per_execution", {})
            cells += [f"{_f(b.get(LOGMEL))}, {_f(b.get(CLASSIFIER))}", _f(runs[0].get("background_cpu_pct"), 0)]
            rows.append(cells)
        header = [h for c in concurrencies for h in (f"c{c} clips/s", f"c{c} p50")]
        lines += _table(["settings", *header, f"batch/exec at c{concurrencies[-1]}", "busy %"], rows)
    lines += ["", "## Commands", "", "```bash", "python -m benchmarks.serving"]
    lines += [r["command"] for r in results["triton"]["runs"] if "command" in r][:1]
    lines += ["# ... the same for each concurrency and for -i http",
              results["fastapi"]["command"] + "   # FastAPI baseline",
              "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (for tests), no tuning")
    parser.add_argument("--no-tune", action="store_true", help="skip the sweep of serving settings")
    parser.add_argument("--render-only", action="store_true", help="rewrite the markdown from the JSON")
    parser.add_argument("--tune-only", action="store_true",
                        help="measure the sweep of serving settings again into the existing JSON")
    parser.add_argument("--json", type=Path, default=JSON_OUT)
    parser.add_argument("--markdown", type=Path, default=MD_OUT)
    args = parser.parse_args(argv)
    if args.render_only:
        results = json.loads(args.json.read_text())
    elif args.tune_only:
        results = json.loads(args.json.read_text())
        results["tuning"] = run_tuning(Settings())
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    else:
        settings = QUICK if args.quick else Settings()
        if args.no_tune:
            settings = replace(settings, tune=False)
        results = json.loads(json.dumps(run_all(settings)))  # render what --render-only would read
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(render_markdown(results))
    log.info("wrote %s and %s", args.json, args.markdown)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
