"""The training benchmark's parts: variants resolved from params.yaml, the projection, a tiny run.

Not covered: the numbers themselves (``make bench-train`` measures them into docs/).
"""

from __future__ import annotations

import json

import pytest
import yaml

from benchmarks import training
from pipelines.params import load_params
from tests.conftest import ROOT


def tiny_params() -> dict:
    params = load_params(ROOT / "params.yaml")
    params["data"] |= {"sample_rate": 8000, "clip_seconds": 0.5}
    params["features"] |= {"n_fft": 256, "hop_length": 128, "n_mels": 16, "f_max": 4000.0}
    params["model"] |= {"stem_channels": 4, "widths": [4, 8, 8, 8], "hidden": 8}
    params["train"] |= {"epochs": 60}
    return params


def test_every_variant_resolves_against_the_committed_params():
    params = load_params(ROOT / "params.yaml")
    recipes = {v.name: training.Recipe.from_params(params, v, "cpu") for v in training.VARIANTS}
    assert len(recipes) == len(training.VARIANTS), "variant names must be unique"
    recipe = recipes["recipe"]
    assert recipe.model.name == params["model"]["name"] and recipe.features.n_mels == params["features"]["n_mels"]
    assert recipes["stem stride 1"].model.stem_stride == 1
    assert recipes["128 mel bands"].features.n_mels == 128
    assert recipes["hop 256 (twice the frames)"].features.n_frames(recipe.clip_samples) == \
        2 * recipe.features.n_frames(recipe.clip_samples) - 1
    # Each variant changes what its name says and nothing else.
    for variant in training.VARIANTS[1:]:
        changed = {k for k, v in recipes[variant.name].model.to_dict().items() if v != recipe.model.to_dict()[k]}
        assert changed <= set(variant.overrides().get("model", {})), (variant.name, changed)


def test_projection_counts_the_cv_validation_passes_and_the_final_fit():
    # 400 clips in 5 folds: per fold 320 training clips at 320/s and 80 validation clips at 80/s
    # are 2 s an epoch; 3 epochs x 5 folds = 30 s, then the final fit 3 x 1 s.
    timing = training.project(train_rate=320.0, infer_rate=80.0, epochs=3, dataset_clips=400, folds=5)
    assert timing == pytest.approx({"cv_seconds": 30.0, "total_seconds": 33.0})


def test_a_tiny_run_reports_every_variant_with_its_input_and_size(tmp_path, monkeypatch):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(tiny_params()))
    variants = ["recipe", "half width", "128 mel bands"]
    monkeypatch.setattr(training, "VARIANTS", [
        training.Variant("recipe"),
        training.Variant("half width", ("model.stem_channels=2", "model.widths=[2,4,4,4]")),
        training.Variant("128 mel bands", ("features.n_mels=32",)),
    ])
    out = tmp_path / "bench.json"
    report = training.main(["--params", str(params_file), "--rounds", "2", "--clips", "4", "--epochs", "1",
                            "--variants", *variants, "--out", str(out)])
    rows = {r["variant"]: r for r in report["rows"]}
    assert list(rows) == variants
    assert rows["recipe"]["input"] == [16, 1 + 4000 // 128]
    assert rows["128 mel bands"]["input"] == [32, 1 + 4000 // 128]
    assert rows["half width"]["parameters"] < rows["recipe"]["parameters"]
    for row in rows.values():
        assert len(row["train_clips_per_s_all"]) == 2 and row["train_clips_per_s"] > 0 < row["infer_clips_per_s"]
        expected = training.project(row["train_clips_per_s"], row["infer_clips_per_s"], 60, 400, 5)
        assert row["projected_total_seconds"] == pytest.approx(expected["total_seconds"], rel=0.01)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    table = out.with_suffix(".md").read_text()
    assert report["command"].startswith("python -m benchmarks.training --params ")
    assert report["command"] in table and all(f"| {name} |" in table for name in variants)


def test_unknown_variants_are_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        training.main(["--variants", "quadruple width"])
    assert "unknown variants ['quadruple width']" in capsys.readouterr().err


@pytest.mark.parametrize("train, infer", [(0.1049, 0.949), (3.249, 12.74), (58.349, 217.4)])
def test_reported_rates_reproduce_the_projection_at_any_speed(train: float, infer: float) -> None:
    exact = training.project(train, infer, 60, 400, 5)["total_seconds"]
    reported = training.project(training.significant(train), training.significant(infer), 60, 400, 5)
    assert reported["total_seconds"] == pytest.approx(exact, rel=0.01)


def test_the_load_note_says_other_work_shared_the_machine_only_above_the_core_count():
    report = json.loads((ROOT / "docs" / "training_benchmarks.json").read_text())
    cores = report["machine"]["cores"]
    assert "(at most the core count)" in training.markdown(report | {"load_15min_at_end": float(cores)})
    busy = training.markdown(report | {"load_15min_at_end": cores + 0.5})
    assert "(above the core count: other work shared the machine)" in busy
