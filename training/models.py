"""Classifiers over log-mel spectrograms: one family selected by ``ModelConfig.name``.

Every network takes (batch, n_mels, frames) log-mel in dB, of any number of frames, and returns
(batch, n_classes) logits. Input normalisation lives inside the model, so exported graphs need
no separate statistics: optionally each clip's level (``top_db``: dB relative to the clip's
loudest band-frame, floored ``top_db`` below it), per-channel energy normalisation (``pcen_frames``)
spectral colouring (``mean_norm``: each mel band minus its mean over the clip's frames) and the
spectral envelope (``cepstra``: each frame's log-mel spectrum smoothed by cepstral liftering), then a
BatchNorm over mel bands.

- ``resnet``: stem conv+BN, residual stages of increasing width, pooling, linear.
- ``cnn``: conv+BN+ReLU+maxpool blocks (64-128-256-512), pooling, FC ``hidden``, dropout.
- ``crnn``: the same conv blocks as a front end, then a bidirectional GRU over time.

The classical baseline (random forest on MFCC statistics) lives in ``training/baseline.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import dct
from torch import nn

NETWORKS = ("resnet", "cnn", "crnn")
BASELINES = ("rf",)
POOLINGS = ("mean", "bands", "stats", "meanmax")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet"
    widths: tuple[int, ...] = (32, 64, 128, 256)  # resnet stages / cnn and crnn conv blocks
    stem_channels: int = 32  # resnet
    stem_stride: int = 2  # first conv's stride (all networks): halves both input axes
    blocks_per_stage: int = 1  # resnet
    hidden: int = 1024  # cnn: FC width; crnn: GRU units per direction
    dropout: float = 0.2
    # > 0: each clip in dB relative to its own loudest band-frame, floored this far below it, so
    # recording level and digital silence look alike across microphones (0: absolute dB).
    top_db: float = 0.0
    # Each mel band minus its mean over the clip (cepstral mean normalisation in the log-mel
    # domain): removes a microphone's or room's fixed frequency response, but for a clip of one
    # word also much of the word (pipelines/ablation.py, row fsdd-resnet-speakers-cmn).
    mean_norm: bool = False
    # > 0: per-channel energy normalisation (PCEN) instead of log compression, each band's power over
    # its own smoothed past with this time constant in frames: nearly level-free, a steady background
    # fades, onsets stand out; exponents trainable per band (0: off).
    pcen_frames: float = 0.0
    # > 0: each frame's log-mel spectrum reduced to its first this many cepstral coefficients (DCT-II
    # over mel bands, the rest zeroed, transformed back): the smooth spectral envelope (formants)
    # stays, the fine structure of a voice's pitch harmonics goes (0: off).
    cepstra: int = 0
    # How the last conv features reach the head (resnet, cnn): "mean" over mel rows and frames;
    # "bands": mean over frames only, the mel rows left after the strides kept apart, so the head
    # sees where in frequency a pattern lies (channels * rows features); "stats": mean over mel
    # rows, then mean and standard deviation over frames, so the head sees how much each feature
    # varies over the clip, beyond the conv layers' receptive field (2 * channels features);
    # "meanmax": mean over mel rows, then maximum plus mean over frames (PANNs, Kong et al., 2020), so a
    # short word padded with more silence still reaches the head at full strength (channels features;
    # no gain for unseen speakers, pipelines/ablation.py, row fsdd-resnet-speakers-fmin100-60ep-cepstra-onset-meanmax).
    pooling: str = "mean"
    # > 0 (resnet): relaxed instance frequency-wise normalisation (RFN, Kim et al., 2022) before each residual
    # stage, this share of it per clip: each row of the feature maps (a band of frequencies) normalised over
    # channels and frames, so a microphone's or voice's gain per band is gone; the rest layer-normalised, so
    # how the bands compare is not lost entirely (0: off).
    freq_norm: float = 0.0
    n_estimators: int = 500  # rf

    def __post_init__(self) -> None:
        if self.name not in NETWORKS + BASELINES:
            raise ValueError(f"model name {self.name!r} is not one of {sorted(NETWORKS + BASELINES)}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if self.stem_channels < 1 or self.stem_stride not in (1, 2):
            raise ValueError(
                f"need stem_channels >= 1 and stem_stride in (1, 2), "
                f"got {self.stem_channels}, {self.stem_stride}"
            )
        if self.blocks_per_stage < 1 or self.hidden < 1 or self.n_estimators < 1:
            raise ValueError(
                f"blocks_per_stage, hidden and n_estimators must be >= 1, got "
                f"{self.blocks_per_stage}, {self.hidden}, {self.n_estimators}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.top_db < 0:
            raise ValueError(f"top_db must be >= 0 (0: off), got {self.top_db}")
        if self.pcen_frames < 0:
            raise ValueError(f"pcen_frames must be >= 0 (0: off), got {self.pcen_frames}")
        if self.cepstra < 0:
            raise ValueError(f"cepstra must be >= 0 (0: off), got {self.cepstra}")
        if not 0.0 <= self.freq_norm <= 1.0 or (self.freq_norm > 0 and self.name != "resnet"):
            raise ValueError(f"freq_norm must be in [0, 1] (0: off), and above 0 for resnet only, got "
                             f"{self.freq_norm} for {self.name}")
        if self.pooling not in POOLINGS or (self.pooling != "mean" and self.name == "crnn"):
            raise ValueError(f"pooling must be one of {list(POOLINGS)} (crnn: mean), got {self.pooling!r}")

    @property
    def is_network(self) -> bool:
        return self.name in NETWORKS

    def to_dict(self) -> dict:
        return asdict(self)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


def init_weights(module: nn.Module) -> None:
    """He initialisation for convolutions, unit BatchNorm, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


