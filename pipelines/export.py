"""DVC stage `export`: ONNX models with parity checks, then the Triton model repository.

Reads ``data.clip_seconds``, ``export`` and ``serving`` from params.yaml, ``models/model.pt`` from
`train` and real clips from ``data/prepared``. Writes ``artifacts/onnx/{logmel,classifier}.onnx``
(dynamic batch and time axes), the two Triton repositories built from them
(``artifacts/model_repository/``: embedded target, served by the pip-installed Triton;
``artifacts/model_repository_native/``: native target, for the official container) and
``metrics/export.json`` (parity and sizes). Parity is checked for onnxruntime and for the served
FFT log-mel (``model_repository/python_models/onnx_model.py``) against PyTorch; the stage stops,
leaving no repository, if either differs by more than ``export.parity_tolerance``
(probabilities) or ``export.logmel_tolerance_db``. Not covered: TensorRT parity (needs a GPU).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import soundfile as sf
import torch

from model_repository.build import (
    LOGMEL_T, PROBABILITIES, WAVEFORM, ExportedModel, ServingConfig, build_repository,
)
from model_repository.python_models.onnx_model import FFTLogMel
from pipelines import paths
from pipelines.params import from_dict, load_params
from training.checkpoint import TrainedModel, load_checkpoint
from training.features import LogMel
from training.models import Classifier

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


def parity_waveforms(n: int) -> np.ndarray:
    """(n, samples) real prepared clips spread evenly over the dataset."""
    meta = pd.read_csv(paths.PREPARED / "meta.csv")
    picks = meta["filename"].iloc[np.linspace(0, len(meta) - 1, n).round().astype(int)]
    return np.stack([sf.read(paths.PREPARED / "audio" / f, dtype="float32")[0] for f in picks])


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


def main(params: dict) -> dict:
    cfg = from_dict(ExportConfig, params["export"])
    serving = from_dict(ServingConfig, params["serving"])
    clip_seconds = float(params["data"]["clip_seconds"])
    trained = load_checkpoint(paths.MODELS / "model.pt")
    feature_cfg = trained.front_end.cfg
    onnx_dir = paths.ARTIFACTS / "onnx"
    if paths.ARTIFACTS.exists():
        shutil.rmtree(paths.ARTIFACTS)

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
        shutil.rmtree(paths.ARTIFACTS)
        raise ParityError(
            f"the served models differ from PyTorch beyond export.parity_tolerance={cfg.parity_tolerance}"
            f" (probabilities) / export.logmel_tolerance_db={cfg.logmel_tolerance_db}: {failed}"
        )
    with torch.no_grad():
        warmup_logmel = trained.front_end(torch.from_numpy(waves[:1]))[0].numpy()  # (n_mels, frames)
    exported = ExportedModel(
        logmel_path, classifier_path, tuple(trained.labels), sample_rate=feature_cfg.sample_rate,
        clip_seconds=clip_seconds, n_mels=feature_cfg.n_mels,
        logmel_tables=logmel_tables(trained.front_end), warmup_waveform=waves[0],
        warmup_logmel=warmup_logmel,
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
