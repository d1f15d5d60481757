"""Write ``docs/results.md`` from the ablation's run records (nothing typed by hand).

Two steps, both run by ``python -m pipelines.results``:

1. Record: for each ablation row (``pipelines/ablation.py``), the newest finished MLflow parent run
   tagged with the row's DVC experiment name is written to ``docs/ablation/<row>.json`` (its
   parameters, summary metrics and provenance tags; each fold's metrics and validation accuracy
   by epoch) and ``docs/ablation/<row>.oof.csv.gz`` (its out-of-fold predictions; the snapshot
   ensemble's, where the run wrote them, in ``<row>.snapshot.oof.csv.gz``). A record whose
   row has no run in this store (a fresh checkout, another machine) is kept as it is: committed,
   the records are the durable copy of what a store held.
2. Render the page from the records: the table, each target's verdict, per-speaker folds, seed
   spread and out-of-fold ensembles, declared ensembles of rows, snapshot ensembles, clips every row
   gets wrong, accuracy on clips that start mid-sound, and the command that reproduces each row.

    python -m pipelines.results            # updates docs/ablation/, writes docs/results.md
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from model_repository.registry import set_tracking_uri
from pipelines.ablation import ENSEMBLES, EXPERIMENT, RECIPE_BUDGET_SECONDS, ROWS, Row
from pipelines.clip_starts import CUT_DB, FRAME_SECONDS
from training.loop import snapshot_epochs

log = logging.getLogger(__name__)
OUT = Path("docs/results.md")
RECORDS = Path("docs/ablation")
TARGETS = {  # ablation dataset (Row.dataset) -> (accuracy target, what the target is)
    "esc10": (0.96, "ESC-10 5-fold CV from scratch >= 96%"),
    "fsdd": (0.995, "FSDD official split >= 99.5%"),
    "fsdd-speakers": (0.97, "FSDD leave-one-speaker-out mean >= 97%"),
}
SEED = "train.seed="
FROM_MLFLOW = "mlflow"
HARD_CLIPS_LISTED = 40  # more clips every row gets wrong: a table of their confusions instead


@dataclass
class Record:
    """One ablation row's finished run.

    ``metrics``: the parent run's (``accuracy_mean``, ``cv_wall_seconds``, ...) plus
    ``last_epoch_accuracy_mean`` / ``_std`` over the folds' last-epoch validation accuracy.
    ``folds``: one dict per validation fold, in fold order: ``fold``, ``fold_name`` where the
    split names it, ``metrics`` (``best_accuracy``: the chosen epoch's; ``val_accuracy``: the
    last epoch's) and ``val_accuracy`` by epoch. ``source``: ``mlflow`` for a record written from
    the tracking store, else where the numbers came from.
    """

    row: str
    run_id: str
    start_time: str | None  # the run's start, ISO 8601 UTC
    source: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    folds: list[dict] = field(default_factory=list)

    def path(self, records: Path) -> Path:
        return records / f"{self.row}.json"

    def oof_path(self, records: Path, kind: str = "") -> Path:
        """``kind``: "" for the chosen epochs' predictions, "snapshot" for the snapshot ensemble's."""
        return records / f"{self.row}{'.' + kind if kind else ''}.oof.csv.gz"

    def pct(self, key: str) -> str:
        m = self.metrics
        if f"{key}_mean" not in m:
            return "–"
        return f"{100 * m[f'{key}_mean']:.1f} ± {100 * m[f'{key}_std']:.1f}"

    def number(self, key: str, fmt: str = "{:.0f}") -> str:
        return fmt.format(self.metrics[key]) if key in self.metrics else "–"

    def best_by_fold(self) -> dict[int, float]:
        return {f["fold"]: f["metrics"]["best_accuracy"] for f in self.folds if "best_accuracy" in f["metrics"]}


def load_records(records: Path) -> dict[str, Record]:
    return {p.stem: Record(**json.loads(p.read_text())) for p in sorted(records.glob("*.json"))}


def write_record(record: Record, records: Path, oof: pd.DataFrame | None,
                 snapshot_oof: pd.DataFrame | None = None) -> None:
    records.mkdir(parents=True, exist_ok=True)
    record.path(records).write_text(json.dumps(asdict(record), indent=1, sort_keys=True) + "\n")
    for kind, table in (("", oof), ("snapshot", snapshot_oof)):
        path = record.oof_path(records, kind)
        if table is not None:  # mtime 0: the same predictions give the same bytes
            table.to_csv(path, index=False, float_format="%.6g", compression={"method": "gzip", "mtime": 0})
        else:
            path.unlink(missing_ok=True)


def out_of_fold(record: Record, records: Path, kind: str = "") -> pd.DataFrame | None:
    """The record's out-of-fold predictions (a clip a row: file, fold, target, ``prob_<label>``),
    None where it has none; ``kind="snapshot"``: the snapshot ensemble's."""
    path = record.oof_path(records, kind)
    return pd.read_csv(path) if path.is_file() else None


def parent_runs(client: MlflowClient, experiment: str) -> list[Run]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1000)
    # Parent runs of the current format (older runs lack the dataset parameters).
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags and "data.dataset" in r.data.params]


