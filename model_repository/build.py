"""Assemble a Triton model repository: `logmel` + `classifier` models and the `esc` ensemble.

Configs are built as Triton ``ModelConfig`` protobuf messages (shipped in tritonclient) and
written as text, so every ``config.pbtxt`` is valid by construction. Two targets come from the
same export (ONNX files, log-mel tables, tensor names, batching settings):

- ``embedded``: Python-backend models (``python_models/onnx_model.py``) for the pip-installed
  ``tritonserver``, which has only the Python backend; CPU or GPU instances. The log-mel runs as
  ONNX through onnxruntime or, by default, as a real FFT from the tables of ``LogMel``
  (``serving.logmel_engine``).
- ``native``: Triton's own onnxruntime backend (``platform: onnxruntime_onnx``) for the official
  container: ``KIND_GPU`` instances with the TensorRT execution accelerator, an engine cache,
  explicit optimisation profiles and ``model_warmup`` on a real clip. The classifier runs in
  ``serving.trt_precision`` (FP16 by default); the log-mel stays FP32, because its power
  spectrum exceeds FP16's range (max 65504) and its floor (1e-10) is below FP16's smallest
  value. ``<model>/configs/cpu.pbtxt`` is the CPU variant, picked with
  ``tritonserver --model-config-name=cpu``.

Layout::

    <out>/logmel/{config.pbtxt, 1/model.py + 1/logmel.npz or 1/model.onnx[ + 1/model.py],
                 [configs/cpu.pbtxt, warmup/WAVEFORM]}
    <out>/classifier/{config.pbtxt, labels.txt, 1/model.onnx[, 1/model.py][, configs/cpu.pbtxt, warmup/LOGMEL]}
    <out>/esc/{config.pbtxt, labels.txt, 1/README.md}

Not covered: building TensorRT engines ahead of time (the cache fills on first load).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

PYTHON_MODEL = Path(__file__).parent / "python_models" / "onnx_model.py"
ENSEMBLE, LOGMEL, CLASSIFIER = "esc", "logmel", "classifier"
WAVEFORM, LOGMEL_T, PROBABILITIES = "WAVEFORM", "LOGMEL", "PROBABILITIES"
TARGETS = ("embedded", "native")
CPU_VARIANT = "cpu"  # native: <model>/configs/cpu.pbtxt, `tritonserver --model-config-name=cpu`
LOGMEL_ENGINES = {"fft": "fft_logmel", "onnxruntime": "onnxruntime"}  # params -> model.py
EXECUTION_MODES = ("sequential", "parallel")
GRAPH_LEVELS = {"basic": -1, "extended": 1, "disable": 2, "all": None}  # native `optimization.graph.level`
LOGMEL_TABLES = ("window", "filterbank", "hop_length", "log_floor")


@dataclass(frozen=True)
class ServingConfig:
    max_batch_size: int = 32
    # Defaults tuned on 2 CPU cores (docs/benchmarks.md): no queue delay (batches still form from
    # what queued while an instance was busy) keeps the two ensemble steps overlapping at low load;
    # two onnxruntime threads let the classifier use both cores.
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()  # dynamic batcher; () = as large as the queue allows
    instances: int = 1  # per model (logmel, classifier)
    intra_op_threads: int = 2  # onnxruntime threads per instance; 0 = one per core
    inter_op_threads: int = 1
    execution_mode: str = "sequential"  # sequential | parallel (onnxruntime)
    graph_optimization: str = "all"  # disable | basic | extended | all (onnxruntime)
    allow_spinning: bool = False  # onnxruntime threads busy-wait between runs (embedded only)
    keep_freed_memory_mb: int = 256  # embedded stubs: glibc malloc keeps freed memory (0 = its defaults)
    logmel_engine: str = "fft"  # embedded log-mel: fft (python_models/onnx_model.py) | onnxruntime
    max_seconds: float = 60.0  # longest waveform the ensemble accepts
    device: str = "cpu"  # embedded instances: cpu | gpu (native is always KIND_GPU, or `cpu` variant)
    classifier_precision: str = "fp32"  # embedded classifier: fp32 | int8 (CPU only; export.int8_*)
    trt_precision: str = "FP16"  # native classifier: FP16 | FP32
    trt_cache_dir: str = "/cache/tensorrt"  # native: TensorRT engine cache, one subdirectory per model

    def __post_init__(self) -> None:
        if (self.max_batch_size < 1 or self.instances < 1 or self.max_queue_delay_us < 0
                or self.keep_freed_memory_mb < 0):
            raise ValueError(
                "need max_batch_size >= 1, instances >= 1, max_queue_delay_us >= 0, "
                f"keep_freed_memory_mb >= 0; got {self.max_batch_size}, {self.instances}, "
                f"{self.max_queue_delay_us}, {self.keep_freed_memory_mb}"
            )
        sizes = list(self.preferred_batch_sizes)
        if sizes != sorted(set(sizes)) or any(not 1 <= s <= self.max_batch_size for s in sizes):
            raise ValueError(
                f"preferred_batch_sizes must be increasing, each in [1, max_batch_size="
                f"{self.max_batch_size}]; got {sizes}"
            )
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ValueError(
                f"intra_op_threads and inter_op_threads must be >= 0 (0: one per core), got "
                f"{self.intra_op_threads}, {self.inter_op_threads}"
            )
        choices = {
            "execution_mode": EXECUTION_MODES, "graph_optimization": tuple(GRAPH_LEVELS),
            "logmel_engine": tuple(LOGMEL_ENGINES), "device": ("cpu", "gpu"),
            "trt_precision": ("FP16", "FP32"), "classifier_precision": ("fp32", "int8"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.classifier_precision == "int8" and self.device != "cpu":
            raise ValueError("classifier_precision=int8 is for CPU instances (device=cpu); on a GPU "
                             "serve fp32 here or the native target (TensorRT FP16)")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds}")
        if not PurePosixPath(self.trt_cache_dir).is_absolute():
            raise ValueError(f"trt_cache_dir must be an absolute path in the container, got {self.trt_cache_dir!r}")


@dataclass(frozen=True)
class ExportedModel:
    """What the export stage hands the builder: one source of truth for both targets."""

    logmel_onnx: Path
    classifier_onnx: Path
    labels: tuple[str, ...]
    sample_rate: int
    clip_seconds: float
    n_mels: int
    # From training.features.LogMel: window (n_fft,), filterbank (n_mels, n_fft // 2 + 1),
    # hop_length and log_floor (scalars); served by the FFT log-mel engine.
    logmel_tables: dict[str, np.ndarray] = field(repr=False)
    # A real clip for model_warmup (native): waveform (samples,) and its log-mel (n_mels, frames).
    warmup_waveform: np.ndarray = field(repr=False)
    warmup_logmel: np.ndarray = field(repr=False)
    classifier_int8_onnx: Path | None = None  # INT8 quantisation of classifier_onnx, if exported

    def __post_init__(self) -> None:
        missing = sorted(set(LOGMEL_TABLES) - set(self.logmel_tables))
        if missing:
            raise ValueError(f"logmel_tables lacks {missing}; export them from training.features.LogMel")
        if self.warmup_waveform.ndim != 1 or self.warmup_logmel.shape[:1] != (self.n_mels,):
            raise ValueError(
                f"warmup needs a waveform (samples,) and its log-mel ({self.n_mels}, frames); got "
                f"{self.warmup_waveform.shape} and {self.warmup_logmel.shape}"
            )


def _tensor(cls, name: str, dims: list[int], **fields):
    return cls(name=name, data_type=mc.TYPE_FP32, dims=dims, **fields)


def _warmup(inp: str, sample: np.ndarray, batch_sizes: list[int]) -> list[mc.ModelWarmup]:
    """One warmup per batch size, all reading the real sample from ``warmup/<inp>``."""
    data = {inp: mc.ModelWarmup.Input(data_type=mc.TYPE_FP32, dims=list(sample.shape),
                                      input_data_file=inp)}
    return [mc.ModelWarmup(name=f"real_clip_batch_{b}", batch_size=b, inputs=data) for b in batch_sizes]


def _trt_profile(name: str, dims: tuple[list[int], list[int], list[int]]) -> dict[str, str]:
    shapes = ("min", "opt", "max")
    return {f"trt_profile_{s}_shapes": f"{name}:{'x'.join(map(str, d))}" for s, d in zip(shapes, dims)}


def onnx_model_config(
    name: str,
    inp: tuple[str, list[int]],
    out: tuple[str, list[int]],
    cfg: ServingConfig,
    target: str,
    variant: str = "",
    max_input_elements: int = 0,
    label_filename: str = "",
    engine: str = "onnxruntime",
    trt_precision: str = "FP32",
    trt_profile: dict[str, str] | None = None,
    warmup: list[mc.ModelWarmup] = (),
) -> mc.ModelConfig:
    """Config of one ONNX model; ``variant`` "" is the target's default, ``"cpu"`` the native CPU one."""
    gpu = cfg.device == "gpu" if target == "embedded" else variant != CPU_VARIANT
    config = mc.ModelConfig(
        name=name,
        max_batch_size=cfg.max_batch_size,
        input=[_tensor(mc.ModelInput, *inp)],
        output=[_tensor(mc.ModelOutput, *out, label_filename=label_filename)],
        dynamic_batching=mc.ModelDynamicBatching(
            max_queue_delay_microseconds=cfg.max_queue_delay_us,
            preferred_batch_size=list(cfg.preferred_batch_sizes),
        ),
        instance_group=[
            mc.ModelInstanceGroup(
                count=cfg.instances,
                kind=mc.ModelInstanceGroup.KIND_GPU if gpu else mc.ModelInstanceGroup.KIND_CPU,
            )
        ],
    )
    params = config.parameters
    if target == "embedded":
        config.backend = "python"
        settings = {
            "engine": engine, "intra_op_threads": cfg.intra_op_threads,
            "inter_op_threads": cfg.inter_op_threads, "execution_mode": cfg.execution_mode,
            "graph_optimization": cfg.graph_optimization, "allow_spinning": int(cfg.allow_spinning),
            "keep_freed_memory_mb": cfg.keep_freed_memory_mb,
        }
        if max_input_elements:
            settings["max_input_elements"] = max_input_elements
        for key, value in settings.items():
            params[key].string_value = str(value)
        return config
    config.platform = "onnxruntime_onnx"
    config.model_warmup.extend(warmup)
    params["intra_op_thread_count"].string_value = str(cfg.intra_op_threads)
    params["inter_op_thread_count"].string_value = str(cfg.inter_op_threads)
    params["execution_mode"].string_value = str(EXECUTION_MODES.index(cfg.execution_mode))
    if GRAPH_LEVELS[cfg.graph_optimization] is not None:
        config.optimization.graph.level = GRAPH_LEVELS[cfg.graph_optimization]
    if gpu:
        trt = {
            "precision_mode": trt_precision,
            "max_workspace_size_bytes": str(1 << 30),
            "trt_engine_cache_enable": "1",
            "trt_engine_cache_path": str(PurePosixPath(cfg.trt_cache_dir) / name),
            **(trt_profile or {}),
        }
        config.optimization.execution_accelerators.gpu_execution_accelerator.append(
            mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator(name="tensorrt", parameters=trt)
        )
    return config


