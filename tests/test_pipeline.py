"""The DVC pipeline end to end on the real ESC-10 (QUICK settings, temporary copy)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from google.protobuf import text_format
from mlflow.tracking import MlflowClient
from tritonclient.grpc import model_config_pb2 as mc

from tests.conftest import PipelineRun, run

pytestmark = pytest.mark.slow


def test_stages_write_their_outputs(pipeline_run: PipelineRun) -> None:
    root = pipeline_run.root
    meta = pd.read_csv(root / "data/prepared/meta.csv")
    assert len(meta) == 400 and sorted(meta["fold"].unique()) == [1, 2, 3, 4, 5]
    logmel = np.load(root / "data/features/logmel.npy", mmap_mode="r")
    params = yaml.safe_load((root / "params.yaml").read_text())
    hop, n_mels = params["features"]["hop_length"], params["features"]["n_mels"]
    frames = 1 + round(params["data"]["clip_seconds"] * params["data"]["sample_rate"]) // hop
    assert logmel.shape == (400, n_mels, frames)
    assert (root / "models/model.pt").is_file()
    for name in ("esc", "logmel", "classifier"):
        config = text_format.Parse((root / f"artifacts/model_repository/{name}/config.pbtxt").read_text(),
                                   mc.ModelConfig())
        assert config.name == name and config.max_batch_size == params["serving"]["max_batch_size"]


def test_metrics_are_per_fold_with_mean_and_std(pipeline_run: PipelineRun) -> None:
    metrics = json.loads((pipeline_run.root / "metrics/train.json").read_text())
    accs = [metrics["folds"][str(k)]["accuracy"] for k in range(1, 6)]
    assert all(0.0 <= a <= 1.0 for a in accs)
    assert metrics["accuracy_mean"] == pytest.approx(np.mean(accs))
    assert metrics["accuracy_std"] == pytest.approx(np.std(accs))
    assert metrics["pooled"]["n"] == 400 and "holdout" in metrics
    oof = pd.read_csv(pipeline_run.root / "metrics/cv/oof_predictions.csv")
    assert len(oof) == 400 and oof["file"].is_unique
    curves = pd.read_csv(pipeline_run.root / "metrics/learning_curves.csv")
    assert set(curves["fold"]) == {1, 2, 3, 4, 5} and {"val_accuracy", "train_loss"} <= set(curves)
    export = json.loads((pipeline_run.root / "metrics/export.json").read_text())
    assert export["probabilities_max_abs_diff_full"] <= 1e-4
    # INT8: calibrated outside the holdout fold (5 by default), measured on its 80 clips.
    assert export["int8_eval_fold"] == 5 and export["int8_eval_clips"] == 80
    assert export["int8_calibration_clips"] == 64 and 0.0 <= export["int8_top1_agreement"] <= 1.0
    assert export["classifier_int8_onnx_bytes"] < export["classifier_onnx_bytes"]
    holdout = metrics["holdout"]["accuracy"]  # train's score of the exported model on fold 5
    assert export["fp32_accuracy"] == pytest.approx(holdout, abs=1 / 80)
    shown = run(["dvc", "metrics", "show", "--json"], pipeline_run.root).stdout
    assert "accuracy_mean" in shown


def test_second_repro_changes_nothing(pipeline_run: PipelineRun) -> None:
    out = run(["dvc", "repro"], pipeline_run.root).stdout
    assert "Data and pipelines are up to date." in out
    assert "Running stage" not in out


def test_mlflow_has_parent_and_nested_fold_runs(pipeline_run: PipelineRun) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline_run.root / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "esc"]
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["fold"] for r in folds) == ["1", "2", "3", "4", "5"]
    assert "accuracy_mean" in parent.data.metrics and parent.data.params["model.name"] == "resnet"
    assert parent.data.tags["git_commit"] and parent.data.tags["dvc.data/features.md5"]
    assert parent.data.tags["dvc_experiment"]  # the `dvc exp run` name
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"cv", "train.json", "params.yaml", "checkpoint", "triton"} <= artifacts
    history = client.get_metric_history(folds[0].info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1]  # train.epochs=1 in the QUICK settings


def test_checked_out_repository_is_complete(pipeline_run: PipelineRun) -> None:
    """A `dvc checkout` of the export stage restores every directory Triton needs."""
    repo = pipeline_run.model_repository

    def tree() -> list:  # __pycache__ (written by a server that ran here) is .dvcignored
        return sorted(p.relative_to(repo) for p in repo.rglob("*") if "__pycache__" not in p.parts)

    before = tree()
    shutil.rmtree(repo)
    run(["dvc", "checkout", "export"], pipeline_run.root)
    assert tree() == before
    assert (repo / "esc" / "1").is_dir()


def test_register_adds_a_version_with_the_challenger_alias(pipeline_run: PipelineRun, tmp_path,
                                                           monkeypatch) -> None:
    from model_repository import registry

    record = json.loads((pipeline_run.root / "metrics/registry.json").read_text())
    assert record["name"] == "esc-classifier" and record["alias"] == "challenger"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{pipeline_run.root / 'mlflow.db'}")
    version = registry.client().get_model_version_by_alias("esc-classifier", "challenger")
    assert str(version.version) == record["version"] and version.run_id == record["run_id"]
    with pytest.raises(ValueError, match="no version of esc-classifier carries the alias 'champion'"):
        registry.fetch("champion", tmp_path / "repo")
    registry.promote(record["version"], "champion")
    fetched = registry.fetch("champion", tmp_path / "repo")
    served = pipeline_run.model_repository
    files = sorted(p.relative_to(served) for p in served.rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts)
    assert sorted(p.relative_to(fetched) for p in fetched.rglob("*") if p.is_file()) == files
    assert all((fetched / f).read_bytes() == (served / f).read_bytes() for f in files)