def fold_runs(client: MlflowClient, run: Run) -> list[Run]:
    """The nested run of each validation fold, in fold order."""
    folds = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    return sorted(folds, key=lambda f: int(f.data.params.get("fold", 0)))


def tracked_out_of_fold(run: Run, name: str = "oof_predictions.csv") -> pd.DataFrame | None:
    """The run's ``cv/<name>``, None where the store does not hold it."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp,
                                                       artifact_path=f"cv/{name}")
        except (MlflowException, OSError):
            return None
        return pd.read_csv(path)


def record_from_run(client: MlflowClient, row: str, run: Run) -> Record:
    folds = []
    for f in fold_runs(client, run):
        history = sorted(client.get_metric_history(f.info.run_id, "val_accuracy"), key=lambda m: m.step)
        folds.append({"fold": int(f.data.params["fold"]), "metrics": dict(f.data.metrics),
                      "val_accuracy": [m.value for m in history]}
                     | ({"fold_name": f.data.params["fold_name"]} if "fold_name" in f.data.params else {}))
    metrics = dict(run.data.metrics)
    last = [f["metrics"]["val_accuracy"] for f in folds if "val_accuracy" in f["metrics"]]
    if last:  # no epoch chosen on the validation fold
        metrics |= {"last_epoch_accuracy_mean": float(np.mean(last)), "last_epoch_accuracy_std": float(np.std(last))}
    start = datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc)
    return Record(row=row, run_id=run.info.run_id, start_time=start.isoformat(timespec="seconds"),
                  source=FROM_MLFLOW, params=dict(run.data.params), metrics=metrics,
                  tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}, folds=folds)


def update_records(client: MlflowClient, records: Path) -> list[str]:
    """Write the record of each row whose newest finished run in the store is not yet recorded;
    returns those rows."""
    runs = parent_runs(client, EXPERIMENT)
    known = load_records(records)
    updated = []
    for row in ROWS:
        run = next((r for r in runs if r.data.tags.get("dvc_experiment") == row.name), None)
        if run is None or (row.name in known and known[row.name].run_id == run.info.run_id):
            continue
        write_record(record_from_run(client, row.name, run), records, tracked_out_of_fold(run),
                     tracked_out_of_fold(run, "oof_snapshot_predictions.csv"))
        updated.append(row.name)
    return updated


def per_fold(recorded: dict[str, Record | None]) -> list[str]:
    """Rows validated on more than one fold, one table per dataset and split: each fold's
    best-epoch accuracy, its last-epoch accuracy in brackets (FSDD by speaker: folds named)."""
    groups: dict[tuple[str, str], tuple[list, dict]] = {}  # (dataset, split) -> (rows, fold names)
    for row in ROWS:
        rec = recorded[row.name]
        if rec is None or len(rec.folds) < 2:
            continue
        rows, names = groups.setdefault((rec.params["data.dataset"], rec.params["data.split"]), ([], {}))
        cells = {}
        for f in rec.folds:
            n = f["fold"]
            names[n] = f.get("fold_name", names.get(n, f"fold {n}"))
            best, last = f["metrics"].get("best_accuracy"), f["metrics"].get("val_accuracy")
            cells[n] = (("–" if best is None else f"{100 * best:.1f}")
                        + ("" if last is None else f" ({100 * last:.1f})"))
        rows.append((row.name, cells))
    if not groups:
        return []
    lines = ["", "## Per fold", "", "Rows with accuracies of more than one validation fold: best-epoch "
             "accuracy % (last-epoch accuracy %) of each fold; FSDD by speaker: the left-out speaker."]
    for (dataset, split), (rows, names) in groups.items():
        order = sorted(names)
        lines += ["", f"{dataset} ({split}):", "",
                  *table([[f"`{name}`", *[cells.get(n, "–") for n in order]] for name, cells in rows],
                         ["row", *[names[n] for n in order]])]
    return lines


def targets(recorded: dict[str, Record | None]) -> list[str]:
    """Each target's verdict from the best of its dataset's rows (a choice made on the validation
    folds too, so optimistic by it). Where that row was run from several seeds, the verdict counts
    their mean: the best of several seeds is one more choice. A single run over the target says so."""
    lines = []
    for dataset, (target, what) in TARGETS.items():
        recs = [(row.name, rec) for row in ROWS if row.dataset == dataset
                and (rec := recorded[row.name]) is not None and "accuracy_mean" in rec.metrics]
        if not recs:
            lines.append(f"- {what}: not measured yet (no row has a finished run).")
            continue
        name, best = max(recs, key=lambda r: r[1].metrics["accuracy_mean"])
        value = best.metrics["accuracy_mean"]
        group = next((g for g in seed_groups() if name in {row.name for row in g}), [])
        seeds = [rec.metrics["accuracy_mean"] for row in group
                 if (rec := recorded[row.name]) is not None and "accuracy_mean" in rec.metrics]
        counted = ""
        if len(seeds) > 1:
            value = float(np.mean(seeds))
            counted = (f" Its {len(seeds)} seeds average {100 * value:.1f}% ("
                       + " / ".join(f"{100 * a:.1f}" for a in seeds) + "); the verdict counts that mean.")
        verdict = "NOT reached"
        if value >= target:
            verdict = "reached" if len(seeds) > 1 else "reached in one run, not repeated from another seed"
        lines.append(f"- {what}: {verdict}. Best of {len(recs)} "
                     f"row{'s' * (len(recs) > 1)}: {100 * best.metrics['accuracy_mean']:.1f}% with `{name}` "
                     f"(last epoch: {best.pct('last_epoch_accuracy')}%).{counted}")
    return lines


def recipe_time(recorded: dict[str, Record | None]) -> list[str]:
    """The 60-minute target from the ESC-10 rows that time the whole recipe (CV and final fit)."""
    what = "The full ESC-10 recipe (5-fold CV and the final fit) within 60 minutes"
    timed = [(row.name, rec) for row in ROWS if row.dataset == "esc10" and row.fit_final
             and (rec := recorded[row.name]) is not None and "total_wall_seconds" in rec.metrics]
    if not timed:
        return [f"- {what}: not measured yet (no row with the final fit has a finished run)."]
    lines = []
    for name, rec in timed:
        seconds = rec.metrics["total_wall_seconds"]
        tags = rec.tags
        if gpu(rec):
            lines.append(f"- The full ESC-10 recipe on a GPU (the target counts CPU runs only): `{name}` took "
                         f"{seconds / 60:.1f} min on {gpu(rec)} with {tags.get('host.cpus', '?')} CPUs.")
            continue
        lines.append(
            f"- {what}: {'reached' if seconds <= RECIPE_BUDGET_SECONDS else 'NOT reached'}. `{name}` took "
            f"{seconds / 60:.1f} min on {tags.get('host.cpus', '?')} CPUs (GPU: {tags.get('torch.cuda_device', '?')}; "
            f"15-minute load at the end: {tags.get('host.loadavg_15min_at_end', '–')}). Other input resolutions, "
            "strides and widths, timed and projected: `docs/training_benchmarks.md` (`make bench-train`).")
    return lines


def seed_groups() -> list[list[Row]]:
    """Rows whose settings differ only by ``train.seed``, the unseeded row first, in groups of two
    or more."""
    def settings(row: Row) -> tuple:
        return row.dataset, tuple(o for o in row.overrides if not o.startswith(SEED))

    def seeded(row: Row) -> bool:
        return any(o.startswith(SEED) for o in row.overrides)

    groups: dict[tuple, list[Row]] = {}
    for row in ROWS:
        groups.setdefault(settings(row), []).append(row)
    return [sorted(g, key=seeded) for g in groups.values() if len(g) > 1 and not all(map(seeded, g))]


def seed_pairs() -> list[tuple[Row, Row]]:
    """(row, the row it repeats from another seed): each seeded row with its group's unseeded one."""
    return sorted(((row, group[0]) for group in seed_groups() for row in group[1:]),
                  key=lambda pair: ROWS.index(pair[0]))