class PCEN(nn.Module):
    """Per-channel energy normalisation (Wang et al., 2017) of log-mel dB, its exponents trainable per band.

    Each band's power E over M, its causal exponential moving average (time constant ``frames``;
    librosa.pcen's smoothing, started from the first frame's level), then compressed:
    (E / (eps + M)^alpha + delta)^r - delta^r. The average is a convolution truncated where its
    weights fall 100 dB below the newest frame's (renormalised), so the exported graph takes any
    number of frames and matches the recursive filter within float32 precision.

    Input: (batch, n_mels, frames) dB. Output: (batch, n_mels, frames).
    """

    def __init__(self, n_mels: int, frames: float, alpha: float = 0.98, delta: float = 2.0, r: float = 0.5,
                 eps: float = 1e-6) -> None:
        super().__init__()
        s = (math.sqrt(1.0 + 4.0 * frames**2) - 1.0) / (2.0 * frames**2)  # librosa.pcen's smoothing weight
        taps = max(1, math.ceil(math.log(1e-10) / math.log1p(-s)))  # older weights: below -100 dB
        kernel = s * (1.0 - s) ** torch.arange(taps - 1, -1, -1, dtype=torch.float64)  # oldest frame first
        self.register_buffer("kernel", (kernel / kernel.sum()).float().view(1, 1, taps), persistent=False)
        self.log_alpha = nn.Parameter(torch.full((n_mels,), math.log(alpha)))
        self.log_delta = nn.Parameter(torch.full((n_mels,), math.log(delta)))
        self.log_r = nn.Parameter(torch.full((n_mels,), math.log(r)))
        self.eps = eps

    def forward(self, db: torch.Tensor) -> torch.Tensor:
        # float32 under autocast too: the moving average sums hundreds of taps.
        with torch.autocast(db.device.type, enabled=False):
            power = torch.pow(10.0, db.float() / 10.0)  # (batch, n_mels, frames)
            b, m, n = power.shape
            past = F.pad(power.reshape(b * m, 1, n), (self.kernel.shape[-1] - 1, 0), mode="replicate")
            smooth = F.conv1d(past, self.kernel).reshape(b, m, n)
            alpha, delta, r = (p.exp().view(1, -1, 1) for p in (self.log_alpha, self.log_delta, self.log_r))
            return (power / (self.eps + smooth) ** alpha + delta) ** r - delta**r


