"""docs/results.md is generated from run records written from tracked MLflow runs: rows, verdicts,
missing rows, and records that outlive the store."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from model_repository.registry import use_experiment
from pipelines import results
from pipelines import ablation
from pipelines.ablation import EXPERIMENT, ROWS


def log_parent(row: str, accuracy: float, std: float, split: str = "official",
               fold_names: tuple[str, ...] = (), fold_shift: float = 0.0, prob_a: tuple = (),
               total_wall: float | None = None, snapshot: tuple = ()) -> None:
    """``prob_a``: with it, out-of-fold predictions of clips 1-4 (targets a a b b, folds 1 1 2 2),
    probability of class a of each; ``snapshot``: the same of a snapshot ensemble (60 epochs,
    restarts every 20), scored ``accuracy`` + 0.01 on fold 1 and + 0.03 on fold 2."""
    with mlflow.start_run(run_name=f"cv-{row}"):
        for name, probs in (("oof_predictions.csv", prob_a), ("oof_snapshot_predictions.csv", snapshot)):
            if probs:
                oof = pd.DataFrame({"file": ["1.wav", "2.wav", "3.wav", "4.wav"], "fold": [1, 1, 2, 2],
                                    "target": list("aabb"), "prob_a": probs})
                oof["prob_b"] = 1 - oof["prob_a"]
                shuffled = oof.sample(frac=1, random_state=len(row))  # clips in another order per run
                mlflow.log_text(shuffled.to_csv(index=False), f"cv/{name}")
        if snapshot:
            mlflow.log_params({"train.epochs": 60, "train.restart_epochs": 20})
            mlflow.log_metrics({"snapshot_accuracy_mean": accuracy + 0.02, "snapshot_accuracy_std": 0.01})
        mlflow.set_tags({"dvc_experiment": row, "host.processor": "Test CPU", "host.cpus": "2",
                         "torch.cuda_device": "none", "host.loadavg_15min_at_end": "1.50"})
        mlflow.log_params({"data.dataset": row.split("-")[0], "data.split": split, "model.name": "resnet"})
        mlflow.log_metrics({"accuracy_mean": accuracy, "accuracy_std": std, "cv_wall_seconds": 1234.4}
                           | ({"total_wall_seconds": total_wall} if total_wall else {}))
        # Two folds' validation accuracy by epoch, logged last fold first.
        for fold, last in ((2, accuracy - 0.15), (1, accuracy - 0.05)):
            with mlflow.start_run(run_name="fold", nested=True):
                mlflow.log_params({"fold": fold} | ({"fold_name": fold_names[fold - 1]} if fold_names else {}))
                mlflow.log_metrics({"accuracy_mean": 0.0,  # nested runs are not rows
                                    "best_accuracy": accuracy + fold / 100 + fold_shift * (fold - 1)}
                                   | ({"snapshot_accuracy": accuracy + 0.02 * fold - 0.01} if snapshot else {}))
                for epoch, value in enumerate((0.1, 1.0, last), start=1):
                    mlflow.log_metric("val_accuracy", value, step=epoch)


def test_results_table_comes_from_tracked_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_experiment(EXPERIMENT)
    log_parent("esc10-resnet", 0.8, 0.05)
    # The newest run of a row wins. Out of fold it gets clip 1 right, 3 of 4 clips with the next
    # run, and both runs' averaged probabilities clips 2-4: folds 50% and 100%, 75% in the mean.
    log_parent("esc10-resnet", 0.9712, 0.0123, prob_a=(0.6, 0.4, 0.1, 0.55), total_wall=3612.0)
    log_parent("fsdd-cnn", 0.99, 0.0)
    log_parent("esc10-resnet-seed1", 0.9512, 0.02, fold_shift=-0.03, prob_a=(0.3, 0.8, 0.2, 0.3))
    log_parent("fsdd-resnet-speakers", 0.9, 0.01, split="speaker", fold_names=("george", "jackson"))
    records = tmp_path / "records"
    text = results.main(["--out", str(tmp_path / "results.md"), "--records", str(records)]).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `esc10-resnet`"))
    assert "| 97.1 ± 1.2 | 87.1 ± 5.0 |" in row and "| 1234 s |" in row and "| 1.50 |" in row
    assert "| 2 CPUs |" in row
    # Each target's verdict from its dataset's best row.
    assert ("ESC-10 5-fold CV from scratch >= 96%: reached. Best of 2 rows: 97.1% with `esc10-resnet` "
            "(last epoch: 87.1 ± 5.0%). Its 2 seeds average 96.1% (97.1 / 95.1); the verdict counts that "
            "mean.") in text
    assert "FSDD official split >= 99.5%: NOT reached. Best of 1 row: 99.0% with `fsdd-cnn` (last epoch: " in text
    assert "FSDD leave-one-speaker-out mean >= 97%: NOT reached. Best of 1 row: 90.0%" in text
    # The recipe's time from the row that runs the final fit too: 3612 s is over the hour.
    assert ("The full ESC-10 recipe (5-fold CV and the final fit) within 60 minutes: NOT reached. "
            "`esc10-resnet` took 60.2 min on 2 CPUs (GPU: none; 15-minute load at the end: 1.50).") in text
    not_run = [r.name for r in ROWS
               if r.name not in ("esc10-resnet", "esc10-resnet-seed1", "fsdd-cnn", "fsdd-resnet-speakers")]
    assert all(f"| `{name}` |" in text for name in not_run)
    assert text.count("no finished run |") == len(not_run)
    # Folds in fold order, one table per dataset and split, speakers by name: best-epoch (last-epoch)
    # accuracy.
    section = text.split("## Per fold")[1].split("## Seed spread")[0]
    _, esc10, fsdd, speakers = re.split(r"\n(?:esc10 \(official\)|fsdd \(official\)|fsdd \(speaker\)):\n", section)
    assert "| row | fold 1 | fold 2 |" in esc10 and "| `esc10-resnet` | 98.1 (92.1) | 99.1 (82.1) |" in esc10
    assert "| `esc10-resnet-seed1` | 96.1 (90.1) | 94.1 (80.1) |" in esc10
    assert "| `fsdd-cnn` | 100.0 (94.0) | 101.0 (84.0) |" in fsdd and "esc10" not in fsdd
    assert "| row | george | jackson |" in speakers
    assert "| `fsdd-resnet-speakers` | 91.0 (85.0) | 92.0 (75.0) |" in speakers
    assert "dvc exp run --temp train -n esc10-cnn" in text
    # The recipe from two seeds: folds 1 and 2 land 2.0 and 5.0 points apart (fold 2 shifted 3).
    spread = text.split("## Seed spread")[1].split("## Commands")[0]
    assert ("| `esc10-resnet` / `esc10-resnet-seed1` | 97.1 / 95.1 | -2.0 | 3.5 / 5.0 | "
            "87.1 ± 5.0 / 85.1 ± 5.0 | 75.0 |") in spread
    assert "fsdd" not in spread  # its seed row has no run
    # Out of fold, the newest esc10-resnet run gets clips 2 and 4 wrong, esc10-resnet-seed1 clip 1.
    hard = text.split("## Clips every row gets wrong")[1].split("## Commands")[0]
    assert "esc10 (official): 0 of 4 clips wrong in all 2 rows (`esc10-resnet`, `esc10-resnet-seed1`)." in hard

    # A fresh store (another checkout): the records keep every row, the page stays the same but
    # for its date. A new run of a row replaces that row's record, and only that one.
    assert sorted(p.name for p in records.iterdir()) == sorted(
        f"{row}{ext}" for row in ("esc10-resnet", "esc10-resnet-seed1", "fsdd-cnn", "fsdd-resnet-speakers")
        for ext in (".json", ".oof.csv.gz") if ext == ".json" or row.startswith("esc10"))
    before = {p.name: p.read_bytes() for p in records.iterdir()}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'fresh.db'}")
    use_experiment(EXPERIMENT)
    again = results.main(["--out", str(tmp_path / "again.md"), "--records", str(records)]).read_text()
    assert again.splitlines()[3:] == text.splitlines()[3:]
    log_parent("fsdd-cnn", 0.996, 0.0)
    results.main(["--out", str(tmp_path / "again.md"), "--records", str(records)])
    after = {p.name: p.read_bytes() for p in records.iterdir()}
    assert [name for name in before if after[name] != before[name]] == ["fsdd-cnn.json"]
    assert ("FSDD official split >= 99.5%: reached in one run, not repeated from another seed. Best of 1 row: "
            "99.6%") in (tmp_path / "again.md").read_text()
    record = results.load_records(records)["esc10-resnet"]
    assert record.source == results.FROM_MLFLOW and [f["val_accuracy"] for f in record.folds] == [
        pytest.approx([0.1, 1.0, 0.9712 - 0.05]), pytest.approx([0.1, 1.0, 0.9712 - 0.15])]


def test_three_seeds_and_a_snapshot_ensemble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three seeds of a setting averaged out of fold (each pair, and all three), and the snapshot
    ensemble of the run that scored one, recorded with its out-of-fold predictions."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_experiment(EXPERIMENT)
    base = "fsdd-resnet-speakers-fmin100-60ep"
    # Right out of fold: clips 1 and 3; clips 2, 3 and 4; clip 1 alone. Seeds 0 and 1 averaged get
    # clip 1 wrong (0.45), seeds 0 and 2 clips 2 and 4 (0.4, 0.575), all three none.
    log_parent(base, 0.95, 0.01, split="speaker", prob_a=(0.6, 0.4, 0.1, 0.55))
    log_parent(f"{base}-seed1", 0.958, 0.01, split="speaker", prob_a=(0.3, 0.8, 0.2, 0.3))
    log_parent(f"{base}-seed2", 0.96, 0.01, split="speaker", prob_a=(0.7, 0.4, 0.6, 0.6),
               snapshot=(0.9, 0.6, 0.2, 0.3))
    records = tmp_path / "records"
    text = results.main(["--out", str(tmp_path / "results.md"), "--records", str(records)]).read_text()
    spread = text.split("## Seed spread")[1].split("## Snapshot ensembles")[0]
    assert f"| `{base}` / `{base}-seed1` | 95.0 / 95.8 | +0.8 |" in spread and spread.count("| 75.0 |") == 1
    assert f"| `{base}` / `{base}-seed2` | 95.0 / 96.0 | +1.0 |" in spread and "| 50.0 |" in spread
    assert (f"All 3 seeds of `{base}` averaged (`{base}` + `{base}-seed1` + `{base}-seed2`): 100.0% "
            "(each: 95.0 / 95.8 / 96.0%).") in spread
    snapshots = [line for line in text.split("## Snapshot ensembles")[1].splitlines() if line.startswith("| `")]
    assert snapshots == [f"| `{base}-seed2` | 20, 40, 60 | 96.0 ± 1.0 | 86.0 ± 5.0 | 98.0 ± 1.0 | 97.0 / 99.0 |"]
    snapshot_oof = results.out_of_fold(results.load_records(records)[f"{base}-seed2"], records, "snapshot")
    assert snapshot_oof.sort_values("file")["prob_a"].tolist() == [0.9, 0.6, 0.2, 0.3]
    assert not (records / f"{base}.snapshot.oof.csv.gz").exists()


def test_declared_ensembles_of_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declared ensembles average their rows clip by clip at the best epochs and, where every member
    scored one, from the snapshot ensembles; one with a member unrecorded is left out."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_experiment(EXPERIMENT)
    base = "fsdd-resnet-speakers-fmin100-60ep"
    # Best epochs: base and smooth averaged get clips 2 and 4 wrong (0.35, 0.6); snapshots: clip 3 (0.55).
    log_parent(base, 0.95, 0.01, split="speaker", prob_a=(0.6, 0.4, 0.1, 0.55), snapshot=(0.9, 0.6, 0.8, 0.3))
    log_parent(f"{base}-smooth", 0.948, 0.01, split="speaker", prob_a=(0.7, 0.3, 0.4, 0.65),
               snapshot=(0.8, 0.7, 0.3, 0.2))
    log_parent(f"{base}-seed1", 0.958, 0.01, split="speaker", prob_a=(0.3, 0.8, 0.2, 0.3))
    monkeypatch.setattr(results, "ENSEMBLES", [
        ablation.Ensemble("pair", "seed 0 and smoothing", (base, f"{base}-smooth")),
        ablation.Ensemble("no-snapshot", "seeds 0 and 1", (base, f"{base}-seed1")),
        ablation.Ensemble("unrun", "a row without a run", (base, f"{base}-seed2"))])
    text = results.main(["--out", str(tmp_path / "results.md"), "--records", str(tmp_path / "records")]).read_text()
    section = text.split("## Ensembles of rows")[1].split("## Snapshot ensembles")[0]
    assert [line for line in section.splitlines() if line.startswith("| `")] == [
        f"| `pair` | seed 0 and smoothing | `{base}` + `{base}-smooth` | 95.0 / 94.8 | 50.00 | 2 / 4 | 75.00 |",
        f"| `no-snapshot` | seeds 0 and 1 | `{base}` + `{base}-seed1` | 95.0 / 95.8 | 75.00 | 3 / 4 | – |"]


def test_clips_that_start_at_their_loudest_are_scored_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    use_experiment(EXPERIMENT)
    records = tmp_path / "records"
    records.mkdir()
    # Clips 1, 3 and 5 start at their loudest; the row gets clips 2 (a) and 3 (b) wrong.
    pd.DataFrame({"file": ["1.wav", "2.wav", "3.wav", "4.wav", "5.wav"], "start_db": [-0.5, -20.0, -2.9, -31.0, 0.0]}
                 ).to_csv(records / "fsdd.clip-starts.csv", index=False)
    log_parent("fsdd-resnet-speakers-fmin100", 0.95, 0.01, split="speaker", prob_a=(0.6, 0.4, 0.7, 0.2))
    log_parent("esc10-resnet", 0.9, 0.01, prob_a=(0.6, 0.4, 0.7, 0.2))  # no esc10.clip-starts.csv: not scored
    text = results.main(["--out", str(tmp_path / "results.md"), "--records", str(records)]).read_text()
    section = text.split("## Clips that start at their loudest")[1].split("## Commands")[0]
    assert "(fsdd: 3 of 5 clips; `python -m pipelines.clip_starts`)" in section  # 5.wav: in no row
    assert [line for line in section.splitlines() if line.startswith("| `")] == [
        "| `fsdd-resnet-speakers-fmin100` | fsdd (speaker) | 2 / 4 | 50.0 | 50.0 | 50.0 | 1 / 2 |"]
    pd.DataFrame({"file": ["1.wav"], "start_db": [0.0]}).to_csv(records / "fsdd.clip-starts.csv", index=False)
    with pytest.raises(ValueError, match="lacks clips of fsdd-resnet-speakers-fmin100: write it again"):
        results.main(["--out", str(tmp_path / "results.md"), "--records", str(records)])


def test_carried_over_record_renders_without_folds(tmp_path: Path) -> None:
    """A record from a source other than the store: its summary numbers, `–` where it has no folds or
    out-of-fold predictions, and where it came from."""
    summary = {"accuracy_mean": 0.922, "accuracy_std": 0.015, "last_epoch_accuracy_mean": 0.89,
               "last_epoch_accuracy_std": 0.024, "cv_wall_seconds": 1312.0}
    recorded: dict[str, results.Record | None] = {row.name: None for row in ROWS}
    for name, mean in (("esc10-cnn", 0.922), ("esc10-cnn-seed1", 0.923)):
        recorded[name] = results.Record(
            row=name, run_id="498e17d9", start_time=None, source="an earlier page",
            params={"data.dataset": "esc10", "data.split": "official", "model.name": "cnn"},
            metrics=summary | {"accuracy_mean": mean}, tags={"host.cpus": "2"})
    text = results.render(recorded, tmp_path)
    assert "Carried over, 2 rows (`esc10-cnn`, `esc10-cnn-seed1`): an earlier page." in text
    assert ("| `esc10-cnn` | CNN (4 conv blocks), no augmentation | esc10 (official) | cnn | 92.2 ± 1.5 | "
            "89.0 ± 2.4 | – | – | 2 CPUs | – | – | 1312 s | – | – | `498e17d9` |") in text
    assert "| `esc10-cnn` / `esc10-cnn-seed1` | 92.2 / 92.3 | +0.1 | – | 89.0 ± 2.4 / 89.0 ± 2.4 | – |" in text


def test_clips_every_row_gets_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Of three rows' out-of-fold predictions, the clips all three get wrong, with what each said."""
    recorded: dict[str, results.Record | None] = {row.name: None for row in ROWS}
    targets = list("abcab")
    for name, said in (("esc10-cnn", "bbcaa"), ("esc10-cnn-seed1", "cbcac"), ("esc10-cnn-wd", "bbcca"),
                       ("fsdd-cnn", "bbbbb")):  # another dataset: a table of its own, once it has two rows
        oof = pd.DataFrame({"file": [f"{i}.wav" for i in range(5)], "fold": [1, 1, 2, 2, 2], "target": targets})
        for label in "abc":
            oof[f"prob_{label}"] = [0.8 if s == label else 0.1 for s in said]
        recorded[name] = results.Record(row=name, run_id="0", start_time=None, source=results.FROM_MLFLOW,
                                        params={"data.dataset": name.split("-")[0], "data.split": "official"},
                                        metrics={}, tags={})
        results.write_record(recorded[name], tmp_path, oof.sample(frac=1, random_state=len(name)))
    lines = results.hard_clips(recorded, tmp_path)
    text = "\n".join(lines)
    assert ("esc10 (official): 2 of 5 clips wrong in all 3 rows (`esc10-cnn`, `esc10-cnn-seed1`, "
            "`esc10-cnn-wd`).") in text
    assert [line for line in lines if line.startswith("| `")] == [
        "| `0.wav` | 1 | a | b (2), c (1) |", "| `4.wav` | 2 | b | a (2), c (1) |"]
    assert "fsdd" not in text
    # Over the limit, the clips' shared confusions instead: label, what most rows said, clips, folds.
    monkeypatch.setattr(results, "HARD_CLIPS_LISTED", 1)
    summary = [line for line in results.hard_clips(recorded, tmp_path) if line.startswith("| ")]
    assert summary == ["| label | predicted by most rows | clips | folds |", "| a | b | 1 | 1 |", "| b | a | 1 | 2 |"]


