"""DVC stage `register`: the exported model becomes a new version in the MLflow model registry.

Reads ``mlflow.registered_model`` and ``mlflow.alias`` from params.yaml, ``models/model.pt`` (for
the training run's id) and the `export` outputs. Into the training run it logs the classifier
ONNX as an MLflow model with its signature (log-mel in, probabilities out), the Triton model
repository (``triton/model_repository``) and the export metrics; registers that model as a new
version of ``mlflow.registered_model`` and points ``mlflow.alias`` (default ``challenger``) at
it. Writes ``metrics/registry.json``. Promotion to serving is moving an alias (``champion``)
with ``python -m model_repository.registry promote``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from model_repository.build import LOGMEL_T, PROBABILITIES
from model_repository.registry import REPOSITORY_ARTIFACT, use_experiment
from pipelines import paths
from pipelines.params import from_dict, load_params
from pipelines.train import MlflowConfig
from training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str
    run_id: str
    model_uri: str


def main(params: dict) -> dict:
    cfg = from_dict(MlflowConfig, params["mlflow"])
    trained = load_checkpoint(paths.MODELS / "model.pt")
    classifier = paths.ARTIFACTS / "onnx" / "classifier.onnx"
    front = trained.front_end.cfg
    frames = front.n_frames(round(float(params["data"]["clip_seconds"]) * front.sample_rate))
    example = np.zeros((1, front.n_mels, frames), dtype=np.float32)  # one clip's log-mel
    (probs,) = ort.InferenceSession(str(classifier)).run([PROBABILITIES], {LOGMEL_T: example})
    signature = infer_signature({LOGMEL_T: example}, {PROBABILITIES: probs})

    use_experiment(cfg.experiment)
    with mlflow.start_run(run_id=trained.mlflow_run_id):
        info = mlflow.onnx.log_model(
            onnx.load(str(classifier)), name="classifier", signature=signature,
            registered_model_name=cfg.registered_model, save_as_external_data=False,
        )
        mlflow.log_artifacts(str(paths.MODEL_REPOSITORY), artifact_path=REPOSITORY_ARTIFACT)
        mlflow.log_artifact(str(paths.METRICS / "export.json"))
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(cfg.registered_model, cfg.alias, version)
    client.set_model_version_tag(cfg.registered_model, version, "labels", json.dumps(trained.labels))
    record = RegisteredVersion(cfg.registered_model, version, cfg.alias, trained.mlflow_run_id,
                               f"models:/{cfg.registered_model}@{cfg.alias}")
    (paths.METRICS / "registry.json").write_text(json.dumps(record.__dict__, indent=2) + "\n")
    log.info("registered %s version %s as @%s", cfg.registered_model, version, cfg.alias)
    return record.__dict__


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(load_params())
