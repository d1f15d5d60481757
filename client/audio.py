"""Audio decoding and normalisation shared by the data pipeline and the client.

Covers: decode WAV/FLAC/OGG (libsndfile via soundfile), downmix to mono, resample to the
model rate (polyphase, scipy), crop or zero-pad to a fixed length. Does not cover: feature
extraction (that runs in the served model) or any network I/O.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample as fft_resample
from scipy.signal import resample_poly


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the fix."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file into float32 samples of shape (frames, channels) and its sample rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file; check the path")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(
            f"{path}: not a readable audio file ({err}); use WAV, FLAC or OGG/Vorbis"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples; re-export the recording")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: the audio contains NaN or infinite samples; re-export it")
    return data, int(rate)


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by averaging channels."""
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono signal (frames,) -> (round(frames * target / orig),).

    Polyphase filtering for rational ratios with small terms (44.1 -> 22.05 kHz, 48 -> 16 kHz);
    FFT resampling for awkward ones such as 11024 -> 22050 Hz, where a polyphase filter would
    need hundreds of thousands of taps.
    """
    if orig_rate <= 0 or target_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {orig_rate} Hz -> {target_rate} Hz")
    if orig_rate == target_rate:
        return wave.astype(np.float32, copy=False)
    ratio = Fraction(target_rate, orig_rate)
    if max(ratio.numerator, ratio.denominator) <= 1000:
        return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)
    return fft_resample(wave, round(len(wave) * target_rate / orig_rate)).astype(np.float32)


def fix_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop (keep the start) or zero-pad at the end to exactly n_samples."""
    if wave.shape[0] >= n_samples:
        return np.ascontiguousarray(wave[:n_samples])
    return np.pad(wave, (0, n_samples - wave.shape[0]))


def load_audio(
    path: str | Path, sample_rate: int, clip_seconds: float | None = None
) -> np.ndarray:
    """Decode, downmix, resample and optionally crop/pad a file.

    Returns float32 samples of shape (samples,), at ``sample_rate``; exactly
    ``round(clip_seconds * sample_rate)`` samples when ``clip_seconds`` is given.
    """
    data, rate = read_audio(path)
    wave = resample(to_mono(data), rate, sample_rate)
    if clip_seconds is not None:
        wave = fix_length(wave, round(clip_seconds * sample_rate))
    return wave
