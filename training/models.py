"""Classifiers over log-mel spectrograms.

Every model takes (batch, n_mels, frames) log-mel in dB, of any number of frames, and returns
(batch, n_classes) logits. Input normalisation is a BatchNorm over mel bands inside the model,
so exported graphs need no separate statistics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet"
    stem_channels: int = 32
    stem_stride: int = 1
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks_per_stage: int = 1
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise ValueError(f"model name {self.name!r} is not one of {sorted(MODELS)}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if self.stem_channels < 1 or self.stem_stride not in (1, 2):
            raise ValueError(
                f"need stem_channels >= 1 and stem_stride in (1, 2), "
                f"got {self.stem_channels}, {self.stem_stride}"
            )
        if self.blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {self.blocks_per_stage}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


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


class ResNet(nn.Module):
    """Stem conv+BN, residual stages of increasing width, global average pooling, linear head.

    Input: (batch, n_mels, frames) log-mel. Output: (batch, n_classes) logits.
    """

    def __init__(self, cfg: ModelConfig, n_mels: int, n_classes: int) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.stem = nn.Sequential(
            conv_bn(1, cfg.stem_channels, 3, cfg.stem_stride), nn.ReLU(inplace=True)
        )
        stages, c_in = [], cfg.stem_channels
        for i, width in enumerate(cfg.widths):
            blocks = [BasicBlock(c_in, width, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(width, width, 1) for _ in range(cfg.blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(c_in, n_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                nn.init.zeros_(m.bias)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(logmel).unsqueeze(1)  # (batch, 1, n_mels, frames)
        x = self.stages(self.stem(x))  # (batch, widths[-1], n_mels / s, frames / s)
        x = self.pool(x).flatten(1)  # (batch, widths[-1])
        return self.head(self.dropout(x))  # (batch, n_classes)


MODELS = {"resnet": ResNet}


def build_model(cfg: ModelConfig, n_mels: int, n_classes: int) -> nn.Module:
    return MODELS[cfg.name](cfg, n_mels=n_mels, n_classes=n_classes)


class Classifier(nn.Module):
    """Log-mel to class probabilities: the graph exported as the served `classifier` model.

    Input: (batch, n_mels, frames). Output: (batch, n_classes) softmax probabilities.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(logmel), dim=-1)
