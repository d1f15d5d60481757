"""Training and inference speed of input-resolution, stride and width choices, on this machine.

Each variant is the recipe of ``params.yaml`` with one change (input resolution, first-conv
stride, width, depth) or another network of the zoo. For each, the real training loop
(``training.loop.fit``: the recipe's SpecAugment, Mixup, Adam and cosine schedule) runs on
``--clips`` log-mel inputs of ``data.clip_seconds`` clips (seeded noise through the real front
end: the content does not change the cost) and ``--epochs`` epochs are timed after one warm-up
epoch; inference is ``predict_proba`` (batches of 64, as validation runs). Variants take turns
for ``--rounds`` rounds, so that a change of machine load hits all alike; medians are reported.

From the medians it projects the wall time of the whole ESC-10 recipe (``--dataset-clips`` clips
in ``--folds`` folds: per fold ``train.epochs`` epochs on the other folds plus a validation pass
per epoch, then the final fit on all but one fold) and marks which variants fit the 60-minute
budget. Does not cover: accuracy (docs/results.md), feature precompute (seconds), GPU unless
``--device cuda``.

    python -m benchmarks.training --rounds 3          # make bench-train
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from pipelines.ablation import CNN, CRNN, HALF_WIDTH, RECIPE_BUDGET_SECONDS, apply_settings
from pipelines.params import from_dict, load_params
from pipelines.train import cpu_model
from training.features import LogMel, LogMelConfig
from training.loop import TrainConfig, cpu_bfloat16_instructions, fit, predict_proba
from training.models import ModelConfig, build_model

log = logging.getLogger("benchmarks.training")

N_CLASSES = 10
MAKE_COMMAND = "python -m benchmarks.training"  # what `make bench-train` runs
BFLOAT16_INSTRUCTIONS = {True: "yes", False: "none (bfloat16 emulated)", None: "not checked"}


@dataclass(frozen=True)
class Variant:
    name: str
    settings: tuple[str, ...] = ()  # params overrides, ``section.key=value`` as in pipelines/ablation.py

    def overrides(self) -> dict[str, dict]:
        """``{section: {key: value}}``, values parsed as YAML (as ``dvc exp run -S`` does)."""
        return apply_settings({}, list(self.settings))


VARIANTS = [
    Variant("recipe"),
    Variant("stem stride 1", ("model.stem_stride=1",)),
    Variant("128 mel bands", ("features.n_mels=128",)),
    Variant("hop 256 (twice the frames)", ("features.hop_length=256",)),
    Variant("half width", tuple(HALF_WIDTH)),
    Variant("double width", ("model.stem_channels=64", "model.widths=[64,128,256,512]")),
    Variant("2 blocks per stage", ("model.blocks_per_stage=2",)),
    Variant("128 mel bands, half width", (*HALF_WIDTH, "features.n_mels=128")),
    # Per-channel energy normalisation in place of log compression (esc10-cnn-pcen, esc10-resnet-pcen).
    Variant("pcen 0.4 s (17 frames)", ("model.pcen_frames=17.0",)),
    # The zoo's other networks as the ablation runs them.
    Variant("cnn (64-512, FC 1024)", tuple(CNN)),
    Variant("cnn + pcen 0.4 s", (*CNN, "model.pcen_frames=17.0")),
    Variant("crnn (32-128, GRU 128)", tuple(CRNN)),
    # bfloat16 training steps on the CPU (train.precision; validation stays float32).
    Variant("bfloat16", ("train.precision=bfloat16",)),
    Variant("2 blocks per stage, bfloat16", ("model.blocks_per_stage=2", "train.precision=bfloat16")),
    Variant("cnn + pcen 0.4 s, bfloat16", (*CNN, "model.pcen_frames=17.0", "train.precision=bfloat16")),
]


@dataclass(frozen=True)
class Recipe:
    """What one variant trains: the resolved configs and the input it sees."""

    model: ModelConfig
    features: LogMelConfig
    train: TrainConfig
    clip_samples: int

    @classmethod
    def from_params(cls, params: dict, variant: Variant, device: str) -> Recipe:
        p = apply_settings(params, list(variant.settings))
        data = p["data"]
        return cls(
            model=from_dict(ModelConfig, p["model"]),
            features=from_dict(LogMelConfig, {**p["features"], "sample_rate": data["sample_rate"]}),
            train=replace(from_dict(TrainConfig, p["train"]), device=device),
            clip_samples=round(data["sample_rate"] * data["clip_seconds"]),
        )


def logmel_inputs(cfg: LogMelConfig, clips: int, samples: int, seed: int = 0) -> torch.Tensor:
    """(clips, n_mels, frames) log-mel of seeded noise, through the project's front end."""
    rng = np.random.default_rng(seed)
    waves = torch.from_numpy(rng.standard_normal((clips, samples), dtype=np.float32) * 0.1)
    with torch.inference_mode():
        return LogMel(cfg)(waves).clone()