def test_a_target_counts_the_mean_over_the_best_rows_seeds() -> None:
    def record(row: str, accuracy: float) -> results.Record:
        return results.Record(row=row, run_id="r", source="mlflow", start_time="", params={},
                              metrics={"accuracy_mean": accuracy, "last_epoch_accuracy_mean": accuracy - 0.02,
                                       "last_epoch_accuracy_std": 0.01}, tags={})
    recorded = {row.name: None for row in ROWS}
    recorded |= {"esc10-cnn-pcen-long": record("esc10-cnn-pcen-long", 0.965),
                 "esc10-cnn-pcen-long-seed1": record("esc10-cnn-pcen-long-seed1", 0.95),
                 "esc10-cnn": record("esc10-cnn", 0.955)}
    esc10 = results.targets(recorded)[0]
    assert esc10 == ("- ESC-10 5-fold CV from scratch >= 96%: NOT reached. Best of 3 rows: 96.5% with "
                     "`esc10-cnn-pcen-long` (last epoch: 94.5 ± 1.0%). Its 2 seeds average 95.8% (96.5 / 95.0); "
                     "the verdict counts that mean.")
    recorded["esc10-cnn-pcen-long-seed1"] = None  # one seed: its own accuracy decides, and the line says so
    assert results.targets(recorded)[0].startswith(
        "- ESC-10 5-fold CV from scratch >= 96%: reached in one run, not repeated from another seed. Best of 2 rows")
    recorded["esc10-cnn-pcen-long-seed1"] = record("esc10-cnn-pcen-long-seed1", 0.96)
    assert results.targets(recorded)[0].startswith("- ESC-10 5-fold CV from scratch >= 96%: reached. Best of 3 rows")