def ensemble_correct(tables: list[pd.DataFrame]) -> pd.Series:
    """Whether the runs' averaged probabilities pick each clip's label: (clips,) bool, indexed by fold."""
    tables = [t.sort_values("file").reset_index(drop=True) for t in tables]
    first = tables[0]
    if any(not t["file"].equals(first["file"]) for t in tables):
        raise ValueError("out-of-fold predictions of different clips cannot be averaged")
    probs = [c for c in first.columns if c.startswith("prob_")]
    mean = np.mean([t[probs].to_numpy() for t in tables], axis=0)  # (clips, classes)
    predicted = np.asarray([c.removeprefix("prob_") for c in probs])[mean.argmax(axis=1)]
    return pd.Series(predicted == first["target"].to_numpy(), index=first["fold"].to_numpy())


def ensemble_accuracy(tables: list[pd.DataFrame]) -> float:
    """Mean over folds of the accuracy of the runs' averaged probabilities (the same clips)."""
    return float(ensemble_correct(tables).groupby(level=0).mean().mean())


def seed_spread(recorded: dict[str, Record | None], records: Path) -> list[str]:
    """The same settings from two seeds: how far apart their means and folds land, the scale for
    reading a difference between two rows, and what averaging the two would score."""
    rows = []
    for row, base in seed_pairs():
        recs = (recorded[base.name], recorded[row.name])
        if None in recs:
            continue
        best = [r.best_by_fold() for r in recs]
        diffs = [100 * abs(best[1][n] - best[0][n]) for n in best[0] if n in best[1]]
        means = [100 * r.metrics["accuracy_mean"] for r in recs]
        tables = [out_of_fold(r, records) for r in recs]
        rows.append([f"`{base.name}` / `{row.name}`", f"{means[0]:.1f} / {means[1]:.1f}",
                     f"{means[1] - means[0]:+.1f}",
                     f"{np.median(diffs):.1f} / {max(diffs):.1f}" if diffs else "–",
                     " / ".join(r.pct("last_epoch_accuracy") for r in recs),
                     "–" if any(t is None for t in tables) else f"{100 * ensemble_accuracy(tables):.1f}"])
    if not rows:
        return []
    lines = ["", "## Seed spread", "", "Rows that repeat another from a different `train.seed`: best-epoch "
             "accuracy % of each, their difference, and the median and largest difference of one fold "
             "between the two: a difference between two rows of this size is what a seed alone can make. "
             "Ensemble: both runs' out-of-fold probabilities averaged, each fold's best epoch "
             "(`–`: a record without fold accuracies or out-of-fold predictions).", "",
             *table(rows, ["rows", "accuracy %", "difference", "per fold: median / largest",
                           "last-epoch accuracy %", "ensemble accuracy %"])]
    for group in seed_groups():  # three seeds or more: all of them averaged
        recs = [rec for row in group if (rec := recorded[row.name]) is not None]
        tables = [out_of_fold(rec, records) for rec in recs]
        if len(recs) < 3 or any(t is None for t in tables):
            continue
        lines += ["", f"All {len(recs)} seeds of `{group[0].name}` averaged ("
                  + " + ".join(f"`{rec.row}`" for rec in recs) + f"): {100 * ensemble_accuracy(tables):.1f}% "
                  "(each: " + " / ".join(f"{100 * rec.metrics['accuracy_mean']:.1f}" for rec in recs) + "%)."]
    return lines


