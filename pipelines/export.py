"""DVC stage `export`: ONNX models with parity checks, then the Triton model repository.

Reads ``data.clip_seconds``, ``train.holdout_fold``, ``export`` and ``serving`` from params.yaml,
``models/model.pt`` from `train` and real clips from ``data/prepared``. Writes ``artifacts/onnx/{logmel,classifier}.onnx``
(dynamic batch and time axes), the two Triton repositories built from them
(``artifacts/model_repository/``: embedded target, served by the pip-installed Triton;
``artifacts/model_repository_native/``: native target, for the official container) and
``metrics/export.json`` (parity and sizes). Parity is checked for onnxruntime and for the served
FFT log-mel (``model_repository/python_models/onnx_model.py``) against PyTorch; the stage stops,
leaving no repository, if either differs by more than ``export.parity_tolerance``
(probabilities) or ``export.logmel_tolerance_db``.

The classifier is also quantised to INT8 for CPU serving (``artifacts/onnx/classifier_int8.onnx``:
onnxruntime static QDQ quantisation, per-channel int8 weights, uint8 activations calibrated on
log-mels of training clips, never the holdout fold; PCEN stays float). Its top-1 agreement with
the FP32 model and both accuracies on the held-out fold are measured here; the embedded repository
serves it only when ``serving.classifier_precision`` is ``int8``, and then only if the agreement reaches
``export.int8_min_agreement``. Not covered: TensorRT parity (needs a GPU).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
import soundfile as sf
import torch
from torch import nn

from model_repository.build import (
    LOGMEL_T, PROBABILITIES, WAVEFORM, ExportedModel, ServingConfig, build_repository,
)
from model_repository.python_models.onnx_model import FFTLogMel
from pipelines import paths
from pipelines.params import from_dict, load_params
from training.checkpoint import TrainedModel, load_checkpoint
from training.features import LogMel
from training.models import PCEN, Classifier

log = logging.getLogger(__name__)
NATIVE_REPOSITORY = paths.ARTIFACTS / "model_repository_native"


@dataclass(frozen=True)
class ExportConfig:
    opset: int = 20
    parity_clips: int = 8
    parity_tolerance: float = 1e-4  # probabilities, max abs difference
    # Log-mel in dB: float32 DFTs (PyTorch's and onnxruntime's alike) differ from a float64
    # reference by up to ~6e-4 dB in low-energy bins, so dB values get their own bound.
    logmel_tolerance_db: float = 1e-2
    int8_calibration_clips: int = 64  # training clips (never the holdout fold) that calibrate INT8
    int8_eval_clips: int = 1000  # at most this many held-out clips for the INT8 agreement
    int8_min_agreement: float = 0.97  # top-1 agreement with FP32 needed to serve INT8

    def __post_init__(self) -> None:
        if self.int8_calibration_clips < 1 or self.int8_eval_clips < 1:
            raise ValueError("int8_calibration_clips and int8_eval_clips must be >= 1, got "
                             f"{self.int8_calibration_clips}, {self.int8_eval_clips}")
        if not 0.0 <= self.int8_min_agreement <= 1.0:
            raise ValueError(f"int8_min_agreement must be in [0, 1], got {self.int8_min_agreement}")


class ParityError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model."""


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path,
                names: tuple[str, str], time_axis: int, opset: int) -> Path:
    """Export with dynamic batch (axis 0) and time (``time_axis``) dimensions, weights inline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(), (example,), str(path),
        input_names=[names[0]], output_names=[names[1]],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096),
                         time_axis: torch.export.Dim("time", min=1, max=2**24)},),
        dynamo=True, external_data=False, opset_version=opset, verbose=False,
    )
    return path


def spread(meta: pd.DataFrame, n: int) -> pd.DataFrame:
    """At most ``n`` rows spread evenly over ``meta`` (all classes of a sorted table)."""
    if len(meta) <= n:
        return meta
    return meta.iloc[np.linspace(0, len(meta) - 1, n).round().astype(int)]


def read_clips(filenames) -> np.ndarray:
    """(n, samples) prepared clips (all of one length)."""
    return np.stack([sf.read(paths.PREPARED / "audio" / f, dtype="float32")[0] for f in filenames])


def parity_waveforms(n: int) -> np.ndarray:
    """(n, samples) real prepared clips spread evenly over the dataset."""
    return read_clips(spread(pd.read_csv(paths.PREPARED / "meta.csv"), n)["filename"])


class _Mels(CalibrationDataReader):
    """Feeds calibration log-mels (n, n_mels, frames) one clip at a time."""

    def __init__(self, mels: np.ndarray) -> None:
        self._items = iter(mels[:, None])

    def get_next(self) -> dict | None:
        mel = next(self._items, None)
        return None if mel is None else {LOGMEL_T: mel}


def nodes_of(model: onnx.ModelProto, module: type[nn.Module]) -> list[str]:
    """Names of the graph's nodes exported from ``module``'s forward (the exporter's class hierarchy)."""
    name = f"{module.__module__}.{module.__qualname__}"
    return [node.name for node in model.graph.node
            if any(p.key == "pkg.torch.onnx.class_hierarchy" and repr(name) in p.value for p in node.metadata_props)]


def quantize_int8(classifier_path: Path, calibration_mels: np.ndarray, out: Path, has_pcen: bool = False) -> int:
    """Static INT8 (QDQ) copy of the FP32 classifier, calibrated on ``calibration_mels``
    (n, n_mels, frames); returns how many nodes stayed float. ``reduce_range`` keeps weights to 7
    bits: without VNNI (AVX2 only) uint8 x int8 products can saturate onnxruntime's 16-bit
    intermediate sums. PCEN stays float: its moving average runs over band powers spanning 100 dB,
    which 8 bits cannot hold (quantised, the CNN+PCEN recipe agreed with FP32 on 7.5% of clips)."""
    prepared = out.with_suffix(".pre.onnx")
    # onnxruntime's symbolic shape inference fails on top_db graphs (an output left untyped); ONNX's runs.
    quant_pre_process(str(classifier_path), str(prepared), skip_symbolic_shape=True)
    keep_float = nodes_of(onnx.load(str(prepared)), PCEN) if has_pcen else []
    if has_pcen and not keep_float:
        raise RuntimeError(f"{classifier_path}: no node carries PCEN in its exported module hierarchy "
                           "(pkg.torch.onnx.class_hierarchy), so PCEN cannot be kept out of INT8")
    quantize_static(str(prepared), str(out), _Mels(calibration_mels), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=keep_float)
    prepared.unlink()
    return len(keep_float)


def int8_agreement(trained: TrainedModel, fp32_path: Path, int8_path: Path, meta: pd.DataFrame,
                   batch: int = 16) -> dict:
    """Top-1 agreement of the INT8 and FP32 classifiers on the clips of ``meta``, with both
    accuracies and the largest probability difference."""
    sessions = {k: ort.InferenceSession(str(p)) for k, p in (("fp32", fp32_path), ("int8", int8_path))}
    probs: dict[str, list[np.ndarray]] = {k: [] for k in sessions}
    for start in range(0, len(meta), batch):
        waves = read_clips(meta["filename"].iloc[start:start + batch])
        with torch.no_grad():
            mel = trained.front_end(torch.from_numpy(waves)).numpy()
        for k, session in sessions.items():
            probs[k].append(session.run([PROBABILITIES], {LOGMEL_T: mel})[0])
    fp32, int8 = (np.concatenate(probs[k]) for k in ("fp32", "int8"))
    target = meta["target"].to_numpy()
    return {
        "int8_eval_clips": len(meta),
        "int8_top1_agreement": float((fp32.argmax(1) == int8.argmax(1)).mean()),
        "int8_accuracy": float((int8.argmax(1) == target).mean()),
        "fp32_accuracy": float((fp32.argmax(1) == target).mean()),
        "int8_probabilities_max_abs_diff": float(np.abs(fp32 - int8).max()),
    }


def logmel_tables(front_end: LogMel) -> dict[str, np.ndarray]:
    """What the served FFT log-mel needs, taken from the one front end (training/features.py)."""
    return {
        "window": front_end.kernels[0, 0].numpy(),  # row 0 of the DFT kernels: cos(0) * window
        "filterbank": front_end.filterbank.numpy(),  # (n_mels, n_fft // 2 + 1)
        "hop_length": np.array(front_end.cfg.hop_length),
        "log_floor": np.array(front_end.cfg.log_floor),
    }


def check_parity(trained: TrainedModel, logmel_path: Path, classifier_path: Path,
                 waves: np.ndarray) -> dict:
    """Max abs difference vs PyTorch, for full clips and a shorter odd length, of both served
    log-mel engines (``onnx``: logmel.onnx; ``fft``: the FFT engine) followed by classifier.onnx."""
    logmel_sess = ort.InferenceSession(str(logmel_path))
    classifier_sess = ort.InferenceSession(str(classifier_path))
    engines = {"onnx": logmel_sess, "fft": FFTLogMel(logmel_tables(trained.front_end))}
    report = {}
    for label, batch in (("full", waves), ("short", waves[:2, : waves.shape[1] // 3 + 7])):
        with torch.no_grad():
            ref_mel = trained.front_end(torch.from_numpy(batch)).numpy()
            ref_prob = trained.predict_proba(torch.from_numpy(batch)).numpy()
        for engine, session in engines.items():
            (mel,) = session.run([LOGMEL_T], {WAVEFORM: batch})
            (prob,) = classifier_sess.run([PROBABILITIES], {LOGMEL_T: mel})
            suffix = label if engine == "onnx" else f"{engine}_{label}"
            report[f"logmel_max_abs_diff_{suffix}"] = float(np.abs(mel - ref_mel).max())
            report[f"probabilities_max_abs_diff_{suffix}"] = float(np.abs(prob - ref_prob).max())
    return report


def remove_outputs() -> None:
    """Delete this stage's outputs (not the rest of ``artifacts/``, e.g. its .gitignore)."""
    for out in (paths.ARTIFACTS / "onnx", paths.MODEL_REPOSITORY, NATIVE_REPOSITORY):
        shutil.rmtree(out, ignore_errors=True)


def int8_export(trained: TrainedModel, classifier_path: Path, int8_path: Path, cfg: ExportConfig,
                holdout_fold: int) -> dict:
    """Quantise the classifier into ``int8_path`` (calibrated outside ``holdout_fold``) and measure
    it on that fold (0: no fold was held out, so on all clips, which the model has seen)."""
    meta = pd.read_csv(paths.PREPARED / "meta.csv")
    held_out = meta["fold"] == holdout_fold
    with torch.no_grad():
        mels = trained.front_end(torch.from_numpy(
            read_clips(spread(meta[~held_out], cfg.int8_calibration_clips)["filename"]))).numpy()
    has_pcen = any(isinstance(m, PCEN) for m in trained.model.modules())
    float_nodes = quantize_int8(classifier_path, mels, int8_path, has_pcen)
    evaluation = spread(meta[held_out] if holdout_fold else meta, cfg.int8_eval_clips)
    report = int8_agreement(trained, classifier_path, int8_path, evaluation)
    return report | {"int8_eval_fold": holdout_fold, "int8_calibration_clips": len(mels),
                     "int8_float_nodes": float_nodes, "classifier_int8_onnx_bytes": int8_path.stat().st_size}


def check_int8(report: dict, cfg: ExportConfig, serving: ServingConfig) -> None:
    """Refuse to serve an INT8 classifier that disagrees with FP32 too often."""
    if serving.classifier_precision == "int8" and report["int8_top1_agreement"] < cfg.int8_min_agreement:
        raise ParityError(
            f"the INT8 classifier agrees with FP32 on {report['int8_top1_agreement']:.1%} of "
            f"{report['int8_eval_clips']} held-out clips, below export.int8_min_agreement="
            f"{cfg.int8_min_agreement}; serve FP32 (serving.classifier_precision=fp32) or calibrate "
            "on more clips (export.int8_calibration_clips)"
        )


def main(params: dict) -> dict:
    cfg = from_dict(ExportConfig, params["export"])
    holdout_fold = int(params["train"]["holdout_fold"])
    serving = from_dict(ServingConfig, params["serving"])
    clip_seconds = float(params["data"]["clip_seconds"])
    trained = load_checkpoint(paths.MODELS / "model.pt")
    feature_cfg = trained.front_end.cfg
    onnx_dir = paths.ARTIFACTS / "onnx"
    remove_outputs()

    waves = parity_waveforms(cfg.parity_clips)  # (n, samples)
    example = torch.from_numpy(waves[:2])
    logmel_path = export_onnx(trained.front_end, example, onnx_dir / "logmel.onnx",
                              (WAVEFORM, LOGMEL_T), time_axis=1, opset=cfg.opset)
    with torch.no_grad():
        example_mel = trained.front_end(example)  # (2, n_mels, frames)
    classifier_path = export_onnx(Classifier(trained.model), example_mel, onnx_dir / "classifier.onnx",
                                  (LOGMEL_T, PROBABILITIES), time_axis=2, opset=cfg.opset)

    report = check_parity(trained, logmel_path, classifier_path, waves)
    bounds = {"probabilities": cfg.parity_tolerance, "logmel": cfg.logmel_tolerance_db}
    failed = {k: v for k, v in report.items() if v > bounds[k.split("_max")[0]]}
    if failed:
        remove_outputs()
        raise ParityError(
            f"the served models differ from PyTorch beyond export.parity_tolerance={cfg.parity_tolerance}"
            f" (probabilities) / export.logmel_tolerance_db={cfg.logmel_tolerance_db}: {failed}"
        )
    int8_path = onnx_dir / "classifier_int8.onnx"
    report |= int8_export(trained, classifier_path, int8_path, cfg, holdout_fold)
    try:
        check_int8(report, cfg, serving)
    except ParityError:
        remove_outputs()
        raise
    with torch.no_grad():
        warmup_logmel = trained.front_end(torch.from_numpy(waves[:1]))[0].numpy()  # (n_mels, frames)
    exported = ExportedModel(
        logmel_path, classifier_path, tuple(trained.labels), sample_rate=feature_cfg.sample_rate,
        clip_seconds=clip_seconds, n_mels=feature_cfg.n_mels,
        logmel_tables=logmel_tables(trained.front_end), warmup_waveform=waves[0],
        warmup_logmel=warmup_logmel, classifier_int8_onnx=int8_path,
    )
    repo = build_repository(paths.MODEL_REPOSITORY, exported, serving, target="embedded")
    build_repository(NATIVE_REPOSITORY, exported, serving, target="native")
    report |= {
        "parity_clips": int(len(waves)),
        "logmel_onnx_bytes": logmel_path.stat().st_size,
        "classifier_onnx_bytes": classifier_path.stat().st_size,
    }
    paths.METRICS.mkdir(parents=True, exist_ok=True)
    (paths.METRICS / "export.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("exported %s; parity %s", repo, report)
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(load_params())
