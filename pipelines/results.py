"""Write ``docs/results.md`` from the metrics tracked in MLflow (nothing typed by hand).

For each ablation row (``pipelines/ablation.py``) the newest finished parent run tagged with the
row's DVC experiment name supplies the numbers; rows never run are listed as such, with their
command. The runs of the main pipeline (MLflow experiment ``esc``) follow, newest first.

    python -m pipelines.results            # writes docs/results.md
"""

from __future__ import annotations

import argparse
import logging
import shlex
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from model_repository.registry import set_tracking_uri
from pipelines.ablation import EXPERIMENT, RECIPE_BUDGET_SECONDS, ROWS, Row

log = logging.getLogger(__name__)
OUT = Path("docs/results.md")
TARGETS = {  # ablation dataset (Row.dataset) -> (accuracy target, what the target is)
    "esc10": (0.96, "ESC-10 5-fold CV from scratch >= 96%"),
    "fsdd": (0.995, "FSDD official split >= 99.5%"),
    "fsdd-speakers": (0.97, "FSDD leave-one-speaker-out mean >= 97%"),
}
SEED = "train.seed="


def parent_runs(client: MlflowClient, experiment: str) -> list[Run]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1000)
    # Parent runs of the current format (older runs lack the dataset parameters).
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags and "data.dataset" in r.data.params]


def pct(run: Run, key: str) -> str:
    m = run.data.metrics
    if f"{key}_mean" not in m:
        return "–"
    return f"{100 * m[f'{key}_mean']:.1f} ± {100 * m[f'{key}_std']:.1f}"


def fold_runs(client: MlflowClient, run: Run) -> list[Run]:
    """The nested run of each validation fold, in fold order."""
    folds = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    return sorted(folds, key=lambda f: int(f.data.params.get("fold", 0)))


def last_epoch(folds: list[Run]) -> str:
    """Mean ± std over the fold runs of the validation accuracy at the last epoch: no epoch chosen
    on the validation fold (the best-epoch accuracy is optimistic by that choice)."""
    last = [f.data.metrics["val_accuracy"] for f in folds if "val_accuracy" in f.data.metrics]
    return f"{100 * np.mean(last):.1f} ± {100 * np.std(last):.1f}" if last else "–"


def per_fold(ablation: dict[str, Run | None], folds: dict[str, list[Run]]) -> list[str]:
    """Rows validated on more than one named fold (FSDD: the left-out speaker): each fold's
    best-epoch accuracy, its last-epoch accuracy in brackets."""
    rows, names = [], {}
    for row in ROWS:
        run = ablation[row.name]
        fold_list = folds.get(run.info.run_id, []) if run else []
        if run is None or run.data.params.get("data.split") != "speaker" or len(fold_list) < 2:
            continue
        cells = {}
        for f in fold_list:
            n = int(f.data.params["fold"])
            names[n] = f.data.params.get("fold_name", names.get(n, f"fold {n}"))
            best, last = f.data.metrics.get("best_accuracy"), f.data.metrics.get("val_accuracy")
            cells[n] = ("–" if best is None else f"{100 * best:.1f}") + (
                "" if last is None else f" ({100 * last:.1f})")
        rows.append((row.name, cells))
    if not rows:
        return []
    order = sorted(names)
    return ["", "## Per fold", "", "Rows validated on one speaker per fold: best-epoch accuracy % "
            "(last-epoch accuracy %) of each left-out speaker.", "",
            *table([[f"`{name}`", *[cells.get(n, "–") for n in order]] for name, cells in rows],
                   ["row", *[names[n] for n in order]])]


def targets(ablation: dict[str, Run | None], last_epochs: dict[str, str]) -> list[str]:
    """Each target's verdict from the best of its dataset's rows (a choice made on the validation
    folds too, so optimistic by it)."""
    lines = []
    for dataset, (target, what) in TARGETS.items():
        runs = [(row.name, run) for row in ROWS if row.dataset == dataset
                and (run := ablation[row.name]) is not None and "accuracy_mean" in run.data.metrics]
        if not runs:
            lines.append(f"- {what}: not measured yet (no row has a finished run).")
            continue
        name, best = max(runs, key=lambda r: r[1].data.metrics["accuracy_mean"])
        value = best.data.metrics["accuracy_mean"]
        lines.append(f"- {what}: {'reached' if value >= target else 'NOT reached'}. Best of {len(runs)} "
                     f"row{'s' * (len(runs) > 1)}: {100 * value:.1f}% with `{name}` (last epoch: "
                     f"{last_epochs[best.info.run_id]}%).")
    return lines