def row_ensembles(recorded: dict[str, Record | None], records: Path) -> list[str]:
    """The declared ensembles of rows (``pipelines.ablation.ENSEMBLES``) whose members all recorded
    out-of-fold predictions: at each member's best epochs and, free of that choice, from each
    member's snapshot ensemble."""
    rows = []
    for ens in ENSEMBLES:
        recs = [recorded.get(name) for name in ens.members]
        best = [out_of_fold(rec, records) for rec in recs if rec is not None]
        if len(best) < len(ens.members) or any(t is None for t in best):
            continue
        correct = ensemble_correct(best)
        snapshot = [out_of_fold(rec, records, "snapshot") for rec in recs]
        snap = "–" if any(t is None for t in snapshot) else f"{100 * ensemble_accuracy(snapshot):.2f}"
        rows.append([f"`{ens.name}`", ens.description, " + ".join(f"`{name}`" for name in ens.members),
                     " / ".join(f"{100 * rec.metrics['accuracy_mean']:.1f}" for rec in recs),
                     f"{100 * correct.groupby(level=0).mean().mean():.2f}",
                     f"{int(correct.sum())} / {len(correct)}", snap])
    if not rows:
        return []
    return ["", "## Ensembles of rows", "", "Declared in `pipelines/ablation.py` (`ENSEMBLES`): the rows' "
            "out-of-fold probabilities averaged clip by clip, at each fold's best epoch of each row (each "
            "chosen on that fold, so optimistic by that choice, and the members themselves were mostly "
            "picked after their runs) and from each row's snapshot ensemble (no epoch chosen; `–`: a member "
            "without one). Accuracy is the mean over folds, to two decimals so that one clip shows.", "",
            *table(rows, ["ensemble", "what", "rows", "each row's accuracy %", "ensemble accuracy %",
                          "clips right", "snapshot-ensemble accuracy %"])]


