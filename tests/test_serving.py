"""A real tritonserver on the exported repository, queried over gRPC and HTTP."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from client import cli
from client.audio import load_audio
from client.triton import ClientError, EscClient
from tests.conftest import ESC10, PipelineRun, run
from training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow
CLIP = ESC10 / "audio" / "001 - Dog bark" / "5-203128-A.ogg"  # fold 5: held out by default
PROTOCOLS = ("grpc", "http")


def client_for(triton, protocol: str, **kwargs) -> EscClient:
    return EscClient(triton.grpc_url if protocol == "grpc" else triton.http_url, protocol, **kwargs)


@pytest.fixture(scope="module")
def reference(pipeline_run: PipelineRun) -> np.ndarray:
    """Local PyTorch probabilities for CLIP, (n_classes,)."""
    trained = load_checkpoint(pipeline_run.root / "models" / "model.pt")
    wave = load_audio(CLIP, trained.front_end.cfg.sample_rate, 5.0)
    return trained.predict_proba(torch.from_numpy(wave)[None])[0].numpy()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_served_probabilities_match_pytorch(triton, reference: np.ndarray, protocol: str) -> None:
    with client_for(triton, protocol) as client:
        pred = client.classify_file(CLIP, top_k=5)
    np.testing.assert_allclose(pred.probabilities, reference, atol=1e-4, rtol=0)
    assert pred.logmel.shape[0] == 64 and [k for k, _ in pred.top][0] == client.labels[reference.argmax()]


def test_batch_and_concurrent_requests_match_single(triton, reference: np.ndarray) -> None:
    with client_for(triton, "grpc") as client:
        wave = client.load(CLIP)
        rng = np.random.default_rng(0)
        batch = np.stack([wave, 0.5 * wave, rng.normal(0, 0.1, wave.shape).astype(np.float32)])
        probs, logmel = client.infer(batch)
        singles = [client.infer(w[None])[0][0] for w in batch]
        with ThreadPoolExecutor(8) as pool:  # lets the dynamic batcher form batches
            concurrent = list(pool.map(lambda w: client.infer(w[None])[0][0], [*batch] * 4))
    assert probs.shape == (3, len(reference)) and logmel.shape[:2] == (3, 64)
    np.testing.assert_allclose(probs, np.stack(singles), atol=1e-5)
    np.testing.assert_allclose(np.stack(concurrent), np.stack(singles * 4), atol=1e-5)
    np.testing.assert_allclose(probs[0], reference, atol=1e-4)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_input_is_rejected_and_the_server_keeps_serving(triton, reference, protocol) -> None:
    with client_for(triton, protocol) as client:
        wave = client.load(CLIP)
        nan = wave.copy()
        nan[100] = np.nan
        limit = int(10.0 * client.sample_rate)  # serving.max_seconds in the QUICK settings
        cases = {
            "NaN or infinite values": nan[None],
            "is empty": np.zeros((1, 0), np.float32),
            "more than the": np.zeros((1, limit + 1), np.float32),
        }
        for message, bad in cases.items():
            with pytest.raises(ClientError, match=message):
                client.infer(bad)
        assert client.infer(np.zeros((1, limit), np.float32))[0].shape == (1, len(reference))
        np.testing.assert_allclose(client.classify_waveform(wave).probabilities, reference, atol=1e-4)


def test_missing_model_and_unreachable_server_name_the_fix(triton) -> None:
    with pytest.raises(ClientError, match="model 'nope' is not ready.*dvc repro export"):
        EscClient(triton.grpc_url, "grpc", model="nope")
    with pytest.raises(ClientError, match="cannot reach Triton.*make serve"):
        EscClient("127.0.0.1:1", "http")


def test_cli_gives_the_same_top5_over_grpc_and_http(triton, capsys) -> None:
    tops = {}
    for protocol in PROTOCOLS:
        url = triton.grpc_url if protocol == "grpc" else triton.http_url
        code = cli.main([str(CLIP), "--url", url, "--protocol", protocol, "--top-k", "5", "--json"])
        assert code == 0
        (line,) = capsys.readouterr().out.splitlines()
        record = json.loads(line)
        assert record["error"] is None and record["file"] == str(CLIP)
        tops[protocol] = [item["label"] for item in record["top_k"]]
    assert len(tops["grpc"]) == 5 and tops["grpc"] == tops["http"]


def test_cli_reports_each_bad_file_and_exits_non_zero(triton, tmp_path, capsys) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    code = cli.main([str(CLIP), str(not_audio), str(tmp_path / "missing.ogg"), "--url", triton.grpc_url])
    captured = capsys.readouterr()
    assert code == 1
    assert str(CLIP) in captured.out and "%" in captured.out
    assert "notes.wav: not a readable audio file" in captured.err
    assert "missing.ogg: no such file" in captured.err
    assert cli.main([str(CLIP), "--url", "127.0.0.1:1"]) == 2


def test_serving_leaves_the_dvc_output_untouched(triton, pipeline_run: PipelineRun) -> None:
    """The stubs write __pycache__ into the served repository; .dvcignore keeps DVC blind to it."""
    assert triton.is_ready()
    status = run(["dvc", "status"], pipeline_run.root).stdout
    assert "Data and pipelines are up to date." in status


def test_a_second_server_on_the_same_ports_is_refused(triton, pipeline_run: PipelineRun) -> None:
    from model_repository.server import TritonServer

    with pytest.raises(RuntimeError, match=r"already in use.*choose other ports"):
        TritonServer(pipeline_run.model_repository, triton.ports).start()
    assert triton.is_ready() and triton.process.poll() is None


def test_int8_repository_serves_what_onnxruntime_computes(pipeline_run: PipelineRun, tmp_path) -> None:
    """serving.classifier_precision=int8: a real server on that repository answers like the
    served math in process (FFT log-mel + the INT8 classifier in onnxruntime)."""
    import onnxruntime as ort

    from benchmarks.serving import exported_model
    from model_repository.build import ServingConfig, build_repository
    from model_repository.python_models.onnx_model import FFTLogMel
    from model_repository.server import Ports, TritonServer
    from tests.conftest import free_port

    trained = load_checkpoint(pipeline_run.root / "models" / "model.pt")
    wave = load_audio(CLIP, trained.front_end.cfg.sample_rate, 5.0)
    model = exported_model(wave, trained, 5.0, pipeline_run.root / "artifacts" / "onnx")
    assert model.classifier_int8_onnx is not None
    repo = build_repository(tmp_path / "int8", model, ServingConfig(classifier_precision="int8"))
    (logmel,) = FFTLogMel(model.logmel_tables).run(["LOGMEL"], {"WAVEFORM": wave[None]})
    (expected,) = ort.InferenceSession(str(model.classifier_int8_onnx)).run(["PROBABILITIES"], {"LOGMEL": logmel})
    with TritonServer(repo, Ports(free_port(), free_port(), free_port()), log_file=tmp_path / "log") as server:
        with EscClient(server.grpc_url, "grpc") as client:
            probs, _ = client.infer(wave[None])
    np.testing.assert_allclose(probs, expected, atol=1e-5, rtol=0)
