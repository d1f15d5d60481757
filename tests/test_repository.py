"""Model repository configs, parsed back with Triton's own ModelConfig protobuf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from model_repository.build import ServingConfig, build_repository
from model_repository.server import TritonServer

LABELS = ["dog", "rain", "sea_waves"]


def build(tmp_path: Path, target: str, **serving) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    onnx = tmp_path / "stand-in.onnx"  # the builder copies files; it does not read them
    onnx.write_bytes(b"onnx")
    return build_repository(tmp_path / "repo", onnx, onnx, LABELS, sample_rate=22050,
                            clip_seconds=5.0, n_mels=64, cfg=ServingConfig(**serving), target=target)


def parse(repo: Path, name: str) -> mc.ModelConfig:
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), mc.ModelConfig())


def io(config: mc.ModelConfig) -> dict[str, tuple[int, list[int]]]:
    return {t.name: (t.data_type, list(t.dims)) for t in [*config.input, *config.output]}


@pytest.mark.parametrize("target", ["embedded", "native"])
def test_ensemble_steps_chain_tensor_names_types_and_dims(tmp_path: Path, target: str) -> None:
    repo = build(tmp_path, target)
    ensemble = parse(repo, "esc")
    models = {step.model_name: parse(repo, step.model_name) for step in ensemble.ensemble_scheduling.step}
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
    assert all(m.dynamic_batching.max_queue_delay_microseconds == 2000 for m in models.values())


def test_targets_differ_only_in_how_onnx_runs(tmp_path: Path) -> None:
    embedded, native = build(tmp_path / "e", "embedded"), build(tmp_path / "n", "native")
    assert parse(embedded, "logmel").backend == "python"
    assert (embedded / "logmel" / "1" / "model.py").is_file()
    assert parse(native, "logmel").platform == "onnxruntime_onnx"
    assert not (native / "logmel" / "1" / "model.py").exists()
    for name in ("logmel", "classifier", "esc"):
        assert io(parse(embedded, name)) == io(parse(native, name))


def test_ensemble_parameters_tell_clients_how_to_prepare_audio(tmp_path: Path) -> None:
    repo = build(tmp_path, "embedded", max_seconds=2.0, device="gpu", instances=2)
    params = {k: v.string_value for k, v in parse(repo, "esc").parameters.items()}
    assert params == {"sample_rate": "22050", "clip_seconds": "5.0", "labels": json.dumps(LABELS)}
    logmel = parse(repo, "logmel")
    assert logmel.parameters["max_input_elements"].string_value == str(2 * 22050)
    assert logmel.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert logmel.instance_group[0].count == 2
    assert (repo / "classifier" / "labels.txt").read_text().split() == LABELS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_batch_size": 0}, "max_batch_size >= 1"), ({"device": "tpu"}, "device must be"),
     ({"max_seconds": 0.0}, "max_seconds must be positive")],
)
def test_serving_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServingConfig(**kwargs)


def test_unknown_target_and_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="target must be one of"):
        build(tmp_path, "docker")
    with pytest.raises(FileNotFoundError, match="dvc repro export"):
        TritonServer(tmp_path / "nowhere")
