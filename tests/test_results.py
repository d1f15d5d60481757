"""docs/results.md is generated from tracked MLflow metrics: rows, verdicts, missing rows."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from pipelines import results
from pipelines.ablation import EXPERIMENT, ROWS


def log_parent(row: str, accuracy: float, std: float) -> None:
    with mlflow.start_run(run_name=f"cv-{row}"):
        mlflow.set_tags({"dvc_experiment": row, "host.processor": "Test CPU", "host.cpus": "2",
                         "torch.cuda_device": "none", "host.loadavg_15min_at_end": "1.50"})
        mlflow.log_params({"data.dataset": "esc10", "data.split": "official", "model.name": "resnet"})
        mlflow.log_metrics({"accuracy_mean": accuracy, "accuracy_std": std, "cv_wall_seconds": 1234.4})
        for last in (accuracy - 0.05, accuracy - 0.15):  # two folds' validation accuracy by epoch
            with mlflow.start_run(run_name="fold", nested=True):
                mlflow.log_metric("accuracy_mean", 0.0)  # nested runs are not rows
                for epoch, value in enumerate((0.1, 1.0, last), start=1):
                    mlflow.log_metric("val_accuracy", value, step=epoch)


def test_results_table_comes_from_tracked_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment(EXPERIMENT)
    log_parent("esc10-resnet", 0.8, 0.05)
    log_parent("esc10-resnet", 0.9712, 0.0123)  # the newest run of a row wins
    log_parent("fsdd-cnn", 0.99, 0.0)
    text = results.main(["--out", str(tmp_path / "results.md")]).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `esc10-resnet`"))
    assert "| 97.1 ± 1.2 | 87.1 ± 5.0 |" in row and "| 1234 s |" in row and "| 1.50 |" in row
    assert "ESC-10 5-fold CV from scratch >= 96%: 97.1% with `esc10-resnet`, reached (last epoch: 87.1 ± 5.0%)." in text
    assert "FSDD official split >= 99.5%: 99.0% with `fsdd-cnn`, NOT reached (last epoch: " in text
    not_run = [r.name for r in ROWS if r.name not in ("esc10-resnet", "fsdd-cnn")]
    assert all(f"| `{name}` |" in text for name in not_run)
    assert text.count("no finished run |") == len(not_run)
    assert "not measured yet (`fsdd-resnet-speakers` has no finished run)" in text
    assert "dvc exp run --temp train -n esc10-cnn" in text
