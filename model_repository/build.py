"""Assemble a Triton model repository: `logmel` + `classifier` models and the `esc` ensemble.

Configs are built as Triton ``ModelConfig`` protobuf messages (shipped in tritonclient) and
written as text, so every ``config.pbtxt`` is valid by construction. Two targets share the same
ONNX files and tensor names:

- ``embedded``: Python-backend models running onnxruntime (the pip-installed ``tritonserver``
  has only the Python backend); CPU or GPU instances.
- ``native``: Triton's own onnxruntime backend, for the official Triton container.

Layout::

    <out>/logmel/{config.pbtxt, 1/model.onnx[, 1/model.py]}
    <out>/classifier/{config.pbtxt, labels.txt, 1/model.onnx[, 1/model.py]}
    <out>/esc/{config.pbtxt, labels.txt, 1/README.md}
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

PYTHON_MODEL = Path(__file__).parent / "python_models" / "onnx_model.py"
ENSEMBLE, LOGMEL, CLASSIFIER = "esc", "logmel", "classifier"
WAVEFORM, LOGMEL_T, PROBABILITIES = "WAVEFORM", "LOGMEL", "PROBABILITIES"
TARGETS = ("embedded", "native")


@dataclass(frozen=True)
class ServingConfig:
    max_batch_size: int = 32
    max_queue_delay_us: int = 2000
    instances: int = 1
    intra_op_threads: int = 1
    max_seconds: float = 60.0  # longest waveform the ensemble accepts
    device: str = "cpu"  # cpu | gpu

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.instances < 1 or self.max_queue_delay_us < 0:
            raise ValueError(
                "need max_batch_size >= 1, instances >= 1, max_queue_delay_us >= 0; got "
                f"{self.max_batch_size}, {self.instances}, {self.max_queue_delay_us}"
            )
        if self.device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {self.device!r}")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds}")


def _tensor(cls, name: str, dims: list[int], **fields):
    return cls(name=name, data_type=mc.TYPE_FP32, dims=dims, **fields)


def onnx_model_config(
    name: str,
    inp: tuple[str, list[int]],
    out: tuple[str, list[int]],
    cfg: ServingConfig,
    target: str,
    max_input_elements: int = 0,
    label_filename: str = "",
) -> mc.ModelConfig:
    config = mc.ModelConfig(
        name=name,
        max_batch_size=cfg.max_batch_size,
        input=[_tensor(mc.ModelInput, *inp)],
        output=[_tensor(mc.ModelOutput, *out, label_filename=label_filename)],
        dynamic_batching=mc.ModelDynamicBatching(max_queue_delay_microseconds=cfg.max_queue_delay_us),
        instance_group=[
            mc.ModelInstanceGroup(
                count=cfg.instances,
                kind=mc.ModelInstanceGroup.KIND_GPU if cfg.device == "gpu" else mc.ModelInstanceGroup.KIND_CPU,
            )
        ],
    )
    if target == "embedded":
        config.backend = "python"
        config.parameters["intra_op_threads"].string_value = str(cfg.intra_op_threads)
        if max_input_elements:
            config.parameters["max_input_elements"].string_value = str(max_input_elements)
    else:
        config.platform = "onnxruntime_onnx"
        config.parameters["intra_op_thread_count"].string_value = str(cfg.intra_op_threads)
    return config


def ensemble_config(
    n_mels: int, labels: list[str], sample_rate: int, clip_seconds: float, cfg: ServingConfig
) -> mc.ModelConfig:
    config = mc.ModelConfig(
        name=ENSEMBLE,
        platform="ensemble",
        max_batch_size=cfg.max_batch_size,
        input=[_tensor(mc.ModelInput, WAVEFORM, [-1])],
        output=[
            _tensor(mc.ModelOutput, PROBABILITIES, [len(labels)], label_filename="labels.txt"),
            _tensor(mc.ModelOutput, LOGMEL_T, [n_mels, -1]),
        ],
    )
    step = mc.ModelEnsembling.Step
    config.ensemble_scheduling.step.extend([
        step(model_name=LOGMEL, model_version=-1,
             input_map={WAVEFORM: WAVEFORM}, output_map={LOGMEL_T: LOGMEL_T}),
        step(model_name=CLASSIFIER, model_version=-1,
             input_map={LOGMEL_T: LOGMEL_T}, output_map={PROBABILITIES: PROBABILITIES}),
    ])
    # Clients read these to prepare audio as in training and to name classes (Triton's
    # classification extension does not apply to ensemble outputs).
    config.parameters["sample_rate"].string_value = str(sample_rate)
    config.parameters["clip_seconds"].string_value = str(clip_seconds)
    config.parameters["labels"].string_value = json.dumps(labels)
    return config


def write_config(model_dir: Path, config: mc.ModelConfig) -> None:
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(config))


def build_repository(
    out: Path,
    logmel_onnx: Path,
    classifier_onnx: Path,
    labels: list[str],
    sample_rate: int,
    clip_seconds: float,
    n_mels: int,
    cfg: ServingConfig,
    target: str = "embedded",
) -> Path:
    """Write the repository to ``out`` (replaced if present) and return it."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if out.exists():
        shutil.rmtree(out)
    labels_text = "\n".join(labels) + "\n"
    max_samples = int(cfg.max_seconds * sample_rate)
    models = {
        LOGMEL: (logmel_onnx, onnx_model_config(
            LOGMEL, (WAVEFORM, [-1]), (LOGMEL_T, [n_mels, -1]), cfg, target,
            max_input_elements=max_samples)),
        CLASSIFIER: (classifier_onnx, onnx_model_config(
            CLASSIFIER, (LOGMEL_T, [n_mels, -1]), (PROBABILITIES, [len(labels)]), cfg, target,
            label_filename="labels.txt")),
    }
    for name, (onnx_file, config) in models.items():
        version = out / name / "1"
        version.mkdir(parents=True)
        shutil.copy(onnx_file, version / "model.onnx")
        if target == "embedded":
            shutil.copy(PYTHON_MODEL, version / "model.py")
        write_config(out / name, config)
    (out / CLASSIFIER / "labels.txt").write_text(labels_text)
    (out / ENSEMBLE / "1").mkdir(parents=True)
    # DVC does not restore empty directories, and Triton needs the version directory.
    (out / ENSEMBLE / "1" / "README.md").write_text(
        "The `esc` ensemble has no weights of its own; see ../config.pbtxt.\n"
    )
    (out / ENSEMBLE / "labels.txt").write_text(labels_text)
    write_config(out / ENSEMBLE, ensemble_config(n_mels, labels, sample_rate, clip_seconds, cfg))
    return out
