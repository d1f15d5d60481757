"""client.audio: decoding errors, downmix, resampling (simple and awkward ratios), length."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from client.audio import AudioError, fix_length, load_audio, resample


@pytest.mark.parametrize(("orig", "target"), [(44100, 22050), (48000, 16000), (11024, 22050), (8000, 22050)])
def test_resample_keeps_a_tone_and_the_duration(orig: int, target: int) -> None:
    t = np.arange(orig) / orig  # one second
    out = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), orig, target)
    assert out.dtype == np.float32 and out.shape == (target,)
    expected = np.sin(2 * np.pi * 440 * np.arange(target) / target)
    assert np.abs(out - expected)[100:-100].max() < 1e-2  # edges carry filter transients


def test_fix_length_crops_and_pads() -> None:
    x = np.arange(5, dtype=np.float32)
    assert fix_length(x, 3).tolist() == [0, 1, 2]
    assert fix_length(x, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]


def test_stereo_is_downmixed_and_resampled(tmp_path) -> None:
    path = tmp_path / "stereo.flac"
    left = np.full(4800, 0.5, np.float32)
    sf.write(path, np.stack([left, -left / 5], axis=1), 48000)
    wave = load_audio(path, 16000, clip_seconds=0.5)
    assert wave.shape == (8000,)
    assert wave[100:1500] == pytest.approx(0.2, abs=1e-3)  # (0.5 - 0.1) / 2
    assert np.all(wave[1700:] == 0)  # padded


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a readable audio file"), (b"RIFF....WAVEfmt garbage", "not a readable audio file")],
)
def test_unreadable_files_name_the_file_and_the_fix(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=f"clip.wav: {message}.*WAV, FLAC or OGG"):
        load_audio(path, 16000)


def test_missing_empty_and_nan_audio(tmp_path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav", 16000)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0,), np.float32), 16000)
    with pytest.raises(AudioError, match="holds no samples"):
        load_audio(empty, 16000)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(nan, 16000)
    with pytest.raises(AudioError, match="sample rates must be positive"):
        resample(np.zeros(4, np.float32), 0, 16000)


def test_the_pipeline_stages_need_no_tritonclient() -> None:
    """Training machines (a lent GPU) may lack tritonclient: the stages import client.audio only;
    the client's serving names load it when first used."""
    code = """
import sys
sys.modules["tritonclient"] = None  # importing it fails, as where it is not installed
import pipelines.fetch, pipelines.features, pipelines.train, benchmarks.training
import client
assert client.load_audio is client.audio.load_audio
try:
    client.EscClient
except ImportError:
    print("lazy")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "lazy"
