"""Grad-CAM and feature maps (training/explain.py) on tiny networks and a real ESC-10 clip."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from client.audio import AudioError, load_audio
from tests.conftest import ESC10, needs_esc10, run
from training import explain as ex
from training.checkpoint import TrainedModel, load_checkpoint
from training.features import LogMelConfig
from training.loop import TrainConfig
from training.models import ModelConfig, build_model

CLIP = ESC10 / "audio" / "001 - Dog bark" / "5-203128-A.ogg"
LABELS = ["dog", "rain", "rooster", "chainsaw"]
FEATURES = LogMelConfig(n_mels=32)
CLIP_SECONDS = 5.0
NETWORKS = ("resnet", "cnn", "crnn")

pytestmark = needs_esc10


def save_tiny_checkpoint(path: Path, name: str) -> Path:
    """A checkpoint with the keys `pipelines/train.py` writes, around an untrained tiny network."""
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, stem_channels=4, widths=(4, 8, 8), hidden=6, dropout=0.0)
    model = build_model(cfg, n_mels=FEATURES.n_mels, n_classes=len(LABELS))
    torch.save({"state_dict": model.state_dict(), "model_config": cfg.to_dict(),
                "feature_config": FEATURES.to_dict(), "train_config": TrainConfig().to_dict(),
                "labels": LABELS, "mlflow_run_id": None}, path)
    return path


@pytest.fixture(scope="module", params=NETWORKS)
def checkpoint(request, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp(request.param) / "model.pt", request.param)


@pytest.fixture(scope="module")
def trained(checkpoint: Path) -> TrainedModel:
    return load_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def wave() -> np.ndarray:
    return load_audio(CLIP, FEATURES.sample_rate, CLIP_SECONDS)


def test_cam_covers_the_logmel_in_0_1(trained: TrainedModel, wave: np.ndarray) -> None:
    exp = ex.explain_file(trained, CLIP, CLIP_SECONDS)
    frames = FEATURES.n_frames(round(CLIP_SECONDS * FEATURES.sample_rate))
    assert exp.logmel.shape == exp.cam.shape == (FEATURES.n_mels, frames)
    assert exp.cam.min() >= 0.0 and exp.cam.max() == pytest.approx(1.0)
    assert exp.cam.std() > 0.01, "the CAM is constant"
    assert exp.target == exp.predicted
    np.testing.assert_allclose(exp.probabilities,
                               trained.predict_proba(torch.from_numpy(wave)[None])[0].numpy(),
                               atol=1e-6)


def test_stages_follow_the_network(trained: TrainedModel) -> None:
    exp = ex.explain(trained, np.zeros(FEATURES.sample_rate, np.float32))
    channels = [maps.shape[0] for maps in exp.stages.values()]
    if trained.model.name == "resnet":  # the stem, then one stage per width
        assert channels == [4, 4, 8, 8]
    else:  # one conv block per width
        assert channels == [4, 8, 8]
    assert list(exp.stages) == [f"stage{i}" for i in range(1, len(channels) + 1)]
    assert not any(m._forward_hooks for m in trained.model.modules()), "hooks were left behind"


def test_the_cam_depends_on_the_target_class(trained: TrainedModel, wave: np.ndarray) -> None:
    cams = [ex.explain(trained, wave, target=c).cam for c in range(len(LABELS))]
    for a, b in itertools.combinations(range(len(LABELS)), 2):
        assert not np.allclose(cams[a], cams[b], atol=1e-3), f"classes {a} and {b} give one CAM"


def test_resnet_grad_cam_equals_class_activation_mapping(wave: np.ndarray, tmp_path: Path) -> None:
    """Global average pooling + a linear head: the Grad-CAM weights are the head's row / (h * w),
    so the map is ReLU(sum_k W[c, k] A_k) up to scale (Zhou et al.'s CAM)."""
    trained = load_checkpoint(save_tiny_checkpoint(tmp_path / "model.pt", "resnet"))
    for target in range(len(LABELS)):
        exp = ex.explain(trained, wave, target=target)
        last = torch.from_numpy(exp.stages["stage4"])  # (channels, h, w)
        weights = trained.model.head.weight[target].detach()  # (channels,)
        cam = torch.relu(torch.einsum("k,khw->hw", weights, last))  # (h, w)
        cam = torch.nn.functional.interpolate(cam[None, None], size=exp.logmel.shape,
                                              mode="bilinear", align_corners=False)[0, 0]
        np.testing.assert_allclose(exp.cam, (cam / cam.max()).numpy(), atol=1e-5)


def assert_png(path: Path, size: tuple[float, float]) -> None:
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint32)  # (height, width, 3)
    assert image.shape[:2] == (round(size[1] * ex.DPI), round(size[0] * ex.DPI)), path
    colours = np.unique(image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2])
    assert image.std() > 10 and len(colours) > 100, f"{path} is blank"


