"""Explain what a trained network looked at in one clip: Grad-CAM and per-stage feature maps.

Covers: the networks of ``training/models.py`` (``resnet``, ``cnn``, ``crnn``) rebuilt from the
checkpoint of the `train` stage (``models/model.pt``); audio prepared as for serving
(``client.audio.load_audio`` at the checkpoint's sample rate, cropped or padded to the clip
length) and the same log-mel front end. Stages are found generically with forward hooks on
``model.features``: a stage starts at each child that holds a ``Conv2d`` and takes the children
without one that follow it (ReLU, max-pool), so a ResNet gives its stem and its residual stages,
a CNN/CRNN one stage per conv block.

- Grad-CAM (Selvaraju et al., 2017) on the last stage's output A (channels, n_mels', frames'):
  ReLU(sum_k mean(dy_c/dA_k) * A_k), upsampled bilinearly to the log-mel's (n_mels, frames) and
  divided by its maximum, so it lies in [0, 1] (all zero when nothing speaks for the class).
- Feature maps: the first N channels of every stage's output, one PNG grid per stage.

Does not cover: the random-forest baseline (no gradients) or the served ONNX/Triton models (the
export stage checks that they compute what this PyTorch model computes).

    python -m training.explain clip.ogg [--out DIR] [--target dog] [--channels 16]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from client.audio import AudioError, load_audio
from training.checkpoint import TrainedModel, load_checkpoint

log = logging.getLogger(__name__)

DPI = 100
CAM_FIGSIZE = (10.0, 6.0)  # inches: the Grad-CAM PNG is 1000 x 600 pixels
FEATURES_FIGSIZE = (12.0, 6.0)  # inches: each feature-map PNG is 1200 x 600 pixels
DEFAULT_CHANNELS = 16
TOP_DB = 80.0  # log-mel colour range below its peak (zero padding sits at the dB floor)


@dataclass(frozen=True)
class Explanation:
    """Everything drawn for one clip; arrays are numpy float32."""

    labels: list[str]
    probabilities: np.ndarray  # (n_classes,)
    target: int  # the class the CAM explains
    logmel: np.ndarray  # (n_mels, frames), dB
    cam: np.ndarray  # (n_mels, frames), in [0, 1]
    stages: dict[str, np.ndarray]  # stage name -> (channels, n_mels', frames') of that stage
    seconds: float  # duration of the clip

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())

    def summary(self, top_k: int = 3) -> dict:
        order = np.argsort(self.probabilities)[::-1][:top_k]
        return {
            "predicted": self.labels[self.predicted],
            "target": self.labels[self.target],
            "top_k": [{"label": self.labels[i],
                       "probability": round(float(self.probabilities[i]), 6)} for i in order],
            "stages": {name: list(a.shape) for name, a in self.stages.items()},
        }


def find_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) per stage of ``model.features``; the module's output is the stage's output.

    A stage begins at every child that holds a Conv2d; children without one join the stage
    before them (a ReLU or max-pool after its conv). Raises ValueError for a model without a
    ``features`` Sequential holding convolutions.
    """
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValueError(f"{type(model).__name__} has no `features` Sequential of conv layers; "
                         "explain works on the networks of training/models.py (resnet, cnn, crnn)")
    groups: list[list[nn.Module]] = []
    for child in features:
        if any(isinstance(m, nn.Conv2d) for m in child.modules()):
            groups.append([child])
        elif groups:
            groups[-1].append(child)
    if not groups:
        raise ValueError(f"{type(model).__name__}.features holds no Conv2d layer")
    return [(f"stage{i}", group[-1]) for i, group in enumerate(groups, 1)]


