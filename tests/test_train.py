"""The train stage's main() on a small synthetic feature set: every model, reports, determinism."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from pipelines import paths, train
from pipelines.params import from_dict
from training import loop
from training.augment import warp_bands
from training.checkpoint import load_checkpoint
from training.features import LogMelConfig
from training.loop import GradientReversal, TrainConfig, adversary_weight, fit, predict_proba, smooth, snapshot_epochs
from training.models import ModelConfig, build_model

LABELS = ["low", "mid", "high"]
N_MELS, FRAMES = 16, 24


def write_features(root: Path, per_cell: int = 4) -> None:
    """3 classes x 5 folds: noise plus a class-specific band of energy, (n, N_MELS, FRAMES)."""
    rng = np.random.default_rng(0)
    rows, x = [], []
    for fold in range(1, 6):
        for target in range(3):
            for i in range(per_cell):
                clip = rng.normal(-60, 3, (N_MELS, FRAMES))
                clip[4 * target + 2 : 4 * target + 6] += 30
                x.append(clip)
                rows.append((f"{fold}-{target}-{i}.wav", fold, target, LABELS[target]))
    out = root / paths.FEATURES
    out.mkdir(parents=True)
    np.save(out / "logmel.npy", np.stack(x).astype(np.float32))
    pd.DataFrame(rows, columns=["filename", "fold", "target", "category"]).to_csv(out / "index.csv", index=False)
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (out / "dataset.json").write_text(json.dumps({"dataset": "synthetic", "split": "official"}))
    cfg = LogMelConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=N_MELS, f_max=4000.0)
    (out / "config.json").write_text(json.dumps(cfg.to_dict()))


def params(**model) -> dict:
    base = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    base["model"] |= {"stem_channels": 4, "widths": [4, 8], "hidden": 8, "n_estimators": 20} | model
    base["train"] |= {"epochs": 3, "batch_size": 8, "device": "cpu"}
    return base


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_features(tmp_path)
    return tmp_path


def without_timings(summary: dict) -> str:
    text = json.dumps(summary, sort_keys=True)
    return "\n".join(line for line in json.dumps(json.loads(text), indent=1, sort_keys=True).splitlines()
                     if "second" not in line)


@pytest.mark.parametrize("name", ["resnet", "cnn", "crnn", "rf"])
def test_every_model_cross_validates_and_reports(workdir: Path, name: str) -> None:
    summary = train.main(params(name=name))
    assert set(summary["folds"]) == {"1", "2", "3", "4", "5"}
    assert 0.0 <= summary["accuracy_mean"] <= 1.0 and summary["top3_accuracy_mean"] == 1.0
    report = workdir / paths.METRICS / "cv"
    oof = pd.read_csv(report / "oof_predictions.csv")
    assert len(oof) == 60 and set(oof["fold"]) == {1, 2, 3, 4, 5}
    assert (report / "confusion_matrix.png").stat().st_size > 1000
    assert (report / "learning_curves.png").is_file() == (name != "rf")
    snapshot = report / "oof_snapshot_predictions.csv"
    if name == "rf":  # the separable synthetic bands are easy for a forest
        assert summary["accuracy_mean"] == 1.0
        assert not snapshot.exists() and "snapshot_accuracy_mean" not in summary
        with pytest.raises(ValueError, match="holds no trained network"):
            load_checkpoint(workdir / paths.MODELS / "model.pt")
    else:
        assert load_checkpoint(workdir / paths.MODELS / "model.pt").model.name == name
        assert "holdout" in summary
        snapshot_oof = pd.read_csv(snapshot)
        assert snapshot_oof["file"].equals(oof["file"])
        by_fold = (snapshot_oof["predicted"] == snapshot_oof["target"]).groupby(snapshot_oof["fold"]).mean()
        assert summary["snapshot_accuracy_mean"] == pytest.approx(by_fold.mean())
        assert [summary["folds"][str(f)]["snapshot_accuracy"] for f in range(1, 6)] == pytest.approx(by_fold.tolist())


SPEAKER_AUGMENTATIONS = {"freq_warp": 0.1, "time_stretch": 0.2, "gain_db": 10.0, "noise_db": 10.0, "mixstyle": 0.5,
                         "filter_db": 6.0, "onset_cut": 0.5}


@pytest.mark.parametrize("augmentations", [{}, SPEAKER_AUGMENTATIONS, {"crop": 0.5}, {"mixup_kind": "sounds"},
                                           {"adversary": 0.3}, {"precision": "bfloat16"}],
                         ids=["recipe", "speaker-augmentations", "windows", "mixed-sounds", "adversary", "bfloat16"])
def test_same_metrics_twice_on_cpu(workdir: Path, augmentations: dict) -> None:
    def run() -> str:
        p = params(top_db=80.0 if augmentations else 0.0)
        p["train"] |= augmentations
        return without_timings(train.main(p))

    assert run() == run()


def test_test_time_augmentation_is_reported_per_fold_and_changes_no_other_metric(workdir: Path) -> None:
    def run(warps: list[float]) -> dict:
        p = params()
        p["train"] |= {"folds": [1, 2], "fit_final": False, "tta_warps": warps}
        return train.main(p)

    plain, tta = run([]), run([0.9, 1.1])
    by_fold = [tta["folds"][f].pop("tta_accuracy") for f in ("1", "2")]
    assert tta.pop("tta_accuracy_mean") == pytest.approx(np.mean(by_fold))
    assert tta.pop("tta_accuracy_std") == pytest.approx(np.std(by_fold))
    assert without_timings(tta) == without_timings(plain) and all(0 <= a <= 1 for a in by_fold)


def test_a_fold_trained_alone_trains_as_in_the_whole_cross_validation(workdir: Path) -> None:
    # What makes an exploration of one fold (pipelines/ablation.py --fold) repeat that fold of a row.
    def fold_3(folds: list[int]) -> dict:
        p = params()
        p["train"] |= {"folds": folds, "fit_final": False}
        summary = train.main(p)
        assert set(summary["folds"]) == {str(f) for f in folds}
        return {k: v for k, v in summary["folds"]["3"].items() if "second" not in k}

    assert fold_3([3]) == fold_3([1, 2, 3, 4, 5])


def test_cuda_without_a_gpu_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="train.device=cuda, but torch .* sees no CUDA device here; run on a GPU"):
        TrainConfig(device="cuda").torch_device()
    assert TrainConfig(device="auto").torch_device() == torch.device("cpu")


def test_bfloat16_trains_in_bfloat16_on_cpu_and_returns_float32_weights() -> None:
    """precision=bfloat16 on the CPU: the training steps' convolutions run in bfloat16 on channels-last
    weights, validation and the front end in float32; the state is float32 and predicts in a fresh network as in
    the trained."""
    cfg = ModelConfig(stem_channels=4, widths=(4, 8), top_db=80.0, cepstra=6)
    torch.manual_seed(0)
    x, y = torch.randn(24, N_MELS, FRAMES) * 10 - 50, torch.arange(24) % 3
    for precision, trained_in in (("auto", torch.float32), ("bfloat16", torch.bfloat16)):
        model = build_model(cfg, N_MELS, 3)
        stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        dtypes = {True: set(), False: set()}  # training mode -> the stem convolution's output dtypes
        stem.register_forward_hook(lambda m, _, out: dtypes[m.training].add(out.dtype))
        lifted = set()  # the cepstral lifter's output dtypes, as the input normalisation reads it
        model.input_norm.register_forward_pre_hook(lambda m, args: lifted.add(args[0].dtype))
        result = fit(model, x, y, 3, TrainConfig(epochs=2, batch_size=8, precision=precision, device="cpu"),
                     val=(x, y))
        assert dtypes == {True: {trained_in}, False: {torch.float32}}, precision
        assert lifted == {torch.float32}, precision  # the front end stays float32 under autocast
        # A 3x3 kernel over channels: a 1-channel or 1x1 weight is as contiguous either way.
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1
                    and m.kernel_size == (3, 3))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (precision == "bfloat16")
        assert {v.dtype for v in result.best_state.values() if v.is_floating_point()} == {torch.float32}
        fresh = build_model(cfg, N_MELS, 3)
        fresh.load_state_dict(result.best_state)
        model.load_state_dict(result.best_state)
        np.testing.assert_allclose(predict_proba(fresh, x), predict_proba(model, x), atol=1e-5)
    assert not TrainConfig(precision="auto").bfloat16(torch.device("cpu"))
    assert TrainConfig(precision="auto").bfloat16(torch.device("cuda"))
    assert not TrainConfig(precision="float32").bfloat16(torch.device("cuda"))
    with pytest.raises(ValueError, match="precision must be auto, float32 or bfloat16, got 'half'"):
        TrainConfig(precision="half")


@pytest.mark.parametrize("instructions", [False, True, None], ids=["emulated", "native", "not-x86"])
def test_bfloat16_on_a_cpu_without_its_instructions_warns_once_with_the_fix(
        instructions: bool | None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Emulated bfloat16 trains several times slower than float32: each process says so once, and what to set."""
    monkeypatch.setattr(loop, "cpu_bfloat16_instructions", lambda: instructions)
    loop.warn_emulated_bfloat16.cache_clear()
    x, y = torch.randn(8, N_MELS, FRAMES), torch.arange(8) % 3
    cfg = ModelConfig(stem_channels=4, widths=(4, 8))
    for precision in ("bfloat16", "bfloat16", "float32"):
        fit(build_model(cfg, N_MELS, 3), x, y, 3, TrainConfig(epochs=1, batch_size=4, precision=precision, device="cpu"))
    warnings = [r.getMessage() for r in caplog.records if "without bfloat16 instructions" in r.getMessage()]
    assert len(warnings) == (instructions is False)
    assert all("set train.precision=float32" in w for w in warnings)
    loop.warn_emulated_bfloat16.cache_clear()


