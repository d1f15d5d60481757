"""Train and evaluate a classifier on preloaded log-mel features.

Covers one fit (train folds -> validation fold, best epoch kept) and batched inference.
Cross-validation, files and tracking are wired in ``pipelines/train.py``.
"""

from __future__ import annotations

import functools
import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from training.augment import (
    filter_augment, freq_mixstyle, freq_warp, level_and_noise, mix_sounds, mixup, onset_cut, peak_window,
    spec_augment, time_stretch, warp_bands,
)

log = logging.getLogger(__name__)

MIXUP = {"mixup": mixup, "sounds": mix_sounds}  # train.mixup_kind


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    restart_epochs: int = 20  # T_0 of cosine annealing with warm restarts, in epochs
    mixup_alpha: float = 0.4
    # mixup: average two examples' dB log-mel; sounds: add their powers at a level-aware ratio
    # (between-class learning, training/augment.py: mix_sounds).
    mixup_kind: str = "mixup"
    time_mask: float = 0.2  # SpecAugment: largest time mask, fraction of frames
    freq_mask: float = 0.2  # SpecAugment: largest frequency mask, fraction of bands
    n_masks: int = 2
    # > 0: train on random windows of this fraction of the frames, each holding its clip's loudest
    # frame (validation and serving read whole clips; the models pool over time).
    crop: float = 0.0
    # Other speakers and microphones (training/augment.py; 0 = off): largest mel-axis warp and
    # time stretch (fractions), largest level shift (dB), noise floor at least this far below
    # the peak (dB).
    freq_warp: float = 0.0
    time_stretch: float = 0.0
    gain_db: float = 0.0
    noise_db: float = 0.0
    mixstyle: float = 0.0  # probability that an example takes on a partner's band statistics (0 = off)
    filter_db: float = 0.0  # largest gain (dB) of a random smooth filter across the mel bands (0 = off)
    # Probability that an example starts later, at most at its loudest frame: a recording begun
    # mid-word (0 = off).
    onset_cut: float = 0.0
    # Exponential moving average of the weights (and BatchNorm statistics), updated after every
    # optimiser step with this decay (warmed up: ``ema_decay_at``); validation, checkpoints and the
    # exported model use the average (0 = off: the trained weights themselves).
    ema_decay: float = 0.0
    # Training targets (1 - e) * one-hot + e / n_classes before any mixing (Szegedy et al., 2016;
    # 0 = off): a confident wrong fit of a few clips costs less, which 320 training clips invite.
    label_smoothing: float = 0.0
    # > 0: a domain classifier on the pooled features, through gradient reversal at up to this weight
    # (DANN, Ganin & Lempitsky, 2015), so that the features stop telling the training domains apart;
    # a clip's domain is its fold, which in the speaker split is its speaker (0 = off).
    adversary: float = 0.0
    # Test-time augmentation, a second validation reading: each clip is also scored with its mel axis
    # stretched by these factors (as ``freq_warp`` trains), its probabilities averaged with the plain
    # clip's: ``val_tta_accuracy`` / ``val_tta_loss`` per epoch. The plain reading still picks the best
    # epoch and is what the run reports and exports (empty: off).
    tta_warps: tuple[float, ...] = ()
    folds: tuple[int, ...] = (1, 2, 3, 4, 5)  # validation folds of the cross-validation
    # The exported model is fit on every fold but this one (0: on all folds), so that the
    # main job can show it clips it never saw.
    holdout_fold: int = 5
    fit_final: bool = True  # fit the exported model after the CV (off for CV-only ablations)
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    # The training steps' arithmetic: auto (bfloat16 autocast on cuda, float32 on cpu) | float32 |
    # bfloat16 (on cpu too, with channels-last weights: about twice the speed on a CPU with bfloat16
    # instructions, docs/training_benchmarks.md). Weights stay float32; validation is float32 on cpu.
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.restart_epochs < 1:
            raise ValueError(
                f"need epochs >= 1, batch_size >= 2, restart_epochs >= 1; got "
                f"{self.epochs}, {self.batch_size}, {self.restart_epochs}"
            )
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not (0 <= self.time_mask < 1 and 0 <= self.freq_mask < 1):
            raise ValueError(
                f"time_mask and freq_mask are fractions in [0, 1), "
                f"got {self.time_mask}, {self.freq_mask}"
            )
        if not 0 <= self.crop <= 1:
            raise ValueError(f"crop is a fraction of the frames in [0, 1] (0: whole clips), got {self.crop}")
        if not (0 <= self.freq_warp < 0.5 and 0 <= self.time_stretch < 0.5
                and self.gain_db >= 0 and self.noise_db >= 0 and self.filter_db >= 0):
            raise ValueError(
                f"need 0 <= freq_warp < 0.5, 0 <= time_stretch < 0.5, gain_db, noise_db, filter_db >= 0; "
                f"got {self.freq_warp}, {self.time_stretch}, {self.gain_db}, {self.noise_db}, {self.filter_db}"
            )
        if self.mixup_kind not in MIXUP:
            raise ValueError(f"mixup_kind must be one of {sorted(MIXUP)}, got {self.mixup_kind!r}")
        if not 0 <= self.mixstyle <= 1:
            raise ValueError(f"mixstyle is a probability in [0, 1] (0: off), got {self.mixstyle}")
        if not 0 <= self.onset_cut <= 1:
            raise ValueError(f"onset_cut is a probability in [0, 1] (0: off), got {self.onset_cut}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0: off), got {self.ema_decay}")
        if self.adversary < 0:
            raise ValueError(f"adversary is a loss weight >= 0 (0: off), got {self.adversary}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1) (0: off), got {self.label_smoothing}")
        if not all(0.5 < f < 1.5 and f != 1 for f in self.tta_warps):
            raise ValueError(f"tta_warps are mel-axis stretch factors in (0.5, 1.5), not 1 (the plain clip is "
                             f"always scored), e.g. [0.95, 1.05]; got {list(self.tta_warps)}")
        if not self.folds:
            raise ValueError("folds must name at least one validation fold")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"precision must be auto, float32 or bfloat16, got {self.precision!r}")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"train.device=cuda, but torch {torch.__version__} sees no CUDA device here; "
                               "run on a GPU machine or set train.device=auto (or cpu)")
        return torch.device(self.device)

    def bfloat16(self, device: torch.device) -> bool:
        """Whether the training steps on ``device`` run under bfloat16 autocast."""
        return device.type == "cuda" if self.precision == "auto" else self.precision == "bfloat16"

    def to_dict(self) -> dict:
        return asdict(self)