class RelaxedFreqNorm(nn.Module):
    """Relaxed instance frequency-wise normalisation (Kim et al., 2022): ``share * IFN(x) + (1 - share) * LN(x)``.

    IFN normalises each row (frequency) of each example over channels and frames; LN each example over
    channels, rows and frames. No trainable weights; the same in training and inference.
    Input and output: (batch, channels, rows, frames).
    """

    def __init__(self, share: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.share, self.eps = share, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels, frames = x.shape[1], x.shape[3]
        with torch.autocast(x.device.type, enabled=False):
            # Statistics summed in float32 (the squares in x's dtype), over channels first (contiguous in
            # channels-last memory).
            row_mean = x.sum(dim=1, dtype=torch.float32).sum(dim=2) / (channels * frames)  # (batch, rows)
            row_square = (x * x).sum(dim=1, dtype=torch.float32).sum(dim=2) / (channels * frames)
            row_var = (row_square - row_mean**2).clamp(min=0.0)
            mean = row_mean.mean(dim=1, keepdim=True)  # (batch, 1)
            var = (row_square.mean(dim=1, keepdim=True) - mean**2).clamp(min=0.0)
            row_scale = self.share * torch.rsqrt(row_var + self.eps)
            scale = (1.0 - self.share) * torch.rsqrt(var + self.eps)
            # Both normalisations as one affine map per row: x * (a + b) - (mean_row * a + mean * b).
            gain = (row_scale + scale)[:, None, :, None].to(x.dtype)
            shift = (row_mean * row_scale + mean * scale)[:, None, :, None].to(x.dtype)
            return x * gain - shift


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN with an identity (or 1x1 projection) shortcut.

    (batch, c_in, H, W) -> (batch, c_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2 = conv_bn(c_out, c_out, 3, 1)
        self.shortcut = (
            nn.Identity() if stride == 1 and c_in == c_out else conv_bn(c_in, c_out, 1, stride)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        return self.relu(out + self.shortcut(x))


def conv_blocks(widths: tuple[int, ...], first_stride: int) -> nn.Sequential:
    """conv3x3+BN+ReLU+maxpool(2) per width: (batch, 1, M, T) -> (batch, widths[-1], M', T')."""
    blocks, c_in = [], 1
    for i, width in enumerate(widths):
        blocks += [conv_bn(c_in, width, 3, first_stride if i == 0 else 1), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2, ceil_mode=True)]
        c_in = width
    return nn.Sequential(*blocks)


class Network(nn.Module):
    """One of ``NETWORKS``, chosen by ``cfg.name``.

    Input: (batch, n_mels, frames) log-mel. Output: (batch, n_classes) logits.
    """

    def __init__(self, cfg: ModelConfig, n_mels: int, n_classes: int) -> None:
        super().__init__()
        if not cfg.is_network:
            raise ValueError(f"{cfg.name!r} is not a network; build it with training.baseline")
        self.name = cfg.name
        self.top_db, self.mean_norm, self.pooling = cfg.top_db, cfg.mean_norm, cfg.pooling
        self.pcen = PCEN(n_mels, cfg.pcen_frames) if cfg.pcen_frames > 0 else None
        if cfg.cepstra >= n_mels:
            raise ValueError(f"cepstra must be below n_mels ({n_mels}) to smooth anything, got {cfg.cepstra}")
        self.register_buffer("lifter", lifter_matrix(n_mels, cfg.cepstra) if cfg.cepstra else None)
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.name == "resnet":
            stages, c_in = [], cfg.stem_channels
            for i, width in enumerate(cfg.widths):
                blocks = [RelaxedFreqNorm(cfg.freq_norm)] if cfg.freq_norm > 0 else []
                blocks += [BasicBlock(c_in, width, stride=1 if i == 0 else 2)]
                blocks += [BasicBlock(width, width, 1) for _ in range(cfg.blocks_per_stage - 1)]
                stages.append(nn.Sequential(*blocks))
                c_in = width
            self.features = nn.Sequential(
                conv_bn(1, cfg.stem_channels, 3, cfg.stem_stride), nn.ReLU(inplace=True), *stages
            )
            self.head = nn.Linear(c_in * self.pooled_per_channel(n_mels), n_classes)
        elif cfg.name == "cnn":
            self.dropout = nn.Identity()  # dropout sits after the FC layer instead
            self.features = conv_blocks(cfg.widths, cfg.stem_stride)
            self.head = nn.Sequential(
                nn.Linear(cfg.widths[-1] * self.pooled_per_channel(n_mels), cfg.hidden), nn.ReLU(inplace=True),
                nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n_classes),
            )
        else:  # crnn
            self.features = conv_blocks(cfg.widths, cfg.stem_stride)
            self.rnn = nn.GRU(cfg.widths[-1], cfg.hidden, batch_first=True, bidirectional=True)
            self.head = nn.Linear(2 * cfg.hidden, n_classes)
        init_weights(self)

    def pooled_per_channel(self, n_mels: int) -> int:
        """Features the head sees per channel: the mel rows ``features`` leave ("bands"), 2 ("stats":
        mean and std) or 1 ("mean")."""
        if self.pooling != "bands":
            return 2 if self.pooling == "stats" else 1
        self.features.eval()  # leaves BatchNorm statistics untouched
        with torch.no_grad():
            rows = self.features(torch.zeros(1, 1, n_mels, 8)).shape[2]
        self.features.train()
        return rows

    @property
    def embedding_dim(self) -> int:
        """Width of ``embed``'s output: what the head reads."""
        head = self.head[0] if isinstance(self.head, nn.Sequential) else self.head
        return head.in_features

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(logmel)))  # (batch, n_classes)

    def embed(self, logmel: torch.Tensor) -> torch.Tensor:
        """(batch, n_mels, frames) log-mel -> (batch, embedding_dim) pooled features, before the head."""
        if self.top_db > 0:
            logmel = logmel - logmel.amax(dim=(1, 2), keepdim=True)  # 0 dB: the clip's loudest
            logmel = torch.clamp(logmel, min=-self.top_db)
        if self.pcen is not None:
            logmel = self.pcen(logmel)
        if self.lifter is not None:
            with torch.autocast(logmel.device.type, enabled=False):  # float32 (bfloat16: steps of 0.25 dB)
                logmel = torch.einsum("mk,bkt->bmt", self.lifter, logmel.float())  # (batch, n_mels, frames)
        if self.mean_norm:
            logmel = logmel - logmel.mean(dim=2, keepdim=True)  # (batch, n_mels, frames)
        x = self.input_norm(logmel).unsqueeze(1)  # (batch, 1, n_mels, frames)
        x = self.features(x)  # (batch, channels, n_mels', frames')
        if self.name == "crnn":
            seq = x.mean(dim=2).transpose(1, 2)  # (batch, frames', channels)
            return self.rnn(seq)[0].mean(dim=1)  # (batch, 2 * hidden)
        return pool(x, self.pooling)