def snapshot_ensembles(recorded: dict[str, Record | None]) -> list[str]:
    """Rows that scored their snapshot ensemble: it against the best and the last epoch."""
    rows = []
    for row in ROWS:
        rec = recorded[row.name]
        if rec is None or "snapshot_accuracy_mean" not in rec.metrics:
            continue
        epochs = snapshot_epochs(int(rec.params["train.epochs"]), int(rec.params["train.restart_epochs"]))
        by_fold = " / ".join(f"{100 * f['metrics']['snapshot_accuracy']:.1f}" for f in rec.folds
                             if "snapshot_accuracy" in f["metrics"])
        rows.append([f"`{row.name}`", ", ".join(map(str, epochs)), rec.pct("accuracy"),
                     rec.pct("last_epoch_accuracy"), rec.pct("snapshot_accuracy"), by_fold or "–"])
    if not rows:
        return []
    return ["", "## Snapshot ensembles", "", "Each fold's validation probabilities averaged over the weights "
            "at the end of each restart cycle and at the last epoch (Huang et al., 2017): epochs fixed by "
            "the schedule, none chosen on the validation fold, so, like the last epoch, free of the "
            "best epoch's optimism. Mean ± std over folds, then each fold in fold order.", "",
            *table(rows, ["row", "snapshot epochs", "best-epoch accuracy %", "last-epoch accuracy %",
                          "snapshot-ensemble accuracy %", "per fold %"])]


def top_label(oof: pd.DataFrame) -> pd.Series:
    """Each clip's most probable label, from the ``prob_<label>`` columns."""
    probs = oof.filter(like="prob_")
    return probs.idxmax(axis=1).str.removeprefix("prob_")