def test_fit_returns_the_best_validation_epoch() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(24, N_MELS, FRAMES), torch.arange(24) % 3
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N_MELS * FRAMES, 3))
    result = fit(model, x, y, 3, TrainConfig(epochs=4, batch_size=8, device="cpu"), val=(x, y))
    accs = [row["val_accuracy"] for row in result.history]
    assert result.best_epoch == 1 + int(np.argmax(accs))
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]


def test_fit_scores_the_snapshot_ensemble_of_each_cycles_last_epoch() -> None:
    assert snapshot_epochs(60, 20) == [20, 40, 60]
    assert snapshot_epochs(50, 20) == [20, 40, 50]
    assert snapshot_epochs(5, 10) == [5]
    torch.manual_seed(0)
    x, y = torch.randn(24, N_MELS, FRAMES), torch.arange(24) % 3
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N_MELS * FRAMES, 3))
    probs = {}  # epoch -> the validation probabilities of that epoch's weights
    result = fit(model, x, y, 3, TrainConfig(epochs=5, restart_epochs=2, batch_size=8, device="cpu"), val=(x, y),
                 on_epoch=lambda row: probs.setdefault(row["epoch"], predict_proba(model, x)))
    assert [row["epoch"] for row in result.history if "val_snapshot_accuracy" in row] == [2, 4, 5]
    expected = np.mean([probs[2], probs[4], probs[5]], axis=0)
    np.testing.assert_allclose(result.snapshot_probs, expected, rtol=1e-6)
    assert result.history[-1]["val_snapshot_accuracy"] == pytest.approx(np.mean(expected.argmax(1) == y.numpy()))
    assert not np.allclose(result.snapshot_probs, probs[5])  # not just the last epoch
    without_val = fit(model, x, y, 3, TrainConfig(epochs=2, batch_size=8, device="cpu"))
    assert without_val.snapshot_probs is None