def measure(recipe: Recipe, clips: int, epochs: int) -> dict:
    """Training clips/s over ``epochs`` timed epochs (after one warm-up) and inference clips/s."""
    x = logmel_inputs(recipe.features, clips, recipe.clip_samples)
    y = torch.arange(clips) % N_CLASSES
    model = build_model(recipe.model, n_mels=recipe.features.n_mels, n_classes=N_CLASSES)
    fit(model, x, y, N_CLASSES, replace(recipe.train, epochs=1))  # warm-up: allocator, kernels
    result = fit(model, x, y, N_CLASSES, replace(recipe.train, epochs=epochs))
    device = recipe.train.torch_device()
    predict_proba(model, x.to(device))  # warm-up
    start = time.perf_counter()
    predict_proba(model, x.to(device))  # returns on the CPU: waits for the device
    infer_seconds = time.perf_counter() - start
    return {"train_clips_per_s": result.samples_seen / result.train_seconds,
            "infer_clips_per_s": clips / infer_seconds}


def project(train_rate: float, infer_rate: float, epochs: int, dataset_clips: int, folds: int) -> dict:
    """Seconds of the whole recipe: ``folds`` CV fits with a validation pass per epoch, then the
    final fit on all folds but one (the held-out fold)."""
    val = dataset_clips / folds
    train = dataset_clips - val
    cv = folds * epochs * (train / train_rate + val / infer_rate)
    final = epochs * train / train_rate
    return {"cv_seconds": cv, "total_seconds": cv + final}


def parameters(cfg: ModelConfig, n_mels: int) -> int:
    return sum(p.numel() for p in build_model(cfg, n_mels=n_mels, n_classes=N_CLASSES).parameters())


def machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "cpu_bfloat16": cpu_bfloat16_instructions()}


def significant(rate: float, digits: int = 3) -> float:
    """A rate to ``digits`` significant figures: within 0.5% of itself at any speed, so the reported
    rates reproduce the projection from them (a fixed decimal place does not for slow rates)."""
    return float(f"{rate:.{digits}g}")


def run(params: dict, variants: list[Variant], rounds: int, clips: int, epochs: int, dataset_clips: int,
        folds: int, device: str, command: str) -> dict:
    recipes = {v.name: Recipe.from_params(params, v, device) for v in variants}
    samples: dict[str, list[dict]] = {name: [] for name in recipes}
    start = time.perf_counter()
    for r in range(rounds):
        for name, recipe in recipes.items():
            samples[name].append(measure(recipe, clips, epochs))
            log.info("round %d/%d %-28s %s", r + 1, rounds, name,
                     {k: round(v, 1) for k, v in samples[name][-1].items()})
    rows = []
    for variant in variants:
        recipe = recipes[variant.name]
        train = float(np.median([s["train_clips_per_s"] for s in samples[variant.name]]))
        infer = float(np.median([s["infer_clips_per_s"] for s in samples[variant.name]]))
        timing = project(train, infer, recipe.train.epochs, dataset_clips, folds)
        rows.append({
            "variant": variant.name,
            "changes": {key: value for section in variant.overrides().values() for key, value in section.items()},
            "input": [recipe.features.n_mels, recipe.features.n_frames(recipe.clip_samples)],
            "parameters": parameters(recipe.model, recipe.features.n_mels),
            "train_clips_per_s": significant(train), "infer_clips_per_s": significant(infer),
            "train_clips_per_s_all": [significant(s["train_clips_per_s"]) for s in samples[variant.name]],
            "projected_cv_seconds": round(timing["cv_seconds"]),
            "projected_total_seconds": round(timing["total_seconds"]),
            "within_budget": timing["total_seconds"] <= RECIPE_BUDGET_SECONDS,
        })
    return {
        "command": command,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": machine(),
        "settings": {"rounds": rounds, "clips": clips, "epochs": epochs, "dataset_clips": dataset_clips,
                     "folds": folds, "recipe_epochs": recipes[variants[0].name].train.epochs,
                     "batch_size": recipes[variants[0].name].train.batch_size, "device": device},
        "wall_seconds": round(time.perf_counter() - start),
        "load_15min_at_end": round(os.getloadavg()[2], 2),
        "rows": rows,
    }


