"""Records of the rows on a results page whose MLflow store is gone (run once, at 397a49a).

The page of 0979452 was generated from a store that the next checkout did not have; this wrote
the carried-over records in docs/ablation/ from it, numbers as rounded on the page:

    git show 0979452:docs/results.md > /tmp/page.md
    python -m pipelines.carry_over /tmp/page.md docs/ablation
"""
import re
import sys
from pathlib import Path

from pipelines.results import Record, write_record


def main(page_path: str, out_dir: str) -> None:
    page = Path(page_path).read_text()
    generated = re.search(r"on (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", page).group(1)
    host = re.search(r"Machines: (.*), (\d+) CPUs, GPU: (.*)", page)
    abl = page.split("## Ablation")[1].split("## Targets")[0]
    per_fold = page.split("## Per fold")[1].split("## Seed spread")[0]
    out = Path(out_dir)

    def pm(cell):
        m = re.fullmatch(r"([\d.]+) ± ([\d.]+)", cell.strip())
        return (round(float(m.group(1)) / 100, 4), round(float(m.group(2)) / 100, 4)) if m else None

    fold_rows = {}
    lines = [l for l in per_fold.splitlines() if l.startswith("| ")]
    names = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    for l in lines[1:]:
        cells = [c.strip() for c in l.strip("|").split("|")]
        row = cells[0].strip("`")
        folds = []
        for i, (name, c) in enumerate(zip(names, cells[1:]), start=1):
            m = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", c)
            folds.append({"fold": i, "fold_name": name, "metrics": {"best_accuracy": round(float(m.group(1)) / 100, 4),
                          "val_accuracy": round(float(m.group(2)) / 100, 4)}})
        fold_rows[row] = folds

    n = 0
    for l in abl.splitlines():
        if not l.startswith("| `"):
            continue
        c = [x.strip() for x in l.strip("|").split("|")]
        row = c[0].strip("`")
        if c[2] == "no finished run":
            continue
        ds, split = re.fullmatch(r"(\S+) \((\S+)\)", c[2]).groups()
        metrics = {}
        for key, cell in (("accuracy", c[4]), ("last_epoch_accuracy", c[5]), ("top3_accuracy", c[6]),
                          ("f1_macro", c[7])):
            v = pm(cell)
            if v:
                metrics[f"{key}_mean"], metrics[f"{key}_std"] = v
        for key, cell in (("train_samples_per_second_median", c[8]), ("inference_samples_per_second_median", c[9]),
                          ("cv_wall_seconds", c[10]), ("total_wall_seconds", c[11])):
            if cell != "–":
                metrics[key] = float(cell.removesuffix(" s"))
        # The page rounds seconds (.0f) and, for timed recipes, minutes (.1f): keep the middle of
        # the interval both roundings allow, so that neither figure changes when rendered again.
        took = re.search(rf"`{re.escape(row)}` took ([\d.]+) min", page)
        if took and "total_wall_seconds" in metrics:
            s = metrics["total_wall_seconds"]
            lo = max(s - 0.5, (float(took.group(1)) - 0.05) * 60)
            hi = min(s + 0.5, (float(took.group(1)) + 0.05) * 60)
            assert lo < hi, (row, lo, hi)
            metrics["total_wall_seconds"] = round((lo + hi) / 2, 2)
        tags = {"host.processor": host.group(1), "host.cpus": host.group(2), "torch.cuda_device": host.group(3)}
        if c[12] != "–":
            tags["host.loadavg_15min_at_end"] = c[12]
        rec = Record(row=row, run_id=c[13].strip("`"), start_time=None,
                     source=f"docs/results.md as generated on {generated} UTC from the MLflow store of an "
                            "earlier checkout (not carried over): summary numbers as rounded there, per-fold "
                            "accuracies only where it showed them (leave-one-speaker-out rows); no per-epoch "
                            "history or out-of-fold predictions",
                     params={"data.dataset": ds, "data.split": split, "model.name": c[3]},
                     metrics=metrics, tags=tags, folds=fold_rows.get(row, []))
        write_record(rec, out, oof=None)
        n += 1
    print(n, "records")


if __name__ == "__main__":
    main(*sys.argv[1:3])