def test_pngs_have_their_size_and_content(trained: TrainedModel, tmp_path: Path) -> None:
    exp = ex.explain_file(trained, CLIP, CLIP_SECONDS, target="rain")
    written = ex.write_explanation(exp, tmp_path / "out", n_channels=4)
    assert [p.name for p in written] == ["gradcam.png", *(f"features_{s}.png" for s in exp.stages),
                                         "explanation.json"]
    assert_png(tmp_path / "out" / "gradcam.png", ex.CAM_FIGSIZE)
    for stage in exp.stages:
        assert_png(tmp_path / "out" / f"features_{stage}.png", ex.FEATURES_FIGSIZE)
    summary = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert summary["target"] == "rain" and summary["predicted"] == LABELS[exp.predicted]


def test_bad_input_names_the_problem(trained: TrainedModel, tmp_path: Path) -> None:
    text = tmp_path / "notes.ogg"
    text.write_text("not audio")
    with pytest.raises(AudioError, match="notes.ogg: not a readable audio file"):
        ex.explain_file(trained, text, CLIP_SECONDS)
    with pytest.raises(AudioError, match="no such file"):
        ex.explain_file(trained, tmp_path / "missing.wav", CLIP_SECONDS)
    with pytest.raises(ValueError, match="'cat' is not a label of this model"):
        ex.explain_file(trained, CLIP, CLIP_SECONDS, target="cat")
    with pytest.raises(ValueError, match=r"target class 4 is out of range \[0, 4\)"):
        ex.explain(trained, np.zeros(100, np.float32), target=len(LABELS))
    ex.explain(trained, np.zeros(100, np.float32), target=len(LABELS) - 1)  # one under the limit
    with pytest.raises(ValueError, match="no `features` Sequential"):
        ex.find_stages(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="n_channels must be >= 1"):
        ex.write_explanation(ex.explain(trained, np.zeros(100, np.float32)), tmp_path, n_channels=0)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pt", "cnn")
    common = ["--checkpoint", str(checkpoint), "--clip-seconds", str(CLIP_SECONDS)]
    assert ex.main([str(CLIP), *common, "--out", str(tmp_path / "out"), "--channels", "2"]) == 0
    assert (tmp_path / "out" / "gradcam.png").is_file()
    assert str(tmp_path / "out" / "explanation.json") in capsys.readouterr().out
    assert ex.main([str(tmp_path / "nope.wav"), *common]) == 1
    assert "nope.wav: no such file" in capsys.readouterr().err
    assert ex.main([str(CLIP), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


@pytest.mark.slow
def test_command_on_the_pipelines_checkpoint(pipeline_run) -> None:
    """The real `train` output, clip length from its params.yaml, output under build/."""
    result = run([sys.executable, "-m", "training.explain", str(CLIP)], pipeline_run.root)
    out = Path("build") / "explain" / CLIP.stem
    assert str(out / "explanation.json") in result.stdout.splitlines()
    summary = json.loads((pipeline_run.root / out / "explanation.json").read_text())
    assert summary["target"] == summary["predicted"] == summary["top_k"][0]["label"]
    assert len(summary["stages"]) == 5  # the ResNet's stem and its four stages
    assert_png(pipeline_run.root / out / "gradcam.png", ex.CAM_FIGSIZE)