def smooth(one_hot: torch.Tensor, e: float) -> torch.Tensor:
    """(n, n_classes) one-hot targets -> (1 - e) * one_hot + e / n_classes (rows still sum to 1)."""
    return one_hot * (1 - e) + e / one_hot.shape[-1] if e else one_hot


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(batch, k) logits and (batch, k) soft targets (rows summing to 1) -> mean cross-entropy."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


def ema_decay_at(decay: float, n_averaged: int) -> float:
    """The moving average's decay after ``n_averaged`` updates: ``decay``, warmed up as in
    TensorFlow's ExponentialMovingAverage, min(decay, (1 + n) / (10 + n)). Without the warm-up the
    barely trained weights of the first step keep decay**n of the average: at decay 0.99 a CNN still
    scored 21% on an ESC-10 fold after 200 steps, where its trained weights scored 86% (with the
    warm-up, 86%)."""
    return min(decay, (1 + n_averaged) / (10 + n_averaged))


def ema_multi_avg_fn(decay: float) -> Callable:
    """``AveragedModel``'s ``multi_avg_fn``: torch's EMA update at the warmed-up decay."""
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        get_ema_multi_avg_fn(ema_decay_at(decay, int(n_averaged)))(averaged, current, n_averaged)
    return update


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward, the gradient times ``-weight`` (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def adversary_weight(weight: float, progress: float) -> float:
    """DANN's ramp: the reversal's weight at ``progress`` in [0, 1] of training,
    ``weight * (2 / (1 + exp(-10 progress)) - 1)``: 0 at the start, when the features mean nothing yet."""
    return weight * (2 / (1 + math.exp(-10 * progress)) - 1)


def cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@dataclass
class FitResult:
    best_state: dict
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    samples_seen: int = 0
    # With validation: the snapshot ensemble's (n_val, n_classes) probabilities, the mean of those
    # of the weights at the end of each restart cycle and at the last epoch (``snapshot_epochs``).
    snapshot_probs: np.ndarray | None = None


def snapshot_epochs(epochs: int, restart_epochs: int) -> list[int]:
    """Epochs whose weights form the snapshot ensemble (Huang et al., 2017): each cosine cycle's
    last epoch, where the learning rate is lowest, and the last epoch. Fixed by the schedule, not
    chosen on the validation fold, so the ensemble's accuracy is not optimistic by a choice."""
    return sorted(set(range(restart_epochs, epochs + 1, restart_epochs)) | {epochs})


def cpu_bfloat16_instructions() -> bool | None:
    """Whether this x86 CPU has bfloat16 arithmetic (AVX512-BF16 or AMX); None on other architectures.
    Without it oneDNN emulates bfloat16, and a CPU training step is several times slower than float32."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


@functools.cache
def warn_emulated_bfloat16() -> None:
    """Once a process: say that ``train.precision=bfloat16`` is emulated on this CPU, and the fix."""
    log.warning("train.precision=bfloat16 on a CPU without bfloat16 instructions (no AVX512-BF16 or AMX): "
                "oneDNN emulates it, about ten times slower than float32 (an FSDD epoch on 2 cores of an AMD EPYC: "
                "over 3 min against 20 s); set train.precision=float32 (or auto) on this machine")


def autocast(device: torch.device, bfloat16: bool | None = None):
    """bfloat16 autocast where ``bfloat16`` (None: on CUDA); a no-op context otherwise."""
    enabled = device.type == "cuda" if bfloat16 is None else bfloat16
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """(n, n_mels, frames) features on the model's device -> (n, n_classes) probabilities."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        with autocast(device):
            out.append(torch.softmax(model(x[i : i + batch_size].to(device)).float(), dim=-1))
    return torch.cat(out).cpu().numpy()


def tta_proba(model: nn.Module, x: torch.Tensor, probs: np.ndarray, warps: tuple[float, ...]) -> np.ndarray:
    """(n, n_classes) probabilities of the plain (n, n_mels, frames) features ``x``, averaged with those
    of ``x`` with its mel axis stretched by each of ``warps``: (n, n_classes). Draws no random numbers."""
    return np.mean([probs, *(predict_proba(model, warp_bands(x, f)) for f in warps)], axis=0)


def scores(probs: np.ndarray, y: torch.Tensor) -> dict:
    """(n, n_classes) probabilities and (n,) targets -> negative log-likelihood and accuracy."""
    p = torch.from_numpy(probs)
    y = y.cpu()
    loss = F.nll_loss(torch.log(p.clamp_min(1e-12)), y).item()
    return {"loss": loss, "accuracy": float((p.argmax(1) == y).float().mean())}


def fit(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    n_classes: int,
    cfg: TrainConfig,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    domains: torch.Tensor | None = None,
) -> FitResult:
    """Fit ``model`` on (n, n_mels, frames) features and (n,) int targets.

    Features are moved to the training device once (preloaded), so no loader can starve it.
    With ``val``, the state of the epoch with the best validation accuracy (lower loss breaks
    ties) is returned; without it, the last epoch's state. With ``cfg.ema_decay`` the states, and
    the validation, are those of the weights' moving average. States are returned on the CPU.
    With ``val``, the snapshot ensemble's probabilities are kept too, and its accuracy so far is
    in the history at each ``snapshot_epochs`` epoch (``val_snapshot_accuracy``).
    With ``cfg.adversary`` and (n,) int ``domains`` of at least two values, a domain classifier
    (trained here, never returned) reads ``model.embed`` through gradient reversal, its targets
    mixed along with the classes'; its loss is in the history as ``train_domain_loss``.
    """
    torch.manual_seed(cfg.seed)
    device = cfg.torch_device()
    model.to(device)
    bfloat16 = cfg.bfloat16(device)
    if bfloat16 and device.type == "cpu":  # oneDNN's bfloat16 convolutions are fastest channels-last
        model.to(memory_format=torch.channels_last)
        if cpu_bfloat16_instructions() is False:
            warn_emulated_bfloat16()
    x_train, y_train = x_train.to(device), y_train.to(device)
    if val is not None:
        val = (val[0].to(device), val[1].to(device))
    n = len(x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    targets = smooth(F.one_hot(y_train, n_classes).float(), cfg.label_smoothing)  # (n, n_classes)
    adversary = None
    if cfg.adversary > 0 and domains is not None:
        names, domain = torch.unique(domains, return_inverse=True)
        if len(names) > 1:
            adversary = nn.Sequential(nn.Linear(model.embedding_dim, 256), nn.ReLU(inplace=True),
                                      nn.Linear(256, len(names))).to(device)
            # (n, n_classes + n_domains): Mixup mixes the domains with the same partner and share.
            targets = torch.cat([targets, F.one_hot(domain, len(names)).float().to(device)], dim=1)
        else:
            log.warning("train.adversary=%s ignored: the training clips are from one domain (fold)",
                        cfg.adversary)
    trained = [*model.parameters(), *(adversary.parameters() if adversary is not None else ())]
    opt = torch.optim.Adam(trained, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=cfg.restart_epochs * steps_per_epoch
    )
    # The moving average, where on, is what is validated and returned (``scored``).
    ema = (AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
           if cfg.ema_decay > 0 else None)
    scored = model if ema is None else ema.module
    result = FitResult(best_state=cpu_state(model), best_epoch=0)
    best_key = (-1.0, 0.0)
    snapshots = set(snapshot_epochs(cfg.epochs, cfg.restart_epochs))
    snapshot_sum = None  # (n_val, n_classes), summed over the snapshots so far
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(n).to(device)
        total, total_domain, seen = 0.0, 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two examples in training mode
                continue
            xb = onset_cut(x_train[idx], cfg.onset_cut)
            xb = time_stretch(freq_warp(xb, cfg.freq_warp), cfg.time_stretch)
            xb = peak_window(xb, cfg.crop)
            xb = freq_mixstyle(level_and_noise(xb, cfg.gain_db, cfg.noise_db), cfg.mixstyle)
            xb = filter_augment(xb, cfg.filter_db)
            xb = spec_augment(xb, cfg.time_mask, cfg.freq_mask, cfg.n_masks)
            xb, yb = MIXUP[cfg.mixup_kind](xb, targets[idx], cfg.mixup_alpha)
            with autocast(device, bfloat16):
                if adversary is None:
                    logits = model(xb).float()
                else:
                    embedding = model.embed(xb)  # (batch, embedding_dim)
                    logits = model.head(model.dropout(embedding)).float()
                    weight = adversary_weight(cfg.adversary, (epoch - 1 + i / n) / cfg.epochs)
                    domain_logits = adversary(GradientReversal.apply(embedding, weight)).float()
            loss = objective = soft_cross_entropy(logits, yb[:, :n_classes])
            if adversary is not None:
                domain_loss = soft_cross_entropy(domain_logits, yb[:, n_classes:])
                total_domain += domain_loss.item() * len(idx)
                objective = loss + domain_loss
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total += loss.item() * len(idx)
            seen += len(idx)
        result.samples_seen += seen
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), "lr": opt.param_groups[0]["lr"]}
        if adversary is not None:
            row["train_domain_loss"] = total_domain / max(seen, 1)
        if val is not None:
            probs = predict_proba(scored, val[0])
            metrics = scores(probs, val[1])
            row |= {"val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"]}
            if cfg.tta_warps:
                tta = scores(tta_proba(scored, val[0], probs, cfg.tta_warps), val[1])
                row |= {"val_tta_loss": tta["loss"], "val_tta_accuracy": tta["accuracy"]}
            if epoch in snapshots:
                snapshot_sum = probs if snapshot_sum is None else snapshot_sum + probs
                result.snapshot_probs = snapshot_sum / sum(e <= epoch for e in snapshots)
                row["val_snapshot_accuracy"] = scores(result.snapshot_probs, val[1])["accuracy"]
            key = (metrics["accuracy"], -metrics["loss"])
            if key > best_key:
                best_key, result.best_epoch = key, epoch
                result.best_state = cpu_state(scored)
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        log.info("epoch %d/%d %s", epoch, cfg.epochs, {k: round(v, 4) for k, v in row.items()})
    if val is None:
        result.best_state, result.best_epoch = cpu_state(scored), cfg.epochs
    result.train_seconds = time.perf_counter() - start
    return result