def test_gpu_runs_are_marked_and_timed_apart_from_the_cpu_target() -> None:
    def record(row: str, cuda_device: str, device: str, seconds: float) -> results.Record:
        return results.Record(row=row, run_id="0123456789", source="mlflow", start_time="",
                              params={"data.dataset": "esc10", "data.split": "official", "model.name": "resnet",
                                      "train.device": device},
                              metrics={"accuracy_mean": 0.9, "accuracy_std": 0.01, "total_wall_seconds": seconds},
                              tags={"torch.cuda_device": cuda_device, "host.cpus": "16"})
    recorded = {row.name: None for row in ROWS}
    recorded["esc10-resnet-gpu"] = record("esc10-resnet-gpu", "NVIDIA H100", "cuda", 48.0)
    recorded["esc10-resnet"] = record("esc10-resnet", "NVIDIA H100", "cpu", 1500.0)  # a GPU machine, on its CPU
    assert results.recipe_time(recorded)[0].startswith(
        "- The full ESC-10 recipe (5-fold CV and the final fit) within 60 minutes: reached. `esc10-resnet` took "
        "25.0 min on 16 CPUs")
    assert results.recipe_time(recorded)[1] == (
        "- The full ESC-10 recipe on a GPU (the target counts CPU runs only): `esc10-resnet-gpu` took 0.8 min on "
        "NVIDIA H100 with 16 CPUs.")
    assert results.record_cells(recorded["esc10-resnet-gpu"])[6] == "NVIDIA H100"
    assert results.record_cells(recorded["esc10-resnet"])[6] == "16 CPUs"
    assert results.HEADER[6] == "trained on"


def test_targets_without_runs_say_so() -> None:
    lines = results.targets({row.name: None for row in ROWS})
    assert lines == [f"- {what}: not measured yet (no row has a finished run)." for _, what in results.TARGETS.values()]
    assert results.recipe_time({row.name: None for row in ROWS}) == [
        "- The full ESC-10 recipe (5-fold CV and the final fit) within 60 minutes: not measured yet "
        "(no row with the final fit has a finished run)."]
