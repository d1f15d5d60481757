"""Ablation rows and explorations are `dvc exp run` commands built from one settings list."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines import ablation
from pipelines.ablation import EXPLORE_EXPERIMENT, ROWS, exploration

BY_NAME = {row.name: row for row in ROWS}


def settings(command: list[str]) -> dict[str, str]:
    """``-S key=value`` pairs of a command, failing on a key set twice."""
    pairs = [command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-S"]
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"keys set twice: {keys}"
    return dict(pairs)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_each_row_sets_each_key_once(row: ablation.Row) -> None:
    s = settings(row.command())
    assert s["mlflow.experiment"] == "ablation" and s["data.dataset"] in row.dataset
    assert row.command()[:6] == ["dvc", "exp", "run", "--temp", "train", "-n"]


@pytest.mark.parametrize("ensemble", ablation.ENSEMBLES, ids=lambda e: e.name)
def test_an_ensemble_averages_rows_of_one_dataset(ensemble: ablation.Ensemble) -> None:
    assert len(set(ensemble.members)) == len(ensemble.members) > 1
    assert len({BY_NAME[name].dataset for name in ensemble.members}) == 1


def test_an_exploration_replaces_the_rows_settings() -> None:
    row = BY_NAME["fsdd-resnet-speakers-short-masks"]
    explored = exploration(row, fold=4, epochs=10, settings=("train.time_mask=0.1", "features.f_min=100"))
    s = settings(explored.command())
    assert s["train.folds"] == "[4]" and s["train.epochs"] == "10" and s["train.restart_epochs"] == "5"
    assert s["train.time_mask"] == "0.1" and s["features.f_min"] == "100"
    assert s["model.top_db"] == "80.0" and s["data.split"] == "speaker"  # the row's own, kept
    assert s["train.fit_final"] == "false" and s["mlflow.experiment"] == EXPLORE_EXPERIMENT
    assert explored.name.startswith(row.name + "-x") and explored.name != row.name
    assert exploration(row, fold=4, epochs=10, settings=("train.time_mask=0.1", "features.f_min=100")) == explored
    assert exploration(row, fold=3, epochs=10).name != exploration(row, fold=4, epochs=10).name


def test_bad_explorations_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="needs a fold, an epoch count or a setting"):
        exploration(BY_NAME["esc10-resnet"])
    for argv, message in ((["esc10-resnet", "esc10-cnn", "--fold", "1"], "exactly one row"),
                          (["esc10-resnet", "-S", "features.f_min"], "'features.f_min' is not key=value"),
                          (["esc10-resnet", "--epochs", "0"], "--epochs must be >= 1")):
        with pytest.raises(SystemExit) as exit_info:
            ablation.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_settings_are_applied_as_dvc_exp_run_sets_them() -> None:
    params = {"train": {"epochs": 60, "folds": [1, 2]}, "model": {"name": "resnet"}}
    out = ablation.apply_settings(params, ["train.epochs=10", "train.folds=[4]", "model.widths=[8,16]",
                                           "data.source=/x/y", "train.epochs=12", "model.top_db=80.0"])
    assert out == {"train": {"epochs": 12, "folds": [4]}, "data": {"source": "/x/y"},
                   "model": {"name": "resnet", "widths": [8, 16], "top_db": 80.0}}
    assert params == {"train": {"epochs": 60, "folds": [1, 2]}, "model": {"name": "resnet"}}
    with pytest.raises(ValueError, match="'train.epochs' is not key=value"):
        ablation.apply_settings(params, ["train.epochs"])


STAGE = """import json, os, pathlib, sys, yaml
if sys.argv[1] == os.environ.get("FAIL_STAGE"):
    sys.exit(3)
with open(os.environ["RECORD"], "a") as f:
    f.write(json.dumps({"stage": sys.argv[1], "cwd": os.getcwd(), "params": yaml.safe_load(open("params.yaml")),
                        "copied": sorted(p.name for p in pathlib.Path().iterdir()),
                        "env": {k: os.environ.get(k)
                                for k in ("DVC_EXP_NAME", "MLFLOW_TRACKING_URI", "ESC_GIT_COMMIT")}})
            + "\\n")
