"""The serving benchmark's parts: load generator, perf_analyzer input and output, metrics, report.

Fast tests use a loopback HTTP server of their own and crafted perf_analyzer/metrics output. The
slow tests run the FastAPI baseline on the pipeline's checkpoint and perf_analyzer against the
session's real Triton. Not covered: the numbers themselves (``make bench`` measures them).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import serving
from tests.conftest import PipelineRun

PERF_CSV = (  # the header of perf_analyzer 2.51's -f file
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,"
    "p90 latency,p95 latency,p99 latency\n"
    "8,123.4,44,5780,1,151,22768,1207,2,61000,70000,72000,90000\n"
)
METRICS = """# HELP nv_inference_count Number of inferences performed
nv_inference_count{model="classifier",version="1"} 96
nv_inference_count{model="logmel",version="1"} 96
nv_inference_count{model="esc",version="1"} 96
nv_inference_exec_count{model="classifier",version="1"} 24
nv_inference_exec_count{model="logmel",version="1"} 12
nv_inference_exec_count{model="esc",version="1"} 96
"""


class Handler(BaseHTTPRequestHandler):
    """Answers 200 to bodies of 8 bytes, 500 to others."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200 if len(body) == 8 else 500)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_load_generator_is_bounded_in_count_and_counts_errors(http_server: int) -> None:
    result = serving.load_http("127.0.0.1", http_server, [b"8 bytes!", b"bad"], concurrency=4,
                               seconds=10.0, max_requests=40)
    assert result["requests"] == 40 and result["errors"] == 20  # every second body is bad
    assert result["seconds"] < 10 and result["throughput"] == pytest.approx(40 / result["seconds"])
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    timed = serving.load_http("127.0.0.1", http_server, [b"8 bytes!"], concurrency=2, seconds=0.3,
                              max_requests=10**9)
    assert timed["errors"] == 0 and 0.3 <= timed["seconds"] < 1.5 and timed["requests"] > 2


def test_perf_input_data_round_trips_the_real_clips(tmp_path: Path) -> None:
    waves = np.random.default_rng(0).normal(size=(3, 1000)).astype(np.float32)
    data = json.loads(serving.perf_input_data(waves, tmp_path / "d.json").read_text())["data"]
    decoded = [np.frombuffer(base64.b64decode(d["WAVEFORM"]["b64"]), "<f4") for d in data]
    np.testing.assert_array_equal(np.stack(decoded), waves)
    assert all(d["WAVEFORM"]["shape"] == [1000] for d in data)


