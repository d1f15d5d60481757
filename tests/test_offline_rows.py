"""deploy/offline_rows.sh: its guards, and what `run` hands each row (on a stand-in for pipelines.ablation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines import provenance

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "offline_rows.sh"

STAND_IN = """
import json, os, sys
keys = ["PYTHONPATH", "ESC_SHARED_DATA", "MLFLOW_TRACKING_URI", "ESC_GIT_COMMIT", "ESC_GIT_CHANGED_FILES"]
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], **{k: os.environ.get(k) for k in keys}}) + "\\n")
print("ran", sys.argv[1])
"""


def offline_rows(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # python3: this interpreter
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PATH": path, **env})


def test_guards_name_the_fix(tmp_path: Path) -> None:
    usage = offline_rows(cwd=tmp_path)
    assert usage.returncode == 2 and "bundle DATASET..." in usage.stderr
    assert offline_rows("bundle", cwd=tmp_path).returncode == 2
    missing = offline_rows("bundle", "esc10", cwd=tmp_path, ESC_SHARED_DATA=str(tmp_path / "none"))
    assert missing.returncode == 1 and "set ESC_SHARED_DATA" in missing.stderr
    no_site = offline_rows("run", "store", "esc10-cnn", cwd=tmp_path, OFFLINE_SITE=str(tmp_path / "site"))
    assert no_site.returncode == 1 and "offline_rows.sh install' first" in no_site.stderr


def test_run_hands_each_row_the_bundle_store_and_commit(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "__init__.py").write_text("")
    (tmp_path / "pipelines" / "ablation.py").write_text(STAND_IN)
    site = tmp_path / "site"
    (site / "mlflow").mkdir(parents=True)
    bundle = tmp_path / ".offline"
    (bundle / "data").mkdir(parents=True)
    (bundle / "commit").write_text("0123abc\n")
    (bundle / "changed_files").write_text("README.md\nparams.yaml\n")
    calls = tmp_path / "calls.jsonl"

    done = offline_rows("run", "out/store", "row-a", "row-b", cwd=tmp_path, OFFLINE_SITE=str(site), CALLS=str(calls))

    assert done.returncode == 0, done.stderr
    store = tmp_path / "out" / "store"
    seen = [json.loads(line) for line in calls.read_text().splitlines()]
    assert [s["argv"] for s in seen] == [["row-a", "--without-dvc"], ["row-b", "--without-dvc"]]
    for s in seen:
        assert s["PYTHONPATH"].split(os.pathsep)[0] == str(site)
        assert s["ESC_SHARED_DATA"] == ".offline/data"
        assert s["MLFLOW_TRACKING_URI"] == f"sqlite:///{store}/mlflow.db"
        assert s["ESC_GIT_COMMIT"] == "0123abc"
        assert s["ESC_GIT_CHANGED_FILES"] == "README.md params.yaml"
    assert (store / "row-b.log").read_text() == "ran row-b\n"


def test_provenance_writes_what_run_hands_on(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert provenance.main([str(tmp_path / "out")]) == 1  # no checkout: nothing written
    assert not (tmp_path / "out").exists()
    git = lambda *args: subprocess.run(["git", *args], check=True, capture_output=True, text=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "params")
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "README.md").write_text("not committed\n")

    assert provenance.main([".offline"]) == 0  # as bundle calls it

    bundle = tmp_path / ".offline"
    assert (bundle / "commit").read_text() == git("rev-parse", "HEAD").stdout
    assert (bundle / "changed_files").read_text() == "README.md\nparams.yaml\n"