"""


def source_tree(root: Path) -> Path:
    """A workspace whose dvc.yaml stages record what they see: cwd, params.yaml, files, env."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "stale.npz").write_text("an earlier run's output")
    (root / "stage.py").write_text(STAGE)
    (root / "params.yaml").write_text(yaml.safe_dump({"data": {"dataset": "esc50"}, "train": {"epochs": 60}}))
    stages = {name: {"cmd": f"python stage.py {name}"} for name in ("fetch", "features", "train", "export")}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    return root


def test_a_row_runs_without_dvc_in_a_temporary_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = source_tree(tmp_path / "workspace")
    monkeypatch.setenv("RECORD", str(tmp_path / "record.jsonl"))
    monkeypatch.setenv("ESC_GIT_COMMIT", "0123abc")  # no git checkout here: the caller names the commit
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/mlflow.db")
    row = ablation.Row("esc10-test", "esc10", "a test row", ("train.epochs=3", "model.widths=[8,16]"))
    ablation.run_row_without_dvc(row, source)

    seen = [json.loads(line) for line in (tmp_path / "record.jsonl").read_text().splitlines()]
    assert [s["stage"] for s in seen] == ["fetch", "features", "train"]  # in order, up to train
    assert len({s["cwd"] for s in seen}) == 1 and not Path(seen[0]["cwd"]).exists()  # one copy, removed after
    assert seen[0]["copied"] == ["dvc.yaml", "params.yaml", "stage.py"]  # no earlier outputs
    params = seen[-1]["params"]
    assert params["train"] == {"epochs": 3, "fit_final": False} and params["model"] == {"widths": [8, 16]}
    assert params["data"]["dataset"] == "esc10" and params["mlflow"] == {"experiment": "ablation"}
    assert seen[-1]["env"] == {"DVC_EXP_NAME": "esc10-test", "MLFLOW_TRACKING_URI": "sqlite:////somewhere/mlflow.db",
                               "ESC_GIT_COMMIT": "0123abc"}
    assert yaml.safe_load((source / "params.yaml").read_text())["train"] == {"epochs": 60}  # workspace untouched


def test_a_failed_stage_stops_a_run_without_dvc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = source_tree(tmp_path / "workspace")
    monkeypatch.setenv("RECORD", str(tmp_path / "record.jsonl"))
    monkeypatch.setenv("FAIL_STAGE", "features")
    row = ablation.Row("esc10-test", "esc10", "a test row")
    with pytest.raises(subprocess.CalledProcessError):
        ablation.run_row_without_dvc(row, source)
    assert [json.loads(line)["stage"] for line in (tmp_path / "record.jsonl").read_text().splitlines()] == ["fetch"]
    with pytest.raises(ValueError, match=r"has no stages \['evaluate'\]"):
        ablation.run_row_without_dvc(row, source, stages=("fetch", "evaluate"))


def test_the_main_job_trains_a_rows_settings_through_to_the_served_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run ROW=...`: the row's dataset and changes, then the user's own overrides; the final fit
    and the experiment stay the main job's."""
    from pipelines import run

    row = next(r for r in ablation.ROWS if r.name == "esc10-cnn-pcen-long")
    assert run.row_overrides(row.name) == [
        s for s in row.settings() if s not in ("train.fit_final=false", "mlflow.experiment=ablation")]
    assert "model.pcen_frames=17.0" in run.row_overrides(row.name)
    with pytest.raises(SystemExit, match="no ablation row 'esc10-best'.*--list"):
        run.row_overrides("esc10-best")

    seen: list[list[str]] = []

    def stop(overrides: list[str]) -> None:
        seen.append(overrides)
        raise KeyboardInterrupt  # no pipeline, no server

    monkeypatch.setattr(run, "reproduce", stop)
    with pytest.raises(KeyboardInterrupt):
        run.main(["--row", row.name, "--set", "train.epochs=2", "--set", "train.seed=3"])
    # A key the row sets takes the user's value in its place.
    assert seen == [[s.replace("train.epochs=120", "train.epochs=2") for s in run.row_overrides(row.name)]
                    + ["train.seed=3"]]
