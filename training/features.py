"""The one log-mel front end: feature precompute, training, ONNX export and serving use it.

The STFT is a strided Conv1d with fixed windowed-DFT kernels rather than ``torch.stft``, so the
exported graph holds only Conv/Mul/MatMul/Log and runs on every ONNX backend (onnxruntime CPU and
CUDA, TensorRT). Frames are centred with zero padding (``n_fft // 2`` each side), so any input of
at least one sample is valid and ``frames = 1 + samples // hop_length``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    f_min: float = 20.0
    f_max: float = 11025.0
    log_floor: float = 1e-10

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two >= 16, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft={self.n_fft}], got {self.hop_length}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate/2={self.sample_rate / 2}, "
                f"got f_min={self.f_min}, f_max={self.f_max}"
            )
        if self.n_mels < 1 or self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"n_mels must be in [1, n_fft/2+1], got {self.n_mels}")
        if self.log_floor <= 0:
            raise ValueError(f"log_floor must be positive, got {self.log_floor}")

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_points(cfg: LogMelConfig) -> torch.Tensor:
    """HTK mel scale: n_mels + 2 band edges in Hz, float64, shape (n_mels + 2,)."""
    lo, hi = hz_to_mel(torch.tensor([cfg.f_min, cfg.f_max], dtype=torch.float64))
    return mel_to_hz(torch.linspace(float(lo), float(hi), cfg.n_mels + 2, dtype=torch.float64))


def mel_center_frequencies(cfg: LogMelConfig) -> torch.Tensor:
    """Centre frequency in Hz of each mel band, shape (n_mels,)."""
    return mel_points(cfg)[1:-1]


def mel_filterbank(cfg: LogMelConfig) -> torch.Tensor:
    """Triangular HTK mel filters, shape (n_mels, n_fft // 2 + 1)."""
    freqs = torch.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_points(cfg)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (center - lower)
    falling = (upper - freqs[None, :]) / (upper - center)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def dft_kernels(n_fft: int) -> torch.Tensor:
    """Hann-windowed real and imaginary DFT kernels, shape (2 * (n_fft // 2 + 1), 1, n_fft)."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    phase = 2 * math.pi * k[:, None] * n[None, :] / n_fft
    kernels = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window
    return kernels[:, None, :].float()


class LogMel(nn.Module):
    """Waveform to log-mel power spectrogram in dB.

    Input: (batch, samples) float32 mono at ``cfg.sample_rate``.
    Output: (batch, n_mels, frames) float32 with ``frames = 1 + samples // hop_length``.
    """

    def __init__(self, cfg: LogMelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("kernels", dft_kernels(cfg.n_fft), persistent=False)
        self.register_buffer("filterbank", mel_filterbank(cfg), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        pad = self.cfg.n_fft // 2
        x = F.pad(waveform.unsqueeze(1), (pad, pad))  # (batch, 1, samples + n_fft)
        spec = F.conv1d(x, self.kernels, stride=self.cfg.hop_length)  # (batch, 2 * n_freq, frames)
        real, imag = spec.chunk(2, dim=1)
        power = real * real + imag * imag  # (batch, n_freq, frames)
        mel = torch.matmul(self.filterbank, power)  # (batch, n_mels, frames)
        return 10.0 * torch.log10(torch.clamp(mel, min=self.cfg.log_floor))