def test_perf_csv_and_metrics_are_read(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(PERF_CSV)
    row = serving.read_perf_csv(tmp_path / "p.csv")
    assert row["throughput"] == 123.4 and row["p50_ms"] == 61.0 and row["p99_ms"] == 90.0
    assert row["server_compute_ms"] == 22.768
    after = serving.parse_counts(METRICS)
    before = {m: {"nv_inference_count": 0.0, "nv_inference_exec_count": 0.0} for m in after}
    assert serving.batch_per_execution(before, after) == {"logmel": 8.0, "classifier": 4.0}


def fake_results(triton_at_8: float, fastapi_at_8: float, ready: list[float], classifier_bytes: int) -> dict:
    run = lambda c, x: {"concurrency": c, "throughput": x, "p50_ms": 10.0, "p90_ms": 11.0, "p99_ms": 12.0,
                        "batch_per_execution": {"logmel": 4.0, "classifier": 4.0}, "command": "perf_analyzer ..."}
    memory = {"processes": 3, "rss_mib": 500.0, "pss_mib": 300.0}
    return {
        "machine": serving.machine(), "settings": vars(serving.Settings(concurrencies=(1, 8), batch_sizes=(1, 8))),
        "serving": {"instances": 1}, "targets": serving.TARGETS,
        "clips": {"count": 2, "samples": 110250, "sample_rate": 22050, "source": "data/prepared"},
        "model": {"checkpoint": "models/model.pt", "classes": 10, "config": {"name": "resnet"}},
        "sizes_bytes": {"logmel.onnx": 1, "classifier.onnx": classifier_bytes},
        "logmel_engines": {"FFT, scipy float32 (served)": {"batch_1_ms_per_clip": 1.0, "batch_8_ms_per_clip": 0.9},
                           "torch_import_seconds": 1.5},
        "inprocess": {"onnxruntime": [{"batch": 1, "throughput": 10.0}, {"batch": 8, "throughput": 100.0}],
                      "fft_logmel+onnxruntime": [{"batch": 1, "throughput": 12.0}, {"batch": 8, "throughput": 110.0}]},
        "cold_start_seconds": ready,
        "triton": {"runs": [{**run(1, 9.0), "protocol": p} for p in ("grpc", "http")]
                   + [{**run(8, triton_at_8), "protocol": p} for p in ("grpc", "http")],
                   "memory_after_load": memory, "memory_peak_under_load": memory, "memory_load_concurrency": 8},
        "fastapi": {"runs": [run(1, 5.0), run(8, fastapi_at_8)], "memory_after_load": memory,
                    "memory_peak_under_load": memory, "ready_seconds": 3.0, "command": "uvicorn ..."},
    }


def test_summary_judges_each_target_at_its_limit() -> None:
    met = fake_results(triton_at_8=75.0, fastapi_at_8=25.0, ready=[3.0, 1.0, 9.0], classifier_bytes=5_000_000)
    summary = serving.summarize(met)
    assert summary["triton_over_fastapi_at_8"] == 3.0 and summary["triton_over_onnxruntime_by_batch"] == \
        {"1": 0.9, "8": 0.75}
    assert all(v for k, v in summary["met"].items() if "same_math" not in k)
    assert not summary["met"]["triton_over_same_math_in_process_same_batch"]  # 68% at batch 8
    assert summary["triton_over_same_math_in_process_by_batch"] == {"1": 0.75, "8": 75.0 / 110.0}
    missed = fake_results(triton_at_8=69.0, fastapi_at_8=25.0, ready=[3.1, 3.2, 1.0], classifier_bytes=5_000_001)
    summary = serving.summarize(missed)
    assert not any(summary["met"].values()), summary["met"]


def test_report_is_generated_from_the_json_alone() -> None:
    results = fake_results(75.0, 25.0, [1.0, 2.0, 3.0], 4_000_000)
    served, other = {"instances": 1}, {"instances": 2}
    results["tuning"] = [
        {"label": label, "serving": cfg, "concurrency": c, "throughput": x * c, "p50_ms": 5.0,
         "p99_ms": 9.0, "batch_per_execution": {"logmel": 1.0, "classifier": 2.0}, "background_cpu_pct": 3.0}
        for label, cfg, x in (("one", served, 10.0), ("two", other, 20.0)) for c in (2, 8)
    ]
    results["summary"] = serving.summarize(results)
    results = json.loads(json.dumps(results))  # what --render-only reads back
    text = serving.render_markdown(results)
    assert "do not edit by hand" in text and results["machine"]["cpu"] in text and "name=resnet" in text
    assert "3.00x" in text and "b8: 75%" in text and "b8: 68% | **not met**" in text
    assert "| 8 | 75.0 | 10.0 | 12.0 | 4.0, 4.0 | 75.0 |" in text
    assert "| one * | 20.0 | 5.0 | 80.0 | 5.0 | 1.0, 2.0 | 3 |" in text  # the served settings, marked
    assert "| two | 40.0 | 5.0 | 160.0 | 5.0 | 1.0, 2.0 | 3 |" in text


def test_variant_with_the_other_classifier_precision_is_judged_and_reported() -> None:
    results = fake_results(75.0, 25.0, [1.0], 4_000_000)
    results["inprocess"]["fft_logmel+onnxruntime_int8"] = [{"batch": 1, "throughput": 20.0},
                                                            {"batch": 8, "throughput": 160.0}]
    run = lambda c, x: {"concurrency": c, "throughput": x, "p50_ms": 7.0, "p99_ms": 8.0, "protocol": "grpc"}
    results["triton_variant"] = {"runs": [run(1, 15.0), run(8, 100.0)]}
    results["variant"] = {"classifier_precision": "int8", "int8_quality": {
        "int8_top1_agreement": 0.99, "int8_eval_clips": 80, "int8_eval_fold": 5, "int8_accuracy": 0.85,
        "fp32_accuracy": 0.8625}}
    results["fastapi_malloc"] = {"runs": [{"concurrency": 8, "throughput": 50.0, "p50_ms": 20.0, "p99_ms": 30.0}],
                                 "environment": serving.malloc_env(256)}
    summary = serving.summarize(results)
    assert summary["variant_over_fastapi_at_8"] == 4.0  # 100 / 25
    assert summary["over_fastapi_malloc_at_8"] == {"triton": 1.5, "variant": 2.0}  # 75 / 50, 100 / 50
    assert summary["variant_over_same_math_in_process_by_batch"] == {"1": 0.75, "8": 0.625}
    assert summary["variant_met"] == {"triton_over_fastapi_at_8": True,
                                      "triton_over_same_math_in_process_same_batch": False}
    # The served configuration is judged against its own precision's math.
    results["serving"]["classifier_precision"] = "int8"
    assert serving.summarize(results)["triton_over_same_math_in_process_by_batch"] == {"1": 9.0 / 20.0,
                                                                                       "8": 75.0 / 160.0}
    results["serving"]["classifier_precision"] = "fp32"
    results["summary"] = summary
    text = serving.render_markdown(json.loads(json.dumps(results)))
    assert "INT8 top-1 agreement with FP32 99.0% on 80 clips of held-out fold 5" in text
    assert "| 4.00x | **met** |" in text and "b8: 62% | **not met** at b8 |" in text
    assert "| 8 | 75.0 | 10.0 | 12.0 | 4.0, 4.0 | 75.0 | 10.0 | 12.0 | 100.0 | 7.0 | 8.0 | 25.0 |" in text
    assert "| 8 | 100.0 | 110.0 | 160.0 | 75.0 | 75% | 68% | 100.0 | 62% |" in text
    assert "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456" in text
    assert "| 1.50x (FP32) / 2.00x (INT8) | - |" in text and "concurrency 8: 50.0 clips/s, p50 20.0 ms" in text
    assert serving.malloc_env(0) == {}


@pytest.mark.slow
def test_fastapi_baseline_answers_like_pytorch(pipeline_run: PipelineRun, tmp_path: Path) -> None:
    from training.checkpoint import load_checkpoint

    checkpoint = pipeline_run.root / "models" / "model.pt"
    wave = np.random.default_rng(0).normal(0, 0.1, 22050).astype(np.float32)
    serving.WORK.mkdir(parents=True, exist_ok=True)
    with serving.fastapi_server(checkpoint, tmp_path / "fastapi.log") as server:
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{server['port']}/predict", data=wave.tobytes(),
                                         headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=30) as r:
            probs = np.array(json.loads(r.read())["probabilities"])
        load = serving.load_http("127.0.0.1", server["port"], [wave.tobytes(), b"odd"], 2, 1.0, 20)
    expected = load_checkpoint(checkpoint).predict_proba(torch.from_numpy(wave)[None])[0].numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert load["requests"] > 0 and load["errors"] == load["requests"] // 2  # "odd": 3 bytes, rejected


@pytest.mark.slow
def test_perf_analyzer_measures_the_real_server(triton, tmp_path: Path, monkeypatch) -> None:
    try:
        binary, env = serving.perf_analyzer()
    except (RuntimeError, OSError) as err:  # e.g. libb64-0d missing, no package index
        pytest.skip(f"perf_analyzer unavailable: {err}")
    monkeypatch.setattr(serving, "WORK", tmp_path)
    samples = 22050
    waves = np.random.default_rng(0).normal(0, 0.1, (2, samples)).astype(np.float32)
    data = serving.perf_input_data(waves, tmp_path / "d.json")
    settings = serving.Settings(window_ms=1000, max_trials=3, stability_pct=90)
    result = serving.run_perf(binary, env, triton, "grpc", 4, data, samples, settings)
    assert "error" not in result, result
    assert result["throughput"] > 0 and result["p50_ms"] <= result["p99_ms"]
    assert result["batch_per_execution"]["classifier"] >= 1.0