def test_fit_scores_test_time_augmentation_beside_the_plain_reading() -> None:
    """Each epoch's val_tta_* average the plain clips' probabilities with those of their mel-warped
    copies; they draw no random numbers, so training and the plain reading are unchanged."""
    torch.manual_seed(0)
    x, y = torch.randn(24, N_MELS, FRAMES), torch.arange(24) % 3

    def run(warps: tuple[float, ...]) -> tuple[list[dict], dict]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N_MELS * FRAMES, 3))
        probs = {}  # epoch -> the TTA probabilities of that epoch's weights, computed here
        cfg = TrainConfig(epochs=3, restart_epochs=2, batch_size=8, device="cpu", tta_warps=warps)
        result = fit(model, x, y, 3, cfg, val=(x, y), on_epoch=lambda row: probs.setdefault(
            row["epoch"], np.mean([predict_proba(model, x)] + [predict_proba(model, warp_bands(x, f)) for f in warps],
                                  axis=0)))
        return result.history, probs

    plain, _ = run(())
    history, probs = run((0.9, 1.1))
    assert [{k: v for k, v in row.items() if "tta" not in k} for row in history] == plain
    for row in history:
        assert row["val_tta_accuracy"] == pytest.approx(np.mean(probs[row["epoch"]].argmax(1) == y.numpy()))
    assert any(row["val_tta_loss"] != row["val_loss"] for row in history)
    with pytest.raises(ValueError, match=r"tta_warps are mel-axis stretch factors in \(0.5, 1.5\), not 1"):
        TrainConfig(tta_warps=(1.0,))


