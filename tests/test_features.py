"""The log-mel front end: batch consistency, tone placement, frame count, config checks."""

from __future__ import annotations

import math

import pytest
import torch

from training.features import LogMel, LogMelConfig, mel_center_frequencies, mel_filterbank

CFG = LogMelConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=40, f_min=20.0, f_max=8000.0)


def tone(freq: float, seconds: float = 0.5, rate: int = CFG.sample_rate) -> torch.Tensor:
    t = torch.arange(int(seconds * rate), dtype=torch.float32) / rate
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def test_batch_equals_stacked_items() -> None:
    front_end = LogMel(CFG)
    torch.manual_seed(0)
    batch = torch.randn(5, 8000) * 0.1
    stacked = torch.stack([front_end(x[None])[0] for x in batch])
    torch.testing.assert_close(front_end(batch), stacked, atol=1e-4, rtol=0)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0])
def test_tone_peaks_in_the_nearest_mel_band(freq: float) -> None:
    logmel = LogMel(CFG)(tone(freq)[None])[0]  # (n_mels, frames)
    centers = mel_center_frequencies(CFG)
    assert int(logmel.mean(dim=1).argmax()) == int((centers - freq).abs().argmin())


@pytest.mark.parametrize("samples", [1, 159, 160, 161, 8000, 12345])
def test_frame_count(samples: int) -> None:
    out = LogMel(CFG)(torch.zeros(2, samples))
    assert out.shape == (2, CFG.n_mels, CFG.n_frames(samples)) == (2, 40, 1 + samples // 160)


def test_silence_sits_at_the_log_floor() -> None:
    out = LogMel(CFG)(torch.zeros(1, 1600))
    assert torch.all(out == 10 * math.log10(CFG.log_floor))


def test_filterbank_covers_the_band() -> None:
    fb = mel_filterbank(CFG)
    assert fb.shape == (40, 257)
    assert torch.all(fb.sum(dim=1) > 0)  # no empty band
    assert float(fb.max()) <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_fft": 1000}, "n_fft must be a power of two"),
        ({"hop_length": 0}, "hop_length must be in"),
        ({"hop_length": 1025}, "hop_length must be in"),
        ({"f_max": 11026.0}, "f_max <= sample_rate/2"),
        ({"f_min": 11025.0}, "f_min < f_max"),
        ({"n_mels": 514}, "n_mels must be in"),
        ({"log_floor": 0.0}, "log_floor must be positive"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogMelConfig(**kwargs)
    LogMelConfig(**{k: LogMelConfig.__dataclass_fields__[k].default for k in kwargs})  # defaults ok


def test_limits_one_under_are_accepted() -> None:
    LogMelConfig(hop_length=1024, f_max=11025.0, n_mels=513)