def ensemble_config(model: ExportedModel, cfg: ServingConfig) -> mc.ModelConfig:
    config = mc.ModelConfig(
        name=ENSEMBLE,
        platform="ensemble",
        max_batch_size=cfg.max_batch_size,
        input=[_tensor(mc.ModelInput, WAVEFORM, [-1])],
        output=[
            _tensor(mc.ModelOutput, PROBABILITIES, [len(model.labels)], label_filename="labels.txt"),
            _tensor(mc.ModelOutput, LOGMEL_T, [model.n_mels, -1]),
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
    config.parameters["sample_rate"].string_value = str(model.sample_rate)
    config.parameters["clip_seconds"].string_value = str(model.clip_seconds)
    config.parameters["labels"].string_value = json.dumps(list(model.labels))
    return config


def write_config(model_dir: Path, config: mc.ModelConfig, variant: str = "") -> None:
    path = model_dir / "configs" / f"{variant}.pbtxt" if variant else model_dir / "config.pbtxt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_format.MessageToString(config))


def model_configs(model: ExportedModel, cfg: ServingConfig, target: str,
                  variant: str = "") -> dict[str, mc.ModelConfig]:
    """Configs of the two ONNX models, keyed by model name."""
    max_samples = int(cfg.max_seconds * model.sample_rate)
    hop = int(model.logmel_tables["hop_length"])
    max_frames = 1 + max_samples // hop
    clip_samples = int(model.warmup_waveform.shape[0])
    batches = [1, *cfg.preferred_batch_sizes[-1:]]  # warm up single requests and the largest batch
    opt, top = batches[-1], cfg.max_batch_size
    n_mels, clip_frames = model.n_mels, int(model.warmup_logmel.shape[1])
    return {
        LOGMEL: onnx_model_config(
            LOGMEL, (WAVEFORM, [-1]), (LOGMEL_T, [n_mels, -1]), cfg, target, variant,
            max_input_elements=max_samples, engine=LOGMEL_ENGINES[cfg.logmel_engine],
            trt_precision="FP32",
            trt_profile=_trt_profile(WAVEFORM, ([1, 1], [opt, clip_samples], [top, max_samples])),
            warmup=_warmup(WAVEFORM, model.warmup_waveform, batches)),
        CLASSIFIER: onnx_model_config(
            CLASSIFIER, (LOGMEL_T, [n_mels, -1]), (PROBABILITIES, [len(model.labels)]), cfg, target,
            variant, label_filename="labels.txt", trt_precision=cfg.trt_precision,
            trt_profile=_trt_profile(LOGMEL_T, ([1, n_mels, 1], [opt, n_mels, clip_frames],
                                                [top, n_mels, max_frames])),
            warmup=_warmup(LOGMEL_T, model.warmup_logmel, batches)),
    }


def build_repository(out: Path, model: ExportedModel, cfg: ServingConfig,
                     target: str = "embedded") -> Path:
    """Write the repository of ``target`` to ``out`` (replaced if present) and return it."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if out.exists():
        shutil.rmtree(out)
    labels_text = "\n".join(model.labels) + "\n"
    files = {LOGMEL: model.logmel_onnx, CLASSIFIER: model.classifier_onnx}
    if target == "embedded" and cfg.classifier_precision == "int8":
        if model.classifier_int8_onnx is None or not Path(model.classifier_int8_onnx).is_file():
            raise FileNotFoundError(f"serving.classifier_precision=int8 needs the INT8 classifier "
                                    f"({model.classifier_int8_onnx}); run `dvc repro export`")
        files[CLASSIFIER] = model.classifier_int8_onnx
    warmup = {LOGMEL: (WAVEFORM, model.warmup_waveform), CLASSIFIER: (LOGMEL_T, model.warmup_logmel)}
    variants = ["", CPU_VARIANT] if target == "native" else [""]
    for variant in variants:
        for name, config in model_configs(model, cfg, target, variant).items():
            write_config(out / name, config, variant)
    fft_logmel = target == "embedded" and cfg.logmel_engine == "fft"
    for name, onnx_file in files.items():
        version = out / name / "1"
        version.mkdir(parents=True)
        if name == LOGMEL and fft_logmel:
            np.savez(version / "logmel.npz", **model.logmel_tables)
        else:
            shutil.copy(onnx_file, version / "model.onnx")
        if target == "embedded":
            shutil.copy(PYTHON_MODEL, version / "model.py")
        else:  # raw row-major float32, as model_warmup's input_data_file wants
            tensor, sample = warmup[name]
            (out / name / "warmup").mkdir()
            sample.astype("<f4").tofile(out / name / "warmup" / tensor)
    (out / CLASSIFIER / "labels.txt").write_text(labels_text)
    (out / ENSEMBLE / "1").mkdir(parents=True)
    # DVC does not restore empty directories, and Triton needs the version directory.
    (out / ENSEMBLE / "1" / "README.md").write_text(
        "The `esc` ensemble has no weights of its own; see ../config.pbtxt.\n"
    )
    (out / ENSEMBLE / "labels.txt").write_text(labels_text)
    write_config(out / ENSEMBLE, ensemble_config(model, cfg))
    return out