def test_fit_returns_the_moving_average_of_the_weights() -> None:
    """With ema_decay, the returned state is the exponential moving average of the weights after each
    optimiser step (the first step's weights start it, the decay warms up), BatchNorm statistics
    included."""
    torch.manual_seed(0)
    x, y = torch.randn(24, N_MELS, FRAMES), torch.arange(24) % 3
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(N_MELS * FRAMES),
                                torch.nn.Linear(N_MELS * FRAMES, 3))
    seen = []  # the state at each training forward pass: the weights after the step before it
    model.register_forward_pre_hook(lambda m, _: seen.append({k: v.clone() for k, v in m.state_dict().items()}))
    decay = 0.3  # warmed up: 2/11, 3/12, then 0.3 from the fourth step on
    result = fit(model, x, y, 3, TrainConfig(epochs=2, batch_size=8, ema_decay=decay, device="cpu"))
    steps = [*seen[1:], model.state_dict()]  # the weights after each of the 6 steps
    assert len(steps) == 6
    for key in ("1.running_mean", "2.weight", "2.bias"):
        expected = steps[0][key]
        for n, state in enumerate(steps[1:], start=1):
            d = min(decay, (1 + n) / (10 + n))
            expected = d * expected + (1 - d) * state[key]
        assert torch.allclose(result.best_state[key], expected, atol=1e-6), key
        assert not torch.allclose(result.best_state[key], model.state_dict()[key], atol=1e-5), key
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        TrainConfig(ema_decay=1.0)


