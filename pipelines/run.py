"""The main job (``make run``): reproduce the pipeline, serve it, classify held-out clips.

Not a DVC stage. Steps: ``dvc repro`` (or ``dvc exp run -S key=value ...`` when overrides are
given, which records them in params.yaml as DVC experiments do; ``--row`` takes an ablation row's
settings, e.g. the best one in docs/results.md, with the final fit and export); start the real
Triton server on the exported repository; classify clips of ``train.holdout_fold`` (never seen by
the exported model) over gRPC and HTTP; stop the server; print where the results are.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from client.triton import EscClient
from model_repository.server import Ports, TritonServer
from pipelines import paths
from pipelines.ablation import ROWS, merge_settings
from pipelines.params import load_params

log = logging.getLogger(__name__)


def row_overrides(name: str) -> list[str]:
    """An ablation row's settings as the main job's overrides: its dataset and changes, trained
    through to the exported model (the final fit) and tracked in params.yaml's experiment."""
    row = next((r for r in ROWS if r.name == name), None)
    if row is None:
        raise SystemExit(f"no ablation row {name!r}: `python -m pipelines.ablation --list` shows them")
    return [s for s in row.settings() if not s.startswith(("train.fit_final=", "mlflow.experiment="))]


def reproduce(overrides: list[str]) -> None:
    cmd = ["dvc", "exp", "run", *[a for o in overrides for a in ("-S", o)]] if overrides else ["dvc", "repro"]
    log.info("running: %s", " ".join(cmd))
    subprocess.run(cmd, check=True)


def holdout_clips(n: int) -> pd.DataFrame:
    """Up to ``n`` clips of the holdout fold, one per class first."""
    meta = pd.read_csv(paths.PREPARED / "meta.csv")
    fold = load_params()["train"]["holdout_fold"]
    pool = meta[meta["fold"] == fold] if fold else meta
    return pool.groupby("target").head(1).head(n)


def classify(clips: pd.DataFrame, server: TritonServer, top_k: int) -> int:
    """Classify over both protocols; returns how many top-1 answers were right (gRPC)."""
    correct = 0
    with EscClient(server.grpc_url, "grpc") as grpc, EscClient(server.http_url, "http") as http:
        for row in clips.itertuples():
            path = paths.PREPARED / "audio" / row.filename
            by_grpc, by_http = grpc.classify_file(path, top_k), http.classify_file(path, top_k)
            same = [k for k, _ in by_grpc.top] == [k for k, _ in by_http.top]
            label, prob = by_grpc.top[0]
            correct += label == row.category
            print(f"{row.filename:<24s} truth={row.category:<16s} top-1={label:<16s} {prob:6.1%}  "
                  f"top-{top_k}: {', '.join(k for k, _ in by_grpc.top)}  grpc==http: {same}")
    return correct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="params.yaml override, e.g. data.dataset=esc10 (repeatable)")
    parser.add_argument("--row", help="an ablation row's settings, before any --set (e.g. esc10-cnn-pcen-long)")
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args(argv)

    try:
        overrides = merge_settings([*(row_overrides(args.row) if args.row else []), *args.set])
    except ValueError as e:
        parser.error(str(e))
    reproduce(overrides)
    clips = holdout_clips(args.clips)
    log_file = Path(tempfile.gettempdir()) / "esc-tritonserver.log"
    with TritonServer(paths.MODEL_REPOSITORY, Ports(), log_file=log_file) as server:
        print(f"\nTriton ready on HTTP {server.http_url}, gRPC {server.grpc_url}; "
              f"classifying {len(clips)} held-out clips:")
        correct = classify(clips, server, args.top_k)
    print(f"\n{correct}/{len(clips)} held-out clips right at top-1 (a tiny sample; see metrics)")
    print("\nResults:")
    print(f"  metrics:          dvc metrics show   ({paths.METRICS}/train.json, export.json)")
    print(f"  learning curves:  dvc plots show     ({paths.METRICS}/learning_curves.csv)")
    print("  MLflow:           mlflow ui --backend-store-uri sqlite:///mlflow.db")
    print(f"  model repository: {paths.MODEL_REPOSITORY}  (serve it with `make serve`)")
    print(f"  server log:       {log_file}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
