"""Ablation rows and explorations are `dvc exp run` commands built from one settings list."""

from __future__ import annotations

import pytest

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