def test_label_smoothing_trains_on_smoothed_targets() -> None:
    """The training loss is the cross-entropy against (1 - e) * one-hot + e / n_classes: checked on
    a model whose logits are its bias (the same for every clip, so the batch order does not matter)."""
    x, y = torch.randn(12, N_MELS, FRAMES), torch.tensor([0] * 8 + [1, 1, 2, 2])  # unbalanced, or e cancels out
    bias = torch.tensor([2.0, -1.0, 0.5])
    losses = []
    for e in (0.0, 0.2):
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N_MELS * FRAMES, 3))
        with torch.no_grad():
            model[1].weight.zero_()
            model[1].bias.copy_(bias)
        cfg = TrainConfig(epochs=1, batch_size=12, mixup_alpha=0.0, time_mask=0.0, freq_mask=0.0,
                          label_smoothing=e, device="cpu")
        losses.append(fit(model, x, y, 3, cfg).history[0]["train_loss"])  # one step: the loss before it
        expected = torch.nn.functional.cross_entropy(bias.expand(12, 3), y, label_smoothing=e).item()
        assert losses[-1] == pytest.approx(expected, rel=1e-6)
    assert losses[0] != pytest.approx(losses[1])
    targets = smooth(torch.eye(4), 0.2)
    assert torch.allclose(targets.diagonal(), torch.tensor(0.85)) and torch.allclose(targets.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        TrainConfig(label_smoothing=1.0)


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient_backward() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    out = GradientReversal.apply(x, 0.5)
    assert torch.equal(out, x)
    (out * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad, -0.5 * torch.arange(3.0).expand(4, 3))
    assert adversary_weight(0.3, 0.0) == 0.0
    assert 0 < adversary_weight(0.3, 0.1) < adversary_weight(0.3, 0.5) < adversary_weight(0.3, 1.0) <= 0.3
    assert adversary_weight(0.3, 1.0) == pytest.approx(0.3, rel=1e-4)
    with pytest.raises(ValueError, match="adversary is a loss weight >= 0"):
        TrainConfig(adversary=-1.0)


def test_the_domain_adversary_trains_beside_the_model_and_leaves_its_loss_and_weights_alone(
        caplog: pytest.LogCaptureFixture) -> None:
    """train.adversary adds a domain loss (logged apart), not to the class loss, and no weights to the
    returned state; from one domain it warns and trains as without."""
    torch.manual_seed(0)
    x, y = torch.randn(24, N_MELS, FRAMES), torch.arange(24) % 3
    domains = torch.arange(24) // 8 + 1  # three folds
    cfg = ModelConfig(stem_channels=4, widths=(4, 8), dropout=0.0)  # no random draws in the forward pass
    # One batch, no mixing or masks: the first epoch's loss is that of the untrained weights.
    train = {"epochs": 3, "batch_size": 24, "mixup_alpha": 0.0, "time_mask": 0.0, "freq_mask": 0.0, "device": "cpu"}

    def run(adversary: float, domains: torch.Tensor) -> tuple[list[dict], dict]:
        torch.manual_seed(0)
        model = build_model(cfg, N_MELS, 3)
        result = fit(model, x, y, 3, TrainConfig(adversary=adversary, **train), domains=domains)
        return result.history, result.best_state

    plain, plain_state = run(0.0, domains)
    adversarial, state = run(1.0, domains)
    assert adversarial[0]["train_loss"] == pytest.approx(plain[0]["train_loss"], rel=1e-6)
    # The reversal ramps up from 0 at the first step, so the second step is the first it changes.
    assert adversarial[2]["train_loss"] != pytest.approx(plain[2]["train_loss"], rel=1e-6)
    assert all(0 < row["train_domain_loss"] for row in adversarial)
    assert adversarial[0]["train_domain_loss"] == pytest.approx(np.log(3), rel=0.2)  # untrained: ~chance
    assert state.keys() == plain_state.keys()
    assert "train_domain_loss" not in plain[0]
    one_domain, _ = run(1.0, torch.ones(24, dtype=torch.long))
    assert "train.adversary=1.0 ignored: the training clips are from one domain" in caplog.text
    assert one_domain == plain


def test_the_reversal_hides_the_domain_from_the_features() -> None:
    """Clips whose level gives away their domain: a domain classifier learns to tell the domains apart
    from the features trained with a negligible reversal, and not from those trained against it."""
    torch.manual_seed(0)
    y, domains = torch.arange(240) % 3, (torch.arange(240) // 3) % 4
    x = torch.randn(240, N_MELS, FRAMES) + domains[:, None, None].float()  # domain: +0..3 dB everywhere
    for target in range(3):
        x[y == target, 4 * target : 4 * target + 3] += 3  # class: a band
    cfg = TrainConfig(epochs=12, batch_size=16, mixup_alpha=0.0, time_mask=0.0, freq_mask=0.0, device="cpu")

    def domain_loss(adversary: float) -> float:
        torch.manual_seed(0)
        model = build_model(ModelConfig(stem_channels=8, widths=(8, 16), dropout=0.0), N_MELS, 3)
        history = fit(model, x, y, 3, replace(cfg, adversary=adversary), domains=domains).history
        assert history[-1]["train_loss"] < 0.5  # the classes are learnt either way
        return np.mean([row["train_domain_loss"] for row in history[-3:]])

    assert domain_loss(1e-6) < 0.9 < np.log(4) < domain_loss(1.0)


def test_the_network_is_its_head_on_its_embedding() -> None:
    for name in ("resnet", "cnn", "crnn"):
        model = build_model(ModelConfig(name=name, stem_channels=4, widths=(4, 8), hidden=8), N_MELS, 3).eval()
        x = torch.randn(2, N_MELS, FRAMES)
        embedding = model.embed(x)
        assert embedding.shape == (2, model.embedding_dim)
        assert torch.equal(model.head(embedding), model(x))


def test_numbers_yaml_reads_as_strings_are_numbers() -> None:
    """PyYAML (YAML 1.1), and so `dvc exp run -S train.adversary=1e-6`, reads 1e-6 as a string."""
    train = yaml.safe_load("adversary: 1e-6\nseed: '3'")
    assert train == {"adversary": "1e-6", "seed": "3"}
    cfg = from_dict(TrainConfig, train)
    assert (cfg.adversary, cfg.seed) == (1e-6, 3)
    with pytest.raises(ValueError, match=r"TrainConfig: lr must be a number, got 'fast'"):
        from_dict(TrainConfig, {"lr": "fast"})
    with pytest.raises(ValueError, match=r"TrainConfig: epochs must be an integer, got '2\.5'"):
        from_dict(TrainConfig, {"epochs": "2.5"})


def test_crop_mixstyle_onset_cut_and_mixup_kind_are_checked() -> None:
    with pytest.raises(ValueError, match=r"crop is a fraction of the frames in \[0, 1\]"):
        TrainConfig(crop=1.5)
    with pytest.raises(ValueError, match=r"mixstyle is a probability in \[0, 1\]"):
        TrainConfig(mixstyle=-0.1)
    with pytest.raises(ValueError, match=r"onset_cut is a probability in \[0, 1\]"):
        TrainConfig(onset_cut=1.2)
    with pytest.raises(ValueError, match=r"mixup_kind must be one of \['mixup', 'sounds'\], got 'bc'"):
        TrainConfig(mixup_kind="bc")


def test_artifacts_outlive_the_temporary_copy_that_trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dvc exp run --temp`` trains in a copy of the repository deleted after the run, logging
    to the workspace's store: the run's artifacts must live beside that store, not in the copy."""
    workspace, copy = tmp_path / "workspace", tmp_path / "copy"
    workspace.mkdir()
    copy.mkdir()
    store = f"sqlite:///{workspace / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.chdir(copy)
    write_features(copy)
    p = params(name="rf")
    p["mlflow"]["experiment"] = "ablation"
    train.main(p)
    monkeypatch.chdir(tmp_path)
    shutil.rmtree(copy)
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("ablation")
    parent = client.search_runs([experiment.experiment_id], "tags.mlflow.parentRunId IS NULL")[0]
    out = mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="cv",
                                              dst_path=str(tmp_path / "download"), tracking_uri=store)
    assert (Path(out) / "confusion_matrix.png").stat().st_size > 1000
    assert experiment.artifact_location == (workspace / "mlruns" / "ablation").as_uri()


def test_bad_folds_are_named(workdir: Path) -> None:
    p = params()
    p["train"]["folds"] = [1, 7]
    with pytest.raises(ValueError, match=r"train.folds names folds \[7\]"):
        train.main(p)
    p["train"] |= {"folds": [1], "holdout_fold": 9}
    with pytest.raises(ValueError, match="train.holdout_fold=9 is not a fold"):
        train.main(p)


def test_provenance_names_the_files_changed_from_the_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    git = lambda *args: subprocess.run(["git", *args], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    git("add", "params.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "params")
    assert train.provenance_tags()["git_changed_files"] == ""
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "augment.py").write_text("# not committed\n")
    tags = train.provenance_tags()
    assert tags["git_dirty"] == "True" and tags["git_changed_files"] == "augment.py params.yaml"
    assert tags["torch.threads"] == str(torch.get_num_threads()) and tags["torch.cpu_capability"]