def recipe_time(ablation: dict[str, Run | None]) -> list[str]:
    """The 60-minute target from the ESC-10 rows that time the whole recipe (CV and final fit)."""
    what = "The full ESC-10 recipe (5-fold CV and the final fit) within 60 minutes"
    timed = [(row.name, run) for row in ROWS if row.dataset == "esc10" and row.fit_final
             and (run := ablation[row.name]) is not None and "total_wall_seconds" in run.data.metrics]
    if not timed:
        return [f"- {what}: not measured yet (no row with the final fit has a finished run)."]
    lines = []
    for name, run in timed:
        seconds = run.data.metrics["total_wall_seconds"]
        tags = run.data.tags
        lines.append(
            f"- {what}: {'reached' if seconds <= RECIPE_BUDGET_SECONDS else 'NOT reached'}. `{name}` took "
            f"{seconds / 60:.1f} min on {tags.get('host.cpus', '?')} CPUs (GPU: {tags.get('torch.cuda_device', '?')}; "
            f"15-minute load at the end: {tags.get('host.loadavg_15min_at_end', '–')}). Other input resolutions, "
            "strides and widths, timed and projected: `docs/training_benchmarks.md` (`make bench-train`).")
    return lines


def seed_pairs() -> list[tuple[Row, Row]]:
    """(row, the row it repeats from another seed): rows whose settings differ only by ``train.seed``."""
    def settings(row: Row) -> tuple:
        return row.dataset, tuple(o for o in row.overrides if not o.startswith(SEED))

    def seeded(row: Row) -> bool:
        return any(o.startswith(SEED) for o in row.overrides)

    unseeded = {settings(r): r for r in ROWS if not seeded(r)}
    return [(row, unseeded[settings(row)]) for row in ROWS if seeded(row) and settings(row) in unseeded]


def out_of_fold(run: Run) -> pd.DataFrame | None:
    """The run's ``cv/oof_predictions.csv`` (a clip a row: file, fold, target, ``prob_<label>``),
    None where its artifacts are not in the store."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp,
                                                       artifact_path="cv/oof_predictions.csv")
        except (MlflowException, OSError):
            return None
        return pd.read_csv(path)


def ensemble_accuracy(tables: list[pd.DataFrame]) -> float:
    """Mean over folds of the accuracy of the runs' averaged probabilities (the same clips)."""
    tables = [t.sort_values("file").reset_index(drop=True) for t in tables]
    first = tables[0]
    if any(not t["file"].equals(first["file"]) for t in tables):
        raise ValueError("out-of-fold predictions of different clips cannot be averaged")
    probs = [c for c in first.columns if c.startswith("prob_")]
    mean = np.mean([t[probs].to_numpy() for t in tables], axis=0)  # (clips, classes)
    predicted = np.asarray([c.removeprefix("prob_") for c in probs])[mean.argmax(axis=1)]
    correct = pd.Series(predicted == first["target"].to_numpy())
    return float(correct.groupby(first["fold"].to_numpy()).mean().mean())


def seed_spread(ablation: dict[str, Run | None], folds: dict[str, list[Run]],
                oof: dict[str, pd.DataFrame | None]) -> list[str]:
    """The same settings from two seeds: how far apart their means and folds land, the scale for
    reading a difference between two rows, and what averaging the two would score."""
    rows = []
    for row, base in seed_pairs():
        runs = (ablation[base.name], ablation[row.name])
        if None in runs:
            continue
        best = [{f.data.params["fold"]: f.data.metrics.get("best_accuracy") for f in folds[r.info.run_id]}
                for r in runs]
        diffs = [100 * abs(best[1][n] - best[0][n]) for n in best[0]
                 if best[0][n] is not None and best[1].get(n) is not None]
        means = [100 * r.data.metrics["accuracy_mean"] for r in runs]
        tables = [oof.get(r.info.run_id) for r in runs]
        rows.append([f"`{base.name}` / `{row.name}`", f"{means[0]:.1f} / {means[1]:.1f}",
                     f"{means[1] - means[0]:+.1f}",
                     f"{np.median(diffs):.1f} / {max(diffs):.1f}" if diffs else "–",
                     " / ".join(last_epoch(folds[r.info.run_id]) for r in runs),
                     "–" if any(t is None for t in tables) else f"{100 * ensemble_accuracy(tables):.1f}"])
    if not rows:
        return []
    return ["", "## Seed spread", "", "Rows that repeat another from a different `train.seed`: best-epoch "
            "accuracy % of each, their difference, and the median and largest difference of one fold "
            "between the two: a difference between two rows of this size is what a seed alone can make. "
            "Ensemble: both runs' out-of-fold probabilities averaged, each fold's best epoch "
            "(`–`: a run's artifacts are not in the store).", "",
            *table(rows, ["rows", "accuracy %", "difference", "per fold: median / largest",
                          "last-epoch accuracy %", "ensemble accuracy %"])]


