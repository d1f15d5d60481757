"""DVC stage `train`: cross-validation over the dataset's own folds, then the final model.

Reads ``model``, ``train`` and ``mlflow`` from params.yaml and ``data/features`` from `features`.
Writes ``models/model.pt`` (weights plus every config needed to rebuild it), ``metrics/train.json``
(per fold and mean/std, for ``dvc metrics show``) and ``metrics/learning_curves.csv`` (for
``dvc plots show``). Tracks one MLflow parent run with a nested run per fold.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch

from pipelines import paths
from pipelines.features import load_feature_config
from pipelines.params import from_dict, load_params
from training.loop import FitResult, TrainConfig, evaluate, fit
from training.models import ModelConfig, build_model

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass(frozen=True)
class MlflowConfig:
    experiment: str = "esc"


def flatten(prefix: str, mapping: dict) -> dict:
    return {f"{prefix}.{k}": v for k, v in mapping.items()}


def start_tracking(cfg: MlflowConfig) -> None:
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    mlflow.set_experiment(cfg.experiment)


def train_fold(
    fold: int,
    x: torch.Tensor,
    y: torch.Tensor,
    folds: np.ndarray,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    n_classes: int,
) -> tuple[FitResult, dict]:
    train_idx = torch.from_numpy(np.flatnonzero(folds != fold))
    val_idx = torch.from_numpy(np.flatnonzero(folds == fold))
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg, n_mels=x.shape[1], n_classes=n_classes)
    with mlflow.start_run(run_name=f"fold-{fold}", nested=True):
        mlflow.log_params({"fold": fold, "train_clips": len(train_idx), "val_clips": len(val_idx)})

        def on_epoch(row: dict) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

        result = fit(
            model, x[train_idx], y[train_idx], n_classes, train_cfg,
            val=(x[val_idx], y[val_idx]), on_epoch=on_epoch,
        )
        model.load_state_dict(result.best_state)
        metrics = evaluate(model, x[val_idx], y[val_idx])
        metrics |= {"best_epoch": result.best_epoch, "train_seconds": result.train_seconds}
        mlflow.log_metrics({f"best_{k}": v for k, v in metrics.items()})
    return result, metrics


def main(params: dict) -> dict:
    model_cfg = from_dict(ModelConfig, params["model"])
    train_cfg = from_dict(TrainConfig, params["train"])
    mlflow_cfg = from_dict(MlflowConfig, params["mlflow"])
    feature_cfg = load_feature_config()
    x = torch.from_numpy(np.load(paths.FEATURES / "logmel.npy"))  # (clips, n_mels, frames)
    index = pd.read_csv(paths.FEATURES / "index.csv")
    labels = (paths.FEATURES / "labels.txt").read_text().split()
    y = torch.from_numpy(index["target"].to_numpy()).long()
    folds = index["fold"].to_numpy()
    missing = sorted(set(train_cfg.folds) - set(folds.tolist()))
    if missing:
        raise ValueError(f"train.folds names folds {missing} that the dataset does not have")
    if train_cfg.holdout_fold and train_cfg.holdout_fold not in set(folds.tolist()):
        raise ValueError(
            f"train.holdout_fold={train_cfg.holdout_fold} is not a fold of the dataset; "
            "use one of its folds, or 0 to fit the exported model on all folds"
        )

    start_tracking(mlflow_cfg)
    fold_metrics, curves = {}, []
    with mlflow.start_run(run_name=f"cv-{model_cfg.name}") as run:
        mlflow.log_params(
            flatten("model", model_cfg.to_dict())
            | flatten("train", train_cfg.to_dict())
            | flatten("features", feature_cfg.to_dict())
            | {"n_clips": len(y), "n_classes": len(labels)}
        )
        for fold in train_cfg.folds:
            result, metrics = train_fold(fold, x, y, folds, model_cfg, train_cfg, len(labels))
            fold_metrics[fold] = metrics
            curves += [{"fold": fold} | row for row in result.history]
            log.info("fold %d: %s", fold, metrics)
        acc = np.array([m["accuracy"] for m in fold_metrics.values()])
        summary = {
            "cv_accuracy_mean": float(acc.mean()),
            "cv_accuracy_std": float(acc.std()),
            "folds": {str(k): v for k, v in fold_metrics.items()},
        }
        mlflow.log_metrics({"cv_accuracy_mean": summary["cv_accuracy_mean"],
                            "cv_accuracy_std": summary["cv_accuracy_std"]})

        final_idx = torch.from_numpy(np.flatnonzero(folds != train_cfg.holdout_fold))
        torch.manual_seed(train_cfg.seed)
        model = build_model(model_cfg, n_mels=x.shape[1], n_classes=len(labels))
        final = fit(model, x[final_idx], y[final_idx], len(labels), train_cfg)
        summary["train_samples_per_second"] = final.samples_seen / final.train_seconds
        summary["final_model_holdout_fold"] = train_cfg.holdout_fold
        if train_cfg.holdout_fold:
            holdout = torch.from_numpy(np.flatnonzero(folds == train_cfg.holdout_fold))
            summary["holdout_accuracy"] = evaluate(model, x[holdout], y[holdout])["accuracy"]
            mlflow.log_metric("holdout_accuracy", summary["holdout_accuracy"])
        state = final.best_state

        paths.MODELS.mkdir(parents=True, exist_ok=True)
        checkpoint = {
            "state_dict": state,
            "model_config": model_cfg.to_dict(),
            "feature_config": feature_cfg.to_dict(),
            "labels": labels,
            "mlflow_run_id": run.info.run_id,
        }
        torch.save(checkpoint, paths.MODELS / "model.pt")
        paths.METRICS.mkdir(parents=True, exist_ok=True)
        (paths.METRICS / "train.json").write_text(json.dumps(summary, indent=2) + "\n")
        pd.DataFrame(curves).to_csv(paths.METRICS / "learning_curves.csv", index=False)
        mlflow.log_artifact(str(paths.METRICS / "train.json"))
        mlflow.log_artifact(str(paths.METRICS / "learning_curves.csv"))
        with tempfile.TemporaryDirectory() as tmp:
            resolved = Path(tmp) / "params.json"
            resolved.write_text(json.dumps(params, indent=2) + "\n")
            mlflow.log_artifact(str(resolved))
        mlflow.log_artifact(str(paths.MODELS / "model.pt"), artifact_path="model")
    log.info("cv accuracy %.4f +- %.4f", summary["cv_accuracy_mean"], summary["cv_accuracy_std"])
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(load_params())