def markdown(report: dict) -> str:
    s, m = report["settings"], report["machine"]
    shared = report["load_15min_at_end"] > m["cores"]
    load_note = "above the core count: other work shared the machine" if shared else "at most the core count"
    lines = [
        "# Training benchmark", "",
        f"Generated by `{report['command']}`"
        + (" (`make bench-train`)" if report["command"] == MAKE_COMMAND else "")
        + f" on {report['date_utc']} UTC; do not edit by hand.", "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), bfloat16 "
        f"instructions: {BFLOAT16_INSTRUCTIONS[m.get('cpu_bfloat16')]}, GPU: {m['gpu']}; "
        f"torch {m['torch']}, Python {m['python']}. Device: {s['device']}. Whole run: "
        f"{report['wall_seconds'] / 60:.1f} min; 15-minute load average at the end: "
        f"{report['load_15min_at_end']} ({load_note}).", "",
        f"Each variant is the recipe of `params.yaml` with one change. Training clips/s: the real "
        f"training loop (SpecAugment, Mixup, Adam, batch {s['batch_size']}) over {s['epochs']} epochs of "
        f"{s['clips']} clips after a warm-up epoch; inference clips/s: validation's `predict_proba`. "
        f"Medians of {s['rounds']} rounds in which the variants take turns. Projected: the whole "
        f"ESC-10 recipe from these rates ({s['dataset_clips']} clips, {s['folds']}-fold CV of "
        f"{s['recipe_epochs']} epochs with a validation pass each, then the final fit), against the "
        f"{RECIPE_BUDGET_SECONDS / 60:.0f}-minute budget. Accuracy of the variants that were trained: "
        "docs/results.md.", "",
        "| variant | input (mels x frames) | parameters | train clips/s | infer clips/s "
        "| train clips/s per round | projected CV | projected total | within 60 min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['variant']} | {r['input'][0]} x {r['input'][1]} | {r['parameters'] / 1e6:.2f} M "
            f"| {r['train_clips_per_s']} | {r['infer_clips_per_s']} "
            f"| {', '.join(str(v) for v in r['train_clips_per_s_all'])} "
            f"| {r['projected_cv_seconds'] / 60:.1f} min | {r['projected_total_seconds'] / 60:.1f} min "
            f"| {'yes' if r['within_budget'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=96, help="training clips per timed epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--dataset-clips", type=int, default=400, help="clips of the projected dataset (ESC-10)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", nargs="*", help="names of VARIANTS to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("docs/training_benchmarks.json"))
    args = parser.parse_args(argv)
    if min(args.rounds, args.clips - 1, args.epochs, args.folds - 1) < 1:
        parser.error("need --rounds >= 1, --clips >= 2, --epochs >= 1, --folds >= 2")
    variants = VARIANTS
    if args.variants:
        unknown = sorted(set(args.variants) - {v.name for v in VARIANTS})
        if unknown:
            parser.error(f"unknown variants {unknown}; choose from {[v.name for v in VARIANTS]}")
        variants = [v for v in VARIANTS if v.name in args.variants]
    command = shlex.join(["python", "-m", "benchmarks.training", *(sys.argv[1:] if argv is None else argv)])
    report = run(load_params(args.params), variants, args.rounds, args.clips, args.epochs,
                 args.dataset_clips, args.folds, args.device, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