def lifter_matrix(n_mels: int, cepstra: int) -> torch.Tensor:
    """(n_mels, n_mels) projection of a log-mel frame onto its first ``cepstra`` coefficients of the
    orthonormal DCT-II (the MFCCs of ``training/baseline.py``), back in mel bands: ``D.T @ diag(keep) @ D``."""
    keep = torch.from_numpy(dct(np.eye(n_mels), type=2, axis=0, norm="ortho")[:cepstra])  # (cepstra, n_mels)
    return (keep.T @ keep).float()


def pool(x: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, channels, rows, frames) conv features -> the head's (batch, features), ``ModelConfig.pooling``:
    "mean" and "meanmax" (batch, channels), "bands" (batch, channels * rows), "stats" (batch, 2 * channels)."""
    if pooling == "bands":
        return x.mean(dim=3).flatten(1)
    if pooling == "stats":
        x = x.mean(dim=2)  # (batch, channels, frames)
        return torch.cat([x.mean(dim=2), (x.var(dim=2, unbiased=False) + 1e-6).sqrt()], dim=1)
    if pooling == "meanmax":
        x = x.mean(dim=2)  # (batch, channels, frames)
        return x.amax(dim=2) + x.mean(dim=2)
    return x.mean(dim=(2, 3))


def build_model(cfg: ModelConfig, n_mels: int, n_classes: int) -> Network:
    return Network(cfg, n_mels=n_mels, n_classes=n_classes)


class Classifier(nn.Module):
    """Log-mel to class probabilities: the graph exported as the served `classifier` model.

    Input: (batch, n_mels, frames). Output: (batch, n_classes) softmax probabilities.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(logmel), dim=-1)