def forward_with_stages(model: nn.Module, logmel: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Run the model with gradients on; (1, n_mels, frames) -> logits (1, n_classes) and each
    stage's output {name: (1, channels, n_mels', frames')}, still part of the graph."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        return lambda _module, _inputs, output: outputs.__setitem__(name, output)

    handles = [module.register_forward_hook(keep(name)) for name, module in find_stages(model)]
    try:
        with torch.enable_grad():
            logits = model(logmel.detach().requires_grad_(True))
    finally:
        for handle in handles:
            handle.remove()
    return logits, outputs


def grad_cam(activation: torch.Tensor, score: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM of a scalar ``score`` w.r.t. ``activation`` (1, channels, h, w), upsampled to
    ``size`` = (n_mels, frames) and scaled into [0, 1]."""
    (grads,) = torch.autograd.grad(score, activation)  # (1, channels, h, w)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (1, channels, 1, 1)
    cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[0, 0]  # (*size)
    peak = float(cam.max())
    if peak <= 0:
        log.warning("Grad-CAM is zero everywhere: no region of the last stage speaks for the class")
        return cam.numpy()
    return (cam / peak).numpy()


def explain(trained: TrainedModel, waveform: np.ndarray, target: int | None = None) -> Explanation:
    """Explain one (samples,) waveform at the front end's rate; ``target`` defaults to the
    predicted class."""
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError(f"waveform must be a non-empty (samples,) array, got {waveform.shape}")
    model = trained.model.eval()
    with torch.no_grad():
        wave = torch.as_tensor(waveform, dtype=torch.float32)[None]  # (1, samples)
        logmel = trained.front_end(wave)  # (1, n_mels, frames)
    logits, stages = forward_with_stages(model, logmel)
    probs = torch.softmax(logits.detach()[0], dim=-1).numpy()  # (n_classes,)
    target = int(probs.argmax()) if target is None else target
    if not 0 <= target < len(trained.labels):
        raise ValueError(f"target class {target} is out of range [0, {len(trained.labels)})")
    last = list(stages.values())[-1]  # (1, channels, n_mels', frames')
    cam = grad_cam(last, logits[0, target], size=tuple(logmel.shape[-2:]))
    return Explanation(
        labels=trained.labels, probabilities=probs, target=target, logmel=logmel[0].numpy(),
        cam=cam,
        stages={name: out.detach()[0].numpy().copy() for name, out in stages.items()},
        seconds=waveform.size / trained.front_end.cfg.sample_rate,
    )


def explain_file(trained: TrainedModel, path: str | Path, clip_seconds: float,
                 target: str | None = None) -> Explanation:
    """Decode ``path`` as serving does and explain it; ``target`` is a label name (default: the
    predicted one). Raises AudioError for a file that is not usable audio."""
    if target is not None and target not in trained.labels:
        raise ValueError(f"target {target!r} is not a label of this model; choose one of "
                         f"{trained.labels}")
    wave = load_audio(path, trained.front_end.cfg.sample_rate, clip_seconds)  # (samples,)
    return explain(trained, wave, None if target is None else trained.labels.index(target))


# --- figures -----------------------------------------------------------------------------------


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_grad_cam(exp: Explanation, path: str | Path) -> Path:
    """Two panels, log-mel alone and with the CAM over it; CAM_FIGSIZE * DPI pixels."""
    fig = _figure(CAM_FIGSIZE)
    extent = (0.0, exp.seconds, 0, exp.logmel.shape[0])
    label, p = exp.labels[exp.target], exp.probabilities[exp.target]
    fig.suptitle(f"Grad-CAM for {label!r} (p = {p:.2f}); predicted {exp.labels[exp.predicted]!r}")
    peak = float(exp.logmel.max())
    for ax, overlay in zip(fig.subplots(2, 1, sharex=True), (False, True)):
        image = ax.imshow(exp.logmel, origin="lower", aspect="auto", extent=extent,
                          cmap="gray" if overlay else "magma", vmin=peak - TOP_DB, vmax=peak)
        if overlay:
            ax.imshow(exp.cam, origin="lower", aspect="auto", extent=extent, cmap="jet",
                      alpha=0.45, vmin=0.0, vmax=1.0)
        else:
            fig.colorbar(image, ax=ax, label="dB")
        ax.set_ylabel("mel band")
        ax.set_title("log-mel + Grad-CAM" if overlay else "log-mel")
    ax.set_xlabel("time (s)")
    fig.savefig(path, dpi=DPI)
    return Path(path)


def plot_feature_maps(name: str, maps: np.ndarray, path: str | Path, n_channels: int) -> Path:
    """A grid of the first ``n_channels`` of (channels, h, w), each scaled to its own range;
    FEATURES_FIGSIZE * DPI pixels."""
    n = min(n_channels, maps.shape[0])
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = _figure(FEATURES_FIGSIZE)
    channels, height, width = maps.shape
    fig.suptitle(f"{name}: first {n} of {channels} channels, {height} x {width} (mel x time)")
    for i, ax in enumerate(np.atleast_1d(fig.subplots(rows, cols)).ravel()):
        ax.set_axis_off()
        if i < n:
            ax.imshow(maps[i], origin="lower", aspect="auto", cmap="viridis")
            ax.set_title(f"ch {i}", fontsize=8)
    fig.savefig(path, dpi=DPI)
    return Path(path)


def write_explanation(exp: Explanation, out: str | Path,
                      n_channels: int = DEFAULT_CHANNELS) -> list[Path]:
    """``gradcam.png``, ``features_<stage>.png`` per stage and ``explanation.json`` into ``out``."""
    if n_channels < 1:
        raise ValueError(f"n_channels must be >= 1, got {n_channels}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [plot_grad_cam(exp, out / "gradcam.png")]
    written += [plot_feature_maps(name, maps, out / f"features_{name}.png", n_channels)
                for name, maps in exp.stages.items()]
    (out / "explanation.json").write_text(json.dumps(exp.summary(), indent=2) + "\n")
    return [*written, out / "explanation.json"]


# --- command line ------------------------------------------------------------------------------


def default_clip_seconds() -> float:
    from pipelines import paths
    from pipelines.params import load_params

    if not paths.PARAMS.is_file():
        raise ValueError(f"no {paths.PARAMS} here to read data.clip_seconds from; "
                         "pass --clip-seconds")
    return float(load_params()["data"]["clip_seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.explain",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("audio", type=Path, help="WAV, FLAC or OGG file")
    parser.add_argument("--checkpoint", type=Path, default=Path("models/model.pt"))
    parser.add_argument("--out", type=Path,
                        help="output directory (default: build/explain/<audio file stem>)")
    parser.add_argument("--target", help="label to explain (default: the predicted one)")
    parser.add_argument("--channels", type=int, default=DEFAULT_CHANNELS,
                        help="feature maps drawn per stage")
    parser.add_argument("--clip-seconds", type=float,
                        help="crop/pad length (default: data.clip_seconds of params.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.checkpoint.is_file():
        print(f"explain: no checkpoint at {args.checkpoint}; run `dvc repro train` or pass "
              "--checkpoint", file=sys.stderr)
        return 2
    try:
        trained = load_checkpoint(args.checkpoint)
    except RuntimeError as err:  # load_state_dict: the network code changed since training
        print(f"explain: {args.checkpoint} does not fit the networks of training/models.py "
              f"({str(err).splitlines()[0]}); retrain it with `dvc repro train`", file=sys.stderr)
        return 2
    try:
        clip_seconds = args.clip_seconds or default_clip_seconds()
        exp = explain_file(trained, args.audio, clip_seconds, args.target)
        written = write_explanation(exp, args.out or Path("build/explain") / args.audio.stem,
                                    args.channels)
    except (AudioError, ValueError) as err:
        print(f"explain: {err}", file=sys.stderr)
        return 1
    for item in exp.summary()["top_k"]:
        print(f"  {item['label']:<20s} {item['probability']:7.2%}")
    print("\n".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