def hard_clips(recorded: dict[str, Record | None], records: Path) -> list[str]:
    """Clips that every row with out-of-fold predictions (at least two, per dataset and split)
    gets wrong at its best epochs: where the rows share their errors, and a ceiling on what
    averaging them can reach."""
    groups: dict[tuple[str, str], list[tuple[str, pd.DataFrame]]] = {}
    for row in ROWS:
        rec = recorded[row.name]
        if rec is not None and (oof := out_of_fold(rec, records)) is not None:
            key = (rec.params["data.dataset"], rec.params["data.split"])
            groups.setdefault(key, []).append((row.name, oof.set_index("file")))
    lines = []
    for (dataset, split), tables in groups.items():
        if len(tables) < 2:
            continue
        predicted = pd.DataFrame({name: top_label(t) for name, t in tables})  # (clips, rows)
        first = tables[0][1].loc[predicted.index]
        wrong = predicted.ne(first["target"], axis=0).all(axis=1)
        clips = sorted(predicted.index[wrong])
        lines += ["", f"{dataset} ({split}): {len(clips)} of {len(predicted)} clips wrong in all {len(tables)} "
                  f"rows ({', '.join(f'`{name}`' for name, _ in tables)}).", ""]
        if len(clips) <= HARD_CLIPS_LISTED:
            rows = [[f"`{clip}`", str(first.at[clip, "fold"]), first.at[clip, "target"],
                     ", ".join(f"{label} ({n})" for label, n in predicted.loc[clip].value_counts().items())]
                    for clip in clips]
            lines += table(rows, ["clip", "fold", "label", "predicted (rows)"]) if rows else []
        else:  # too many to list: the confusions they share, most clips first
            said = predicted.loc[clips].mode(axis=1)[0]  # per clip, the label most rows said
            pairs = pd.DataFrame({"label": first.loc[clips, "target"], "said": said,
                                  "fold": first.loc[clips, "fold"].astype(str)})
            counts = pairs.groupby(["label", "said"]).agg(clips=("fold", "size"), folds=("fold", "unique"))
            counts = counts.sort_values("clips", ascending=False, kind="stable")
            lines += table([[label, said, str(row.clips), ", ".join(sorted(row.folds))]
                            for (label, said), row in counts.iterrows()],
                           ["label", "predicted by most rows", "clips", "folds"])
    if not lines:
        return []
    return ["", "## Clips every row gets wrong", "", "Out-of-fold predictions at each fold's best epoch, "
            f"per dataset and split, of the rows that recorded them; over {HARD_CLIPS_LISTED} clips, the "
            "confusions they share instead (what most rows said: ties go to the first label by name)."] + lines


def clip_starts(recorded: dict[str, Record | None], records: Path) -> list[str]:
    """Rows scored apart on the clips that begin within ``CUT_DB`` of their loudest frame (their onset
    cut off by the recording), where ``<dataset>.clip-starts.csv`` (``pipelines.clip_starts``) is there."""
    starts: dict[str, pd.DataFrame | None] = {}
    rows, counts = [], {}
    for row in ROWS:
        rec = recorded[row.name]
        if rec is None or (oof := out_of_fold(rec, records)) is None:
            continue
        dataset = rec.params["data.dataset"]
        if dataset not in starts:
            path = records / f"{dataset}.clip-starts.csv"
            starts[dataset] = pd.read_csv(path) if path.is_file() else None
        if starts[dataset] is None:
            continue
        merged = oof.merge(starts[dataset], on="file", how="left")
        if merged["start_db"].isna().any():
            raise ValueError(f"{records / f'{dataset}.clip-starts.csv'} lacks clips of {row.name}: write it again "
                             "with python -m pipelines.clip_starts from the dataset's clips")
        cut = merged["start_db"].to_numpy() >= CUT_DB
        right = (top_label(merged) == merged["target"]).to_numpy()
        counts[dataset] = (int((starts[dataset]["start_db"] >= CUT_DB).sum()), len(starts[dataset]))
        rows.append([f"`{row.name}`", f"{dataset} ({rec.params['data.split']})", f"{cut.sum()} / {len(cut)}",
                     f"{100 * right.mean():.1f}", f"{100 * right[cut].mean():.1f}" if cut.any() else "–",
                     f"{100 * right[~cut].mean():.1f}", f"{(~right[cut]).sum()} / {(~right).sum()}"])
    if not rows:
        return []
    found = "; ".join(f"{dataset}: {n} of {total} clips" for dataset, (n, total) in counts.items())
    return ["", "## Clips that start at their loudest", "", f"Clips whose first {FRAME_SECONDS * 1000:.0f} ms "
            f"frame is within {-CUT_DB:g} dB of their loudest begin mid-sound, the onset cut off by the recording "
            f"({found}; `python -m pipelines.clip_starts`). Each row's out-of-fold predictions at its best epochs, "
            "scored on those clips and on the rest, clips pooled over the folds.", "",
            *table(rows, ["row", "dataset (split)", "clips that start at their loudest", "accuracy %",
                          "on those %", "on the rest %", "errors on those / all errors"])]


