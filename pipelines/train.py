"""DVC stage `train`: cross-validation over the dataset's own folds, reports, the final model.

Reads ``model``, ``train`` and ``mlflow`` from params.yaml and ``data/features`` from `features`.
Writes ``models/model.pt`` (weights plus every config needed to rebuild them), ``metrics/train.json``
(per fold and mean/std, for ``dvc metrics show``), ``metrics/learning_curves.csv`` (``dvc plots``)
and ``metrics/cv/`` (confusion matrix, per-class accuracy, misclassified clips, out-of-fold
predictions, plots). Tracks one MLflow parent run with a nested run per fold.

Networks are also scored as a snapshot ensemble (``training.loop.snapshot_epochs``: the weights
at the end of each restart cycle, their probabilities averaged): ``snapshot_accuracy`` per fold,
its mean and std, and ``metrics/cv/oof_snapshot_predictions.csv``. With ``train.tta_warps``, each
epoch is also scored with test-time augmentation: ``tta_accuracy`` per fold (its best epoch), its
mean and std.

Networks (``resnet``, ``cnn``, ``crnn``) and the random-forest baseline (``rf``) share the
cross-validation; only networks produce an exportable model (``rf`` writes a checkpoint that
names the baseline, and `export` refuses it).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
import yaml

from model_repository.registry import use_experiment
from pipelines import paths
from pipelines.features import load_feature_config
from pipelines.params import from_dict, load_params
from pipelines.provenance import git_state
from training.baseline import mfcc_statistics, random_forest
from training.loop import TrainConfig, fit, predict_proba
from training.models import ModelConfig, build_model
from training.reports import classification_metrics, oof_predictions, write_cv_report

log = logging.getLogger(__name__)

# Fold metrics that are not the best epoch's: the snapshot ensemble's, and test-time augmentation's
# at its own best epoch; logged under their own names, the rest with a ``best_`` prefix.
NO_EPOCH = ("snapshot_accuracy", "tta_accuracy")
CURVE_COLUMNS = ["fold", "epoch", "train_loss", "lr", "val_loss", "val_accuracy"]


@dataclass(frozen=True)
class MlflowConfig:
    experiment: str = "esc"
    registered_model: str = "esc-classifier"  # read by `register`
    alias: str = "challenger"  # set on each newly registered version


@dataclass
class Data:
    x: torch.Tensor  # (clips, n_mels, frames)
    y: torch.Tensor  # (clips,)
    folds: np.ndarray  # (clips,)
    filenames: np.ndarray  # (clips,)
    labels: list[str]
    info: dict  # dataset.json, as `fetch` recorded it: dataset, split, fold_names, ...

    def split(self, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(np.flatnonzero(self.folds != fold)),
                torch.from_numpy(np.flatnonzero(self.folds == fold)))


def load_data() -> Data:
    index = pd.read_csv(paths.FEATURES / "index.csv")
    return Data(
        x=torch.from_numpy(np.load(paths.FEATURES / "logmel.npy")),
        y=torch.from_numpy(index["target"].to_numpy()).long(),
        folds=index["fold"].to_numpy(),
        filenames=index["filename"].to_numpy(),
        labels=(paths.FEATURES / "labels.txt").read_text().split(),
        info=json.loads((paths.FEATURES / "dataset.json").read_text()),
    )


def flatten(prefix: str, mapping: dict) -> dict:
    return {f"{prefix}.{k}": v for k, v in mapping.items()}


def provenance_tags() -> dict[str, str]:
    """Git commit and the files changed from it, upstream data hashes from dvc.lock, host.

    CPU runs repeat their metrics bit for bit only on the same code, torch build, thread count
    and CPU kernels (``torch.cpu_capability``: AVX2 and AVX512 kernels round differently)."""
    tags = {"host.cpus": str(os.cpu_count()), "host.platform": platform.platform(),
            "host.loadavg_1min_at_start": f"{os.getloadavg()[0]:.2f}",
            "host.processor": cpu_model(), "torch.version": torch.__version__,
            "torch.threads": str(torch.get_num_threads()),
            "torch.cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch.cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else "none"}
    state = git_state()
    if state is not None:
        tags["git_commit"], changed = state
        tags["git_dirty"] = str(bool(changed))
        # A `dvc exp run` changes params.yaml (its -S values are logged as parameters): any other
        # file here is code or data the commit does not hold.
        tags["git_changed_files"] = " ".join(changed)[:1000]
    else:
        # A copy with no .git (pipelines/ablation.py --without-dvc) is told its commit.
        tags["git_commit"] = os.environ.get("ESC_GIT_COMMIT", "unknown")
        if "ESC_GIT_CHANGED_FILES" in os.environ:
            tags["git_changed_files"] = os.environ["ESC_GIT_CHANGED_FILES"][:1000]
            tags["git_dirty"] = str(bool(tags["git_changed_files"]))
    lock = Path("dvc.lock")
    if lock.is_file():
        stages = yaml.safe_load(lock.read_text()).get("stages", {})
        for stage in ("fetch", "features"):
            for out in stages.get(stage, {}).get("outs", []):
                tags[f"dvc.{out['path']}.md5"] = out.get("md5", "")
    return tags


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fit_network(data: Data, train_idx, val_idx, model_cfg: ModelConfig, train_cfg: TrainConfig,
                on_epoch=None):
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg, n_mels=data.x.shape[1], n_classes=len(data.labels))
    val = (data.x[val_idx], data.y[val_idx]) if val_idx is not None else None
    result = fit(model, data.x[train_idx], data.y[train_idx], len(data.labels), train_cfg,
                 val=val, on_epoch=on_epoch, domains=torch.from_numpy(data.folds[train_idx.numpy()]))
    model.load_state_dict(result.best_state)
    return model, result


@dataclass
class FoldResult:
    probs: np.ndarray  # (val clips, n_classes), the chosen epoch's (rf: the forest's)
    history: list[dict]  # one row per epoch (rf: none)
    metrics: dict
    snapshot_probs: np.ndarray | None = None  # (val clips, n_classes), the snapshot ensemble's


def run_fold(fold: int, data: Data, model_cfg: ModelConfig, train_cfg: TrainConfig,
             mfcc: np.ndarray | None) -> FoldResult:
    """Train on the other folds, predict ``fold``."""
    train_idx, val_idx = data.split(fold)
    with mlflow.start_run(run_name=f"fold-{fold}", nested=True):
        # What the fold is where the split names it (fsdd: the left-out speaker).
        name = data.info.get("fold_names", {}).get(str(fold))
        mlflow.log_params({"fold": fold, "train_clips": len(train_idx), "val_clips": len(val_idx)}
                          | ({"fold_name": name} if name else {}))
        start = time.perf_counter()
        if mfcc is not None:
            forest = random_forest(model_cfg.n_estimators, train_cfg.seed)
            forest.fit(mfcc[train_idx], data.y[train_idx].numpy())
            history, extra = [], {"train_seconds": time.perf_counter() - start}
            snapshot = None
            start = time.perf_counter()
            probs = forest.predict_proba(mfcc[val_idx])
        else:
            def on_epoch(row: dict) -> None:
                mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

            model, result = fit_network(data, train_idx, val_idx, model_cfg, train_cfg, on_epoch)
            history = [{"fold": fold} | row for row in result.history]
            extra = {"best_epoch": result.best_epoch, "train_seconds": result.train_seconds,
                     "train_samples_per_second": result.samples_seen / result.train_seconds}
            snapshot = result.snapshot_probs
            if snapshot is not None:
                extra["snapshot_accuracy"] = history[-1]["val_snapshot_accuracy"]
            if train_cfg.tta_warps:  # at its own best epoch, as optimistic as the plain reading's
                extra["tta_accuracy"] = max(row["val_tta_accuracy"] for row in history)
            start = time.perf_counter()
            probs = predict_proba(model, data.x[val_idx])
        extra["inference_samples_per_second"] = len(val_idx) / (time.perf_counter() - start)
        metrics = classification_metrics(data.y[val_idx].numpy(), probs, len(data.labels)) | extra
        mlflow.log_metrics({(k if k in NO_EPOCH else f"best_{k}"): v for k, v in metrics.items()})
    log.info("fold %d: %s", fold, {k: round(v, 4) for k, v in metrics.items()})
    return FoldResult(probs, history, metrics, snapshot)


def main(params: dict) -> dict:
    model_cfg = from_dict(ModelConfig, params["model"])
    train_cfg = from_dict(TrainConfig, params["train"])
    mlflow_cfg = from_dict(MlflowConfig, params["mlflow"])
    feature_cfg = load_feature_config()
    data = load_data()
    present = set(data.folds.tolist())
    if missing := sorted(set(train_cfg.folds) - present):
        raise ValueError(f"train.folds names folds {missing} that the dataset does not have "
                         f"(it has {sorted(present)})")
    if train_cfg.holdout_fold and train_cfg.holdout_fold not in present:
        raise ValueError(f"train.holdout_fold={train_cfg.holdout_fold} is not a fold of the dataset "
                         f"(it has {sorted(present)}); use one of them, or 0 to fit on all folds")
    mfcc = None if model_cfg.is_network else mfcc_statistics(data.x.numpy(), min(20, data.x.shape[1]))

    use_experiment(mlflow_cfg.experiment)
    wall = time.perf_counter()
    with mlflow.start_run(run_name=f"cv-{model_cfg.name}") as run:
        mlflow.set_tags(provenance_tags())
        if "DVC_EXP_NAME" in os.environ:  # set by `dvc exp run`
            mlflow.set_tag("dvc_experiment", os.environ["DVC_EXP_NAME"])
        mlflow.log_params(
            flatten("model", model_cfg.to_dict()) | flatten("train", train_cfg.to_dict())
            | flatten("features", feature_cfg.to_dict())
            | {"n_clips": len(data.y), "n_classes": len(data.labels)}
            | {"data.dataset": data.info["dataset"], "data.split": data.info["split"]}
        )
        oof = np.zeros((len(data.y), len(data.labels)), dtype=np.float32)
        oof_snapshot = oof.copy() if model_cfg.is_network else None
        curves, fold_metrics = [], {}
        for fold in train_cfg.folds:
            val_idx = data.split(fold)[1]
            fold_result = run_fold(fold, data, model_cfg, train_cfg, mfcc)
            oof[val_idx], fold_metrics[fold] = fold_result.probs, fold_result.metrics
            if oof_snapshot is not None:
                oof_snapshot[val_idx] = fold_result.snapshot_probs
            curves += fold_result.history
        validated = np.isin(data.folds, train_cfg.folds)
        report_dir = paths.METRICS / "cv"
        cv = write_cv_report(report_dir, data.y.numpy()[validated], oof[validated],
                             data.folds[validated], data.filenames[validated], data.labels,
                             pd.DataFrame(curves) if curves else None)
        summary = {k: v for k, v in cv.items() if k.endswith(("_mean", "_std"))}
        if train_cfg.tta_warps and model_cfg.is_network:
            tta = [m["tta_accuracy"] for m in fold_metrics.values()]
            summary |= {"tta_accuracy_mean": float(np.mean(tta)), "tta_accuracy_std": float(np.std(tta))}
        if oof_snapshot is not None:
            snapshot = [m["snapshot_accuracy"] for m in fold_metrics.values()]
            summary |= {"snapshot_accuracy_mean": float(np.mean(snapshot)),
                        "snapshot_accuracy_std": float(np.std(snapshot))}
            oof_predictions(data.filenames[validated], data.folds[validated], data.y.numpy()[validated],
                            oof_snapshot[validated], data.labels).to_csv(
                report_dir / "oof_snapshot_predictions.csv", index=False)
        summary["pooled"] = cv["pooled"]
        summary["folds"] = {str(k): v for k, v in fold_metrics.items()}
        for key in ("train_samples_per_second", "inference_samples_per_second", "train_seconds"):
            values = [m[key] for m in fold_metrics.values() if key in m]
            if values:
                summary[f"{key}_median"] = float(np.median(values))
        summary["cv_wall_seconds"] = time.perf_counter() - wall
        mlflow.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
        mlflow.log_artifacts(str(report_dir), artifact_path="cv")

        checkpoint = {"model_config": model_cfg.to_dict(), "feature_config": feature_cfg.to_dict(),
                      "train_config": train_cfg.to_dict(), "labels": data.labels,
                      "mlflow_run_id": run.info.run_id}
        if model_cfg.is_network and train_cfg.fit_final:
            final_idx = torch.from_numpy(np.flatnonzero(data.folds != train_cfg.holdout_fold))
            model, final = fit_network(data, final_idx, None, model_cfg, train_cfg)
            checkpoint["state_dict"] = final.best_state
            summary["final_train_seconds"] = final.train_seconds
            if train_cfg.holdout_fold:
                holdout = data.split(train_cfg.holdout_fold)[1]
                probs = predict_proba(model, data.x[holdout])
                summary["holdout"] = classification_metrics(data.y[holdout].numpy(), probs,
                                                            len(data.labels))
                mlflow.log_metrics(flatten("holdout", summary["holdout"]))
        summary["final_model_holdout_fold"] = train_cfg.holdout_fold
        summary["total_wall_seconds"] = time.perf_counter() - wall
        mlflow.log_metric("total_wall_seconds", summary["total_wall_seconds"])
        # Other work on the machine slows a timed run: keep the evidence beside the timings.
        mlflow.set_tag("host.loadavg_15min_at_end", f"{os.getloadavg()[2]:.2f}")

        paths.MODELS.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, paths.MODELS / "model.pt")
        (paths.METRICS / "train.json").write_text(json.dumps(summary, indent=2) + "\n")
        pd.DataFrame(curves, columns=CURVE_COLUMNS).to_csv(paths.METRICS / "learning_curves.csv",
                                                            index=False)
        mlflow.log_artifact(str(paths.METRICS / "train.json"))
        with tempfile.TemporaryDirectory() as tmp:
            resolved = Path(tmp) / "params.yaml"
            resolved.write_text(yaml.safe_dump(params, sort_keys=False))
            mlflow.log_artifact(str(resolved))
        mlflow.log_artifact(str(paths.MODELS / "model.pt"), artifact_path="checkpoint")
    log.info("cv accuracy %.4f +- %.4f", summary["accuracy_mean"], summary["accuracy_std"])
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main(load_params())
