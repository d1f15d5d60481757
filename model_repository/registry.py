"""The MLflow model registry as the way a model reaches serving.

``register`` (a DVC stage) adds each exported model as a new version with the alias
``challenger``. Promotion moves the ``champion`` alias to a version; serving fetches the Triton
repository that was logged with the version's run.

    python -m model_repository.registry promote --version 3            # @champion -> v3
    python -m model_repository.registry fetch --alias champion --out build/serving
    make serve ALIAS=champion                                          # fetch, then serve
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

REPOSITORY_ARTIFACT = "triton/model_repository"
DEFAULT_MODEL = "esc-classifier"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

log = logging.getLogger(__name__)


def set_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the sqlite store in the repository root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
    mlflow.set_tracking_uri(uri)
    return uri


def use_experiment(name: str) -> str:
    """Make ``name`` the active experiment, created if missing, and return its id.

    With a local sqlite store, a new experiment keeps its artifacts beside the store
    (``<store dir>/mlruns/<name>``), not under the working directory: ``dvc exp run --temp`` and
    ``dvc queue`` train in a temporary copy of the repository that is deleted after the run.
    """
    uri = set_tracking_uri()
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        store = Path(uri.removeprefix("sqlite:///")).resolve()
        mlflow.create_experiment(name, artifact_location=(store.parent / "mlruns" / name).as_uri())
    return mlflow.set_experiment(name).experiment_id


def client() -> MlflowClient:
    set_tracking_uri()
    return MlflowClient()


def promote(version: str, alias: str = "champion", name: str = DEFAULT_MODEL) -> None:
    c = client()
    try:
        c.get_model_version(name, version)
    except MlflowException as err:
        raise ValueError(f"{name} has no version {version}; list them in the MLflow UI "
                         f"(Models tab) or with `dvc repro register`") from err
    c.set_registered_model_alias(name, alias, version)
    log.info("%s@%s -> version %s", name, alias, version)


def fetch(alias: str, out: Path, name: str = DEFAULT_MODEL) -> Path:
    """Download the Triton repository of ``name@alias`` into ``out`` (replaced) and return it."""
    c = client()
    try:
        version = c.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        raise ValueError(
            f"no version of {name} carries the alias {alias!r}; promote one with "
            f"`python -m model_repository.registry promote --version N --alias {alias}`"
        ) from err
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(
        run_id=version.run_id, artifact_path=REPOSITORY_ARTIFACT, dst_path=str(out.parent / ".download")
    )
    shutil.move(local, out)
    shutil.rmtree(out.parent / ".download", ignore_errors=True)
    log.info("%s@%s (version %s, run %s) -> %s", name, alias, version.version, version.run_id, out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("promote", help="point an alias at a registered version")
    p.add_argument("--version", required=True)
    p.add_argument("--alias", default="champion")
    f = sub.add_parser("fetch", help="download the Triton repository of name@alias")
    f.add_argument("--alias", default="champion")
    f.add_argument("--out", type=Path, default=Path("build/serving/model_repository"))
    for s in (p, f):
        s.add_argument("--name", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    if args.command == "promote":
        promote(args.version, args.alias, args.name)
    else:
        print(fetch(args.alias, args.out, args.name))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