def number(run: Run, key: str, fmt: str = "{:.0f}") -> str:
    return fmt.format(run.data.metrics[key]) if key in run.data.metrics else "–"


def run_cells(run: Run, last_epochs: dict[str, str]) -> list[str]:
    p = run.data.params
    return [
        f"{p['data.dataset']} ({p['data.split']})", p["model.name"], pct(run, "accuracy"),
        last_epochs[run.info.run_id],
        pct(run, "top3_accuracy"), pct(run, "f1_macro"),
        number(run, "train_samples_per_second_median"), number(run, "inference_samples_per_second_median"),
        number(run, "cv_wall_seconds", "{:.0f} s"), number(run, "total_wall_seconds", "{:.0f} s"),
        run.data.tags.get("host.loadavg_15min_at_end", "–"),
        f"`{run.info.run_id[:8]}`",
    ]


HEADER = ["dataset (split)", "model", "accuracy %", "last-epoch accuracy %", "top-3 %", "macro F1 %", "train clips/s",
          "infer clips/s", "CV wall", "total wall", "load (15 min)", "MLflow run"]


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(r) + " |" for r in rows]]


def render(ablation: dict[str, Run | None], main_runs: list[Run], folds: dict[str, list[Run]],
           oof: dict[str, pd.DataFrame | None]) -> str:
    """The page; ``folds``: parent run id -> its fold runs (``fold_runs``); ``oof``: run id -> its
    out-of-fold predictions (``out_of_fold``), for the rows that repeat another from a new seed."""
    last_epochs = {run_id: last_epoch(fold_list) for run_id, fold_list in folds.items()}
    lines = ["# Results", "",
             f"Generated by `python -m pipelines.results` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
             "from the runs tracked in MLflow; every number below is a tracked metric. Accuracy, top-3 "
             "and macro F1 are the mean ± std over the validation folds (population std) of each fold's "
             "best epoch, chosen on that validation fold (the recipe's checkpoint rule, optimistic by "
             "that choice); last-epoch accuracy is the same mean with no epoch chosen. Clips/s are "
             "medians over folds of the training and validation-inference throughput. Load is the "
             "machine's 15-minute load average when the run ended (2 cores: above 2 means other work "
             "shared the CPU and the timings are pessimistic; `–`: not recorded).", "",
             "## Ablation", ""]
    rows = []
    for row in ROWS:
        run = ablation[row.name]
        rows.append([f"`{row.name}`", row.description,
                     *(run_cells(run, last_epochs) if run else ["no finished run", *[""] * (len(HEADER) - 1)])])
    lines += table(rows, ["row", "what", *HEADER])
    hosts = {(r.data.tags.get("host.processor", "?"), r.data.tags.get("host.cpus", "?"),
              r.data.tags.get("torch.cuda_device", "?")) for r in ablation.values() if r}
    lines += ["", "Machines: " + "; ".join(f"{p}, {c} CPUs, GPU: {g}" for p, c, g in sorted(hosts))
              if hosts else "", "", "## Targets", ""]
    lines += targets(ablation, last_epochs)
    lines += recipe_time(ablation)
    lines += per_fold(ablation, folds)
    lines += seed_spread(ablation, folds, oof)
    lines += ["", "## Commands", "", "Each row, from the repository root with `.venv` active "
              "(`python -m pipelines.ablation <row>` runs the same):", ""]
    for row in ROWS:
        lines += [f"- `{row.name}`:", "  ```bash", f"  {shlex.join(row.command())}", "  ```"]
    lines += ["", "## Main pipeline runs (`dvc repro` / `make run`)", ""]
    if main_runs:
        lines += table([run_cells(r, last_epochs) + [r.data.tags.get("dvc_experiment", "")] for r in main_runs],
                       [*HEADER, "dvc experiment"])
    else:
        lines.append("None tracked yet.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    set_tracking_uri()
    client = MlflowClient()
    runs = parent_runs(client, EXPERIMENT)
    ablation: dict[str, Run | None] = {
        row.name: next((r for r in runs if r.data.tags.get("dvc_experiment") == row.name), None)
        for row in ROWS
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    main_runs = parent_runs(client, "esc")[:10]
    shown = [r for r in ablation.values() if r] + main_runs
    folds = {r.info.run_id: fold_runs(client, r) for r in shown}
    paired = [ablation[row.name] for pair in seed_pairs() for row in pair]
    oof = {r.info.run_id: out_of_fold(r) for r in paired if r}
    args.out.write_text(render(ablation, main_runs, folds, oof))
    log.info("wrote %s", args.out)
    return args.out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