def gpu(rec: Record) -> str | None:
    """The GPU the run trained on (None: it trained on the CPU)."""
    name = rec.tags.get("torch.cuda_device", "none")
    return None if name in ("none", "?") or rec.params.get("train.device") == "cpu" else name


def record_cells(rec: Record) -> list[str]:
    p = rec.params
    return [
        f"{p['data.dataset']} ({p['data.split']})", p["model.name"], rec.pct("accuracy"),
        rec.pct("last_epoch_accuracy"), rec.pct("top3_accuracy"), rec.pct("f1_macro"),
        gpu(rec) or f"{rec.tags.get('host.cpus', '?')} CPUs",
        rec.number("train_samples_per_second_median"), rec.number("inference_samples_per_second_median"),
        rec.number("cv_wall_seconds", "{:.0f} s"), rec.number("total_wall_seconds", "{:.0f} s"),
        rec.tags.get("host.loadavg_15min_at_end", "–"),
        f"`{rec.run_id[:8]}`",
    ]


HEADER = ["dataset (split)", "model", "accuracy %", "last-epoch accuracy %", "top-3 %", "macro F1 %", "trained on",
          "train clips/s", "infer clips/s", "CV wall", "total wall", "load (15 min)", "MLflow run"]


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(r) + " |" for r in rows]]


def render(recorded: dict[str, Record | None], records: Path) -> str:
    """The page from each row's record (None: the row has none)."""
    lines = ["# Results", "",
             f"Generated by `python -m pipelines.results` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
             f"from the run records in `{records}/`, each written from a finished run tracked in MLflow; "
             "every number below is a tracked metric. Accuracy, top-3 "
             "and macro F1 are the mean ± std over the validation folds (population std) of each fold's "
             "best epoch, chosen on that validation fold (the recipe's checkpoint rule, optimistic by "
             "that choice); last-epoch accuracy is the same mean with no epoch chosen. Clips/s are "
             "medians over folds of the training and validation-inference throughput. Load is the "
             "machine's 15-minute load average when the run ended (2 cores: above 2 means other work "
             "shared the CPU and the timings are pessimistic; `–`: not recorded)."]
    carried = sorted({rec.source for rec in recorded.values() if rec and rec.source != FROM_MLFLOW})
    for source in carried:
        names = [f"`{name}`" for name, rec in recorded.items() if rec and rec.source == source]
        lines += ["", f"Carried over, {len(names)} rows ({', '.join(names)}): {source}."]
    lines += ["", "## Ablation", ""]
    rows = []
    for row in ROWS:
        rec = recorded[row.name]
        rows.append([f"`{row.name}`", row.description,
                     *(record_cells(rec) if rec else ["no finished run", *[""] * (len(HEADER) - 1)])])
    lines += table(rows, ["row", "what", *HEADER])
    hosts = {(r.tags.get("host.processor", "?"), r.tags.get("host.cpus", "?"), r.tags.get("torch.cuda_device", "?"))
             for r in recorded.values() if r}
    lines += ["", "Machines: " + "; ".join(f"{p}, {c} CPUs, GPU: {g}" for p, c, g in sorted(hosts))
              if hosts else "", "", "## Targets", ""]
    lines += targets(recorded)
    lines += recipe_time(recorded)
    lines += per_fold(recorded)
    lines += seed_spread(recorded, records)
    lines += row_ensembles(recorded, records)
    lines += snapshot_ensembles(recorded)
    lines += hard_clips(recorded, records)
    lines += clip_starts(recorded, records)
    lines += ["", "## Commands", "", "Each row, from the repository root with `.venv` active "
              "(`python -m pipelines.ablation <row>` runs the same):", ""]
    for row in ROWS:
        lines += [f"- `{row.name}`:", "  ```bash", f"  {shlex.join(row.command())}", "  ```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--records", type=Path, default=RECORDS)
    args = parser.parse_args(argv)
    set_tracking_uri()
    for name in update_records(MlflowClient(), args.records):
        log.info("recorded %s", name)
    known = load_records(args.records)
    recorded: dict[str, Record | None] = {row.name: known.get(row.name) for row in ROWS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(recorded, args.records))
    log.info("wrote %s", args.out)
    return args.out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
