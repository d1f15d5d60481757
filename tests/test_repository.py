"""Model repositories of both targets and the Python-backend model that serves the embedded one.

Every config (``config.pbtxt`` and the native ``configs/cpu.pbtxt``) is parsed back with Triton's
own ModelConfig protobuf, and tensor names, types and dims must chain through the ensemble. The
Python-backend model runs here with a stand-in for ``triton_python_backend_utils``: equal-shape
requests form one run, a bad request fails alone, and its FFT log-mel matches
``training.features.LogMel``. The slow test compares the real server's log-mel and
probabilities with PyTorch.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from google.protobuf import json_format, text_format
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2 as mc

from model_repository.build import ExportedModel, ServingConfig, build_repository
from model_repository.python_models import onnx_model
from model_repository.server import TritonServer
from pipelines.export import ExportConfig, logmel_tables
from training.features import LogMel, LogMelConfig
from training.models import ModelConfig, build_model

LABELS = ("dog", "rain", "sea_waves")
N_MELS, SAMPLE_RATE, CLIP = 64, 22050, 22050 * 5
FRONT_END = LogMel(LogMelConfig(sample_rate=SAMPLE_RATE, n_mels=N_MELS)).eval()
LOGMEL_TOLERANCE_DB = ExportConfig().logmel_tolerance_db


def tiny_classifier_onnx(path: Path, n_classes: int = len(LABELS)) -> Path:
    """(batch, n_mels, frames) -> mean over time -> linear -> softmax, as an ONNX file."""
    weights = np.random.default_rng(0).normal(size=(N_MELS, n_classes)).astype(np.float32) / 100
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["LOGMEL"], ["pooled"], axes=[2], keepdims=0),
         helper.make_node("MatMul", ["pooled", "W"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["PROBABILITIES"], axis=1)],
        "tiny",
        [helper.make_tensor_value_info("LOGMEL", TensorProto.FLOAT, ["batch", N_MELS, "frames"])],
        [helper.make_tensor_value_info("PROBABILITIES", TensorProto.FLOAT, ["batch", n_classes])],
        [helper.make_tensor("W", TensorProto.FLOAT, weights.shape, weights.ravel())],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return path


def exported(tmp_path: Path) -> ExportedModel:
    tmp_path.mkdir(parents=True, exist_ok=True)
    onnx_file = tiny_classifier_onnx(tmp_path / "classifier.onnx")
    wave = np.random.default_rng(1).normal(0, 0.1, CLIP).astype(np.float32)
    with torch.no_grad():
        mel = FRONT_END(torch.from_numpy(wave)[None])[0].numpy()
    return ExportedModel(onnx_file, onnx_file, LABELS, SAMPLE_RATE, 5.0, N_MELS,
                         logmel_tables(FRONT_END), warmup_waveform=wave, warmup_logmel=mel)


def build(tmp_path: Path, target: str, **serving) -> Path:
    return build_repository(tmp_path / "repo", exported(tmp_path), ServingConfig(**serving), target)


def parse(repo: Path, name: str, variant: str = "") -> mc.ModelConfig:
    path = repo / name / "configs" / f"{variant}.pbtxt" if variant else repo / name / "config.pbtxt"
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def io(config: mc.ModelConfig) -> dict[str, tuple[int, list[int]]]:
    return {t.name: (t.data_type, list(t.dims)) for t in [*config.input, *config.output]}


@pytest.mark.parametrize(("target", "variant"), [("embedded", ""), ("native", ""), ("native", "cpu")])
def test_ensemble_steps_chain_tensor_names_types_and_dims(tmp_path: Path, target: str, variant: str) -> None:
    repo = build(tmp_path, target, preferred_batch_sizes=[4, 8], max_queue_delay_us=300)
    ensemble = parse(repo, "esc")
    assert not (repo / "esc" / "configs").exists()  # Triton falls back to config.pbtxt
    models = {step.model_name: parse(repo, step.model_name, variant)
              for step in ensemble.ensemble_scheduling.step}
    assert list(models) == ["logmel", "classifier"]
    ensemble_io = io(ensemble)
    produced = {name: ensemble_io[name] for name in (t.name for t in ensemble.input)}
    for step in ensemble.ensemble_scheduling.step:
        model_io = io(models[step.model_name])
        for model_tensor, ensemble_tensor in step.input_map.items():
            assert produced[ensemble_tensor] == model_io[model_tensor]
        for model_tensor, ensemble_tensor in step.output_map.items():
            produced[ensemble_tensor] = model_io[model_tensor]
    for out in ensemble.output:
        assert produced[out.name] == ensemble_io[out.name]
    assert ensemble_io["PROBABILITIES"] == (mc.TYPE_FP32, [len(LABELS)])
    assert all(m.max_batch_size == ensemble.max_batch_size == 32 for m in models.values())
    for m in models.values():
        assert m.dynamic_batching.max_queue_delay_microseconds == 300
        assert list(m.dynamic_batching.preferred_batch_size) == [4, 8]


def test_embedded_target_runs_the_python_backend_with_the_chosen_log_mel(tmp_path: Path) -> None:
    fft_repo = build(tmp_path / "n", "embedded", logmel_engine="fft", intra_op_threads=2,
                       execution_mode="parallel", allow_spinning=True, keep_freed_memory_mb=64)
    logmel = parse(fft_repo, "logmel")
    params = {k: v.string_value for k, v in logmel.parameters.items()}
    assert logmel.backend == "python" and params["engine"] == "fft_logmel"
    assert (params["intra_op_threads"], params["execution_mode"], params["allow_spinning"],
            params["keep_freed_memory_mb"]) == ("2", "parallel", "1", "64")
    assert sorted(p.name for p in (fft_repo / "logmel" / "1").iterdir()) == ["logmel.npz", "model.py"]
    assert (fft_repo / "classifier" / "1" / "model.onnx").is_file()
    onnx_repo = build(tmp_path / "o", "embedded", logmel_engine="onnxruntime")
    assert parse(onnx_repo, "logmel").parameters["engine"].string_value == "onnxruntime"
    assert sorted(p.name for p in (onnx_repo / "logmel" / "1").iterdir()) == ["model.onnx", "model.py"]
    for name in ("logmel", "classifier", "esc"):
        assert io(parse(fft_repo, name)) == io(parse(onnx_repo, name))


def test_native_target_uses_tensorrt_on_gpu_with_cache_profiles_and_real_warmup(tmp_path: Path) -> None:
    model = exported(tmp_path)
    repo = build_repository(tmp_path / "repo", model, ServingConfig(max_seconds=10.0, preferred_batch_sizes=(8,)),
                            "native")
    hop = int(model.logmel_tables["hop_length"])
    frames = 1 + CLIP // hop
    max_frames = 1 + 10 * SAMPLE_RATE // hop
    expected = {
        "logmel": ("FP32", "WAVEFORM", ["1x1", f"8x{CLIP}", f"32x{10 * SAMPLE_RATE}"], model.warmup_waveform),
        "classifier": ("FP16", "LOGMEL", [f"1x{N_MELS}x1", f"8x{N_MELS}x{frames}", f"32x{N_MELS}x{max_frames}"],
                       model.warmup_logmel),
    }
    for name, (precision, tensor, shapes, sample) in expected.items():
        config = parse(repo, name)
        assert config.platform == "onnxruntime_onnx" and not config.backend
        assert [(g.kind, g.count) for g in config.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 1)]
        (trt,) = config.optimization.execution_accelerators.gpu_execution_accelerator
        assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == precision
        assert trt.parameters["trt_engine_cache_enable"] == "1"
        assert trt.parameters["trt_engine_cache_path"] == f"/cache/tensorrt/{name}"
        assert [trt.parameters[f"trt_profile_{s}_shapes"] for s in ("min", "opt", "max")] == \
            [f"{tensor}:{shape}" for shape in shapes]
        assert [w.batch_size for w in config.model_warmup] == [1, 8]
        for warmup in config.model_warmup:
            (inp,) = warmup.inputs.values()
            assert list(inp.dims) == list(sample.shape) and inp.data_type == mc.TYPE_FP32
            raw = np.fromfile(repo / name / "warmup" / inp.input_data_file, "<f4")
            np.testing.assert_array_equal(raw, sample.ravel())  # the real clip, not random data
        assert not (repo / name / "1" / "model.py").exists()
        cpu = parse(repo, name, "cpu")
        assert [(g.kind, g.count) for g in cpu.instance_group] == [(mc.ModelInstanceGroup.KIND_CPU, 1)]
        assert not cpu.optimization.execution_accelerators.gpu_execution_accelerator
        assert cpu.parameters["intra_op_thread_count"].string_value == "2"
        assert io(cpu) == io(config) and len(cpu.model_warmup) == 2


def test_ensemble_parameters_tell_clients_how_to_prepare_audio(tmp_path: Path) -> None:
    repo = build(tmp_path, "embedded", max_seconds=2.0, device="gpu", instances=2)
    params = {k: v.string_value for k, v in parse(repo, "esc").parameters.items()}
    assert params == {"sample_rate": "22050", "clip_seconds": "5.0", "labels": json.dumps(list(LABELS))}
    logmel = parse(repo, "logmel")
    assert logmel.parameters["max_input_elements"].string_value == str(2 * 22050)
    assert logmel.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert logmel.instance_group[0].count == 2
    assert (repo / "classifier" / "labels.txt").read_text().split() == list(LABELS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_batch_size": 0}, "max_batch_size >= 1"), ({"device": "tpu"}, "device must be one of"),
     ({"max_seconds": 0.0}, "max_seconds must be positive"),
     ({"preferred_batch_sizes": (4, 33)}, r"preferred_batch_sizes .* got \[4, 33\]"),
     ({"preferred_batch_sizes": (8, 4)}, "must be increasing"),
     ({"preferred_batch_sizes": (0,)}, r"each in \[1, max_batch_size=32\]"),
     ({"intra_op_threads": -1}, "must be >= 0"), ({"execution_mode": "async"}, "execution_mode must be"),
     ({"graph_optimization": "max"}, "graph_optimization must be"),
     ({"logmel_engine": "torch"}, "logmel_engine must be"), ({"trt_precision": "INT8"}, "trt_precision must be"),
     ({"trt_cache_dir": "cache"}, "trt_cache_dir must be an absolute path")],
)
def test_serving_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServingConfig(**kwargs)


def test_int8_precision_serves_the_quantised_classifier_on_cpu_only(tmp_path: Path) -> None:
    model = exported(tmp_path)
    int8_file = tmp_path / "classifier_int8.onnx"
    int8_file.write_bytes(b"stands for the quantised model")  # the builder copies, never parses it
    quantised = ExportedModel(**{**vars(model), "classifier_int8_onnx": int8_file})
    repo = build_repository(tmp_path / "int8", quantised, ServingConfig(classifier_precision="int8"))
    assert (repo / "classifier" / "1" / "model.onnx").read_bytes() == int8_file.read_bytes()
    native = build_repository(tmp_path / "native", quantised, ServingConfig(classifier_precision="int8"), "native")
    assert (native / "classifier" / "1" / "model.onnx").read_bytes() == model.classifier_onnx.read_bytes()
    with pytest.raises(FileNotFoundError, match="classifier_precision=int8 needs the INT8 classifier"):
        build_repository(tmp_path / "none", model, ServingConfig(classifier_precision="int8"))
    with pytest.raises(ValueError, match="int8 is for CPU instances"):
        ServingConfig(classifier_precision="int8", device="gpu")


def test_int8_is_served_only_when_it_agrees_with_fp32() -> None:
    from pipelines.export import ParityError, check_int8

    cfg = ExportConfig(int8_min_agreement=0.97)
    report = {"int8_top1_agreement": 0.9625, "int8_eval_clips": 80}
    check_int8(report, cfg, ServingConfig())  # FP32 served: INT8 is only measured
    check_int8({**report, "int8_top1_agreement": 0.97}, cfg, ServingConfig(classifier_precision="int8"))
    with pytest.raises(ParityError, match=r"96.2% of 80 held-out clips, below export.int8_min_agreement=0.97"):
        check_int8(report, cfg, ServingConfig(classifier_precision="int8"))
    with pytest.raises(ValueError, match="int8_min_agreement must be in"):
        ExportConfig(int8_min_agreement=1.5)


def test_serving_config_accepts_the_limits() -> None:
    ServingConfig(preferred_batch_sizes=(1, 32), intra_op_threads=0, inter_op_threads=0, max_queue_delay_us=0)


def test_unknown_target_bad_export_and_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="target must be one of"):
        build(tmp_path, "docker")
    model = exported(tmp_path)
    with pytest.raises(ValueError, match=r"logmel_tables lacks \['window'\]"):
        ExportedModel(**{**vars(model), "logmel_tables": {k: v for k, v in model.logmel_tables.items()
                                                          if k != "window"}})
    with pytest.raises(ValueError, match="warmup needs a waveform"):
        ExportedModel(**{**vars(model), "warmup_waveform": model.warmup_waveform[None]})
    with pytest.raises(FileNotFoundError, match="dvc repro export"):
        TritonServer(tmp_path / "nowhere")


# --- the Python-backend model, with a stand-in for triton_python_backend_utils ---------------

class FakeTensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


class FakeError:
    INVALID_ARG = "INVALID_ARG"

    def __init__(self, message: str, code: str | None = None) -> None:
        self.message, self.code = message, code


class FakeResponse:
    def __init__(self, output_tensors: list | None = None, error: FakeError | None = None) -> None:
        self.outputs = {t.name: t.array for t in output_tensors or []}
        self.error = error


FAKE_PB_UTILS = types.SimpleNamespace(
    Tensor=FakeTensor, TritonError=FakeError, InferenceResponse=FakeResponse,
    get_input_tensor_by_name=lambda request, name: request[name],
)


class CountingSession:
    def __init__(self, session) -> None:
        self.session, self.batches = session, []

    def run(self, outputs, feeds):
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.session.run(outputs, feeds)


def served_model(repo: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> onnx_model.TritonPythonModel:
    monkeypatch.setattr(onnx_model, "pb_utils", FAKE_PB_UTILS)
    model = onnx_model.TritonPythonModel()
    config = json_format.MessageToDict(parse(repo, name), preserving_proto_field_name=True)
    model.initialize({"model_config": json.dumps(config), "model_name": name,
                      "model_repository": str(repo / name), "model_version": "1",
                      "model_instance_kind": "CPU"})
    model.session = CountingSession(model.session)
    return model


@pytest.mark.parametrize("engine", ["fft", "onnxruntime"])
def test_equal_shapes_run_as_one_batch_and_a_bad_request_fails_alone(tmp_path, monkeypatch, engine) -> None:
    if engine == "onnxruntime":  # the tiny stand-in classifier plays the ONNX model
        repo = build(tmp_path, "embedded", logmel_engine=engine)
        name, inp, out = "classifier", "LOGMEL", "PROBABILITIES"
        shape, other = (1, N_MELS, 216), (2, N_MELS, 50)
    else:
        repo = build(tmp_path, "embedded", max_seconds=1.0)
        name, inp, out = "logmel", "WAVEFORM", "LOGMEL"
        shape, other = (1, SAMPLE_RATE), (2, 1000)
    model = served_model(repo, name, monkeypatch)
    rng = np.random.default_rng(0)
    arrays = [rng.normal(0, 0.1, shape).astype(np.float32) for _ in range(3)]
    arrays.append(rng.normal(0, 0.1, other).astype(np.float32))
    nan = arrays[0].copy()
    nan[0, 0] = np.nan
    responses = model.execute([{inp: FakeTensor(inp, a)} for a in [arrays[0], nan, *arrays[1:]]])
    assert model.session.batches == [3, 2]  # the three equal shapes together, the other apart
    assert responses[1].error.code == "INVALID_ARG" and "NaN" in responses[1].error.message
    good = [r for i, r in enumerate(responses) if i != 1]
    assert all(r.error is None for r in good)
    alone = [model.session.session.run([out], {inp: a})[0] for a in arrays]
    for response, expected in zip(good, alone):
        np.testing.assert_allclose(response.outputs[out], expected, rtol=0, atol=1e-5)
    if engine == "fft":  # one item over max_input_elements, one at the limit
        over, limit = model.execute([{inp: FakeTensor(inp, np.zeros((1, n), np.float32))}
                                     for n in (SAMPLE_RATE + 1, SAMPLE_RATE)])
        assert over.error.code == "INVALID_ARG" and "more than the 22050" in over.error.message
        assert limit.error is None


def test_unknown_engine_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = build(tmp_path, "embedded")
    path = repo / "logmel" / "config.pbtxt"
    path.write_text(path.read_text().replace('"fft_logmel"', '"torch"'))
    with pytest.raises(ValueError, match="engine must be one of"):
        served_model(repo, "logmel", monkeypatch)


@pytest.mark.parametrize("samples", [1, 511, 512, 4097, CLIP])
def test_fft_log_mel_matches_the_training_front_end(samples: int) -> None:
    """Served log-mel (FFT engine) vs training.features.LogMel, and the probabilities they lead to."""
    wave = np.random.default_rng(samples).normal(0, 0.1, (2, samples)).astype(np.float32)
    wave[1] *= 1e-3  # a quiet clip: low-energy bins, where float32 DFTs differ most
    (served,) = onnx_model.FFTLogMel(logmel_tables(FRONT_END)).run(["LOGMEL"], {"WAVEFORM": wave})
    with torch.no_grad():
        reference = FRONT_END(torch.from_numpy(wave)).numpy()
        torch.manual_seed(0)
        network = build_model(ModelConfig(widths=(8, 16), stem_channels=8), N_MELS, len(LABELS)).eval()
        probs = [torch.softmax(network(torch.from_numpy(m)), -1).numpy() for m in (served, reference)]
    assert served.shape == reference.shape == (2, N_MELS, 1 + samples // 512) and served.dtype == np.float32
    np.testing.assert_allclose(served, reference, rtol=0, atol=LOGMEL_TOLERANCE_DB)
    np.testing.assert_allclose(probs[0], probs[1], rtol=0, atol=1e-4)


@pytest.mark.parametrize(("mean_norm", "pooling", "pcen_frames", "cepstra", "freq_norm"), [
    (False, "mean", 0.0, 0, 0.0), (True, "mean", 0.0, 0, 0.0), (False, "bands", 0.0, 0, 0.0),
    (False, "stats", 0.0, 0, 0.0), (False, "meanmax", 0.0, 0, 0.0),
    (False, "mean", 4.0, 0, 0.0), (False, "mean", 0.0, 12, 0.0), (False, "mean", 0.0, 12, 0.5),
])
def test_exported_classifier_keeps_the_per_clip_level_normalisation(tmp_path: Path, mean_norm: bool, pooling: str,
                                                                    pcen_frames: float, cepstra: int,
                                                                    freq_norm: float) -> None:
    """``model.top_db`` (and ``mean_norm``, ``pooling``, ``pcen_frames``, ``cepstra``, ``freq_norm``): the ONNX
    classifier reproduces PyTorch, also for clips 40 dB apart and of another length than the one exported."""
    import onnxruntime as ort

    from pipelines.export import export_onnx
    from training.models import Classifier

    torch.manual_seed(0)
    cfg = ModelConfig(widths=(8, 16), stem_channels=8, top_db=80.0, mean_norm=mean_norm, pooling=pooling,
                      pcen_frames=pcen_frames, cepstra=cepstra, freq_norm=freq_norm)
    network = build_model(cfg, N_MELS, len(LABELS))
    classifier = Classifier(network).eval()
    mels = torch.randn(3, N_MELS, 50) * 10 - 50
    mels[1] -= 40.0  # recorded 40 dB lower
    path = export_onnx(classifier, mels, tmp_path / "classifier.onnx", ("LOGMEL", "PROBABILITIES"),
                       time_axis=2, opset=20)
    (served,) = ort.InferenceSession(str(path)).run(None, {"LOGMEL": mels[:, :, :37].numpy()})
    with torch.no_grad():
        reference = classifier(mels[:, :, :37]).numpy()
        level_free = classifier(mels[:, :, :37] + 25.0).numpy()
    np.testing.assert_allclose(served, reference, rtol=0, atol=1e-5)
    np.testing.assert_allclose(level_free, reference, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_served_log_mel_and_probabilities_match_pytorch(triton, pipeline_run) -> None:
    from client.triton import EscClient
    from tests.conftest import ESC10
    from training.checkpoint import load_checkpoint

    trained = load_checkpoint(pipeline_run.root / "models" / "model.pt")
    clips = sorted((ESC10 / "audio").rglob("*.ogg"))[::97][:4]
    with EscClient(triton.grpc_url, "grpc") as client:
        waves = [client.load(clip) for clip in clips]
        waves.append(waves[0][: len(waves[0]) // 3 + 7])  # an odd, shorter length
        for wave in waves:
            probs, logmel = client.infer(wave[None])
            with torch.no_grad():
                batch = torch.from_numpy(wave)[None]
                np.testing.assert_allclose(logmel, trained.front_end(batch).numpy(), rtol=0,
                                           atol=LOGMEL_TOLERANCE_DB)
                np.testing.assert_allclose(probs, trained.predict_proba(batch).numpy(), rtol=0, atol=1e-4)


PAGE_FAULTS = """
import resource, sys
import numpy as np
from model_repository.python_models.onnx_model import keep_freed_memory, logmel_fft
took = keep_freed_memory(int(sys.argv[1]))
rng = np.random.default_rng(0)
wave = rng.normal(size=(2, 110250)).astype(np.float32)
tables = (np.hanning(1024).astype(np.float32), rng.random((64, 513), dtype=np.float32), 512, 1e-10)
logmel_fft(wave, *tables)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    logmel_fft(wave, *tables)
print(took, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_kept_freed_memory_spares_the_log_mel_its_page_faults() -> None:
    """In a fresh process (as a stub is), glibc's defaults map and unmap the log-mel's large
    arrays on every call; with ``keep_freed_memory`` they stay in the heap."""
    def faults(megabytes: int) -> tuple[str, float]:
        out = subprocess.run([sys.executable, "-c", PAGE_FAULTS, str(megabytes)], check=True,
                             capture_output=True, text=True, cwd=Path(__file__).parents[1]).stdout.split()
        return out[0], float(out[1])

    (took_default, default), (took, kept) = faults(0), faults(64)
    assert (took_default, took) == ("False", "True")
    assert default > 100 and kept < default / 20, (default, kept)
    with pytest.raises(ValueError, match="keep_freed_memory_mb"):
        ServingConfig(keep_freed_memory_mb=-1)


def test_int8_keeps_pcen_float(tmp_path: Path) -> None:
    """PCEN's moving average over band powers stays float in the INT8 classifier: no node of it reads a
    dequantised tensor, while the convolutions after it do. Without the exporter's module hierarchy
    the stage refuses, rather than quantise PCEN."""
    import onnx

    from pipelines.export import export_onnx, nodes_of, quantize_int8
    from training.models import PCEN, Classifier

    torch.manual_seed(0)
    cfg = ModelConfig(name="cnn", widths=(8, 16), hidden=16, pcen_frames=17.0)
    classifier = Classifier(build_model(cfg, N_MELS, len(LABELS))).eval()
    mels = torch.randn(8, N_MELS, 40) * 10 - 50
    fp32 = export_onnx(classifier, mels, tmp_path / "classifier.onnx", ("LOGMEL", "PROBABILITIES"),
                       time_axis=2, opset=20)
    assert quantize_int8(fp32, mels.numpy(), tmp_path / "int8.onnx", has_pcen=True) > 0

    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    dequantised = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    pcen = set(nodes_of(onnx.load(str(fp32)), PCEN))
    assert pcen and "Conv" in {n.op_type for n in graph.node if n.name in pcen}
    assert not [n.name for n in graph.node if n.name in pcen and dequantised & set(n.input)]
    assert [n.name for n in graph.node if n.op_type == "Conv" and n.name not in pcen and dequantised & set(n.input)]

    bare = onnx.load(str(fp32))
    for node in bare.graph.node:
        del node.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(RuntimeError, match="PCEN cannot be kept out of INT8"):
        quantize_int8(tmp_path / "bare.onnx", mels.numpy(), tmp_path / "bare_int8.onnx", has_pcen=True)


def test_int8_quantises_a_level_normalised_classifier(tmp_path: Path) -> None:
    """``model.top_db`` (with ``cepstra``): the INT8 classifier is built, its convolutions read quantised
    tensors, and it agrees with FP32 on clips 30 dB apart."""
    import onnx
    import onnxruntime as ort

    from pipelines.export import export_onnx, quantize_int8
    from training.models import Classifier

    torch.manual_seed(0)
    cfg = ModelConfig(widths=(8, 16), stem_channels=8, top_db=80.0, cepstra=12)
    classifier = Classifier(build_model(cfg, N_MELS, len(LABELS))).eval()
    mels = torch.randn(16, N_MELS, 40) * 10 - 50
    mels[8:] -= 30.0
    fp32 = export_onnx(classifier, mels, tmp_path / "classifier.onnx", ("LOGMEL", "PROBABILITIES"),
                       time_axis=2, opset=20)
    assert quantize_int8(fp32, mels.numpy(), tmp_path / "int8.onnx") == 0
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    dequantised = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    assert [n.name for n in graph.node if n.op_type == "Conv" and dequantised & set(n.input)]
    probs = [ort.InferenceSession(str(p)).run(None, {"LOGMEL": mels.numpy()})[0]
             for p in (fp32, tmp_path / "int8.onnx")]
    np.testing.assert_array_equal(probs[1].argmax(1), probs[0].argmax(1))
    np.testing.assert_allclose(probs[1], probs[0], rtol=0, atol=0.05)
