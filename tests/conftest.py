"""Shared fixtures: the real shared data, one QUICK pipeline run, one real Triton server.

The pipeline runs once per session with DVC in a temporary copy of the repository (tracked and
untracked-not-ignored files), on the real ESC-10 with a tiny model; the server fixture serves the
repository that run exported.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ESC_SHARED_DATA", ROOT.parent / "shared" / "data"))
ESC10 = DATA / "esc10"
needs_esc10 = pytest.mark.skipif(not (ESC10 / "audio").is_dir(), reason=f"no ESC-10 under {DATA}")

# A smoke configuration: the real data and stages, a tiny model, one epoch.
QUICK_OVERRIDES = [
    "data.dataset=esc10",
    f"data.source={ESC10}",
    "model.stem_channels=8",
    "model.widths=[8,16,32,64]",
    "model.stem_stride=2",
    "train.epochs=1",
    "serving.max_seconds=10.0",
]


def env_with_venv() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env_with_venv(), capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}"
                             f"\n{result.stderr[-4000:]}")
    return result


def copy_repository(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    run(["git", "init", "-q"], dest)
    run([*git, "add", "-A"], dest)
    run([*git, "commit", "-q", "-m", "copy"], dest)
    return dest


@dataclass(frozen=True)
class PipelineRun:
    root: Path
    repro_stdout: str

    @property
    def model_repository(self) -> Path:
        return self.root / "artifacts" / "model_repository"


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    if not (ESC10 / "audio").is_dir():
        pytest.skip(f"no ESC-10 under {DATA}")
    root = copy_repository(tmp_path_factory.mktemp("repo"))
    overrides = [arg for o in QUICK_OVERRIDES for arg in ("-S", o)]
    result = run(["dvc", "exp", "run", *overrides], root)
    return PipelineRun(root, result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def triton(pipeline_run: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from model_repository.server import Ports, TritonServer

    log_file = tmp_path_factory.mktemp("triton") / "tritonserver.log"
    server = TritonServer(pipeline_run.model_repository, Ports(free_port(), free_port(), free_port()),
                          log_file=log_file)
    with server:
        yield server
