"""client.timeline: window arithmetic, event merging, block-wise reading, and the plots.

Fast tests use a fake classifier (its class is the loudest of three tones) on synthetic
recordings whose segments are known, so events must line up with them exactly. The slow tests
classify a multi-minute recording made of real ESC-10 clips against the real Triton server.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from matplotlib.image import imread

from client.audio import AudioError, load_audio
from client.plots import plot_recording
from client.timeline import Event, Window, WindowReader, classify_recording, merge_events, window_starts
from client.triton import EscClient
from tests.conftest import ESC10

RATE = 11025  # file rate; the fake model runs at 8 kHz, so every window is resampled
TONES = {"low": 300.0, "mid": 1000.0, "high": 3000.0}


class FakeClassifier:
    """Scores each class by the energy of its tone in the window; silence -> uniform."""

    sample_rate, clip_seconds, labels = 8000, 1.0, list(TONES)

    def __init__(self) -> None:
        self.batches: list[int] = []

    def infer(self, waveforms: np.ndarray, with_logmel: bool = True):
        self.batches.append(len(waveforms))
        spectrum = np.abs(np.fft.rfft(waveforms, axis=1))  # (batch, bins); 1 Hz bins for 1 s
        energy = np.stack([spectrum[:, int(f) - 5 : int(f) + 5].sum(axis=1) for f in TONES.values()], axis=1)
        scores = np.exp(np.minimum(energy / 50.0, 50.0))
        probs = (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)  # (batch, 3)
        logmel = np.log1p(spectrum[:, None, :400:10]).repeat(4, axis=1) if with_logmel else None  # (batch, 4, 40)
        return probs, logmel

    def top_k(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(probabilities)[::-1][:k]
        return [(self.labels[i], float(probabilities[i])) for i in order]


def write_segments(path, segments: list[tuple[str | None, float]], rate: int = RATE, channels: int = 1) -> None:
    """Concatenate (tone name or None for silence, seconds) segments into a WAV file."""
    parts = []
    for name, seconds in segments:
        t = np.arange(round(seconds * rate)) / rate
        parts.append(0.5 * np.sin(2 * np.pi * TONES[name] * t) if name else np.zeros_like(t))
    wave = np.concatenate(parts).astype(np.float32)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate, subtype="FLOAT")


@pytest.mark.parametrize(
    ("n", "window", "hop", "expected"),
    [
        (100, 10, 10, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]),
        (101, 10, 10, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),  # one over: one more, padded
        (99, 10, 10, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]),
        (25, 10, 5, [0, 5, 10, 15]),
        (26, 10, 5, [0, 5, 10, 15, 20]),
        (3, 10, 5, [0]),  # shorter than a window: one padded window
        (100, 10, 30, [0, 30, 60, 90]),  # hop > window: gaps
    ],
)
def test_window_starts_cover_the_recording(n: int, window: int, hop: int, expected: list[int]) -> None:
    starts = window_starts(n, window, hop)
    assert starts == expected
    assert starts[-1] + window >= n and (len(starts) == 1 or starts[-2] + window < n)


def test_window_starts_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="need window, hop and n_samples >= 1"):
        window_starts(100, 10, 0)


def _w(start: float, label: str, prob: float) -> Window:
    return Window(start, start + 1.0, [(label, prob), ("other", 1 - prob)], np.array([prob, 1 - prob]))


def test_merge_events_joins_runs_and_splits_on_label_and_threshold() -> None:
    windows = [_w(0, "dog", 0.9), _w(1, "dog", 0.7), _w(2, "dog", 0.49), _w(3, "dog", 0.5),
               _w(4, "rain", 0.8), _w(5, "rain", 0.6), _w(6, "dog", 0.95)]
    assert merge_events(windows, 0.5) == [
        Event("dog", 0.0, 2.0, pytest.approx(0.8), 2),
        Event("dog", 3.0, 4.0, 0.5, 1),  # exactly at the threshold counts
        Event("rain", 4.0, 6.0, pytest.approx(0.7), 2),
        Event("dog", 6.0, 7.0, 0.95, 1),
    ]
    assert merge_events(windows, 0.96) == []
    assert len(merge_events(windows, 0.0)) == 3  # nothing below: label changes only


def test_events_line_up_with_known_segments(tmp_path) -> None:
    path = tmp_path / "segments.wav"
    write_segments(path, [("low", 3), ("high", 2), (None, 2), ("mid", 4), ("low", 1.6)])
    fake = FakeClassifier()
    timeline = classify_recording(fake, path, batch_size=4, top_k=2, threshold=0.6)
    assert timeline.duration == pytest.approx(12.6)
    assert [(w.start, w.end) for w in timeline.windows] == [(float(k), min(k + 1.0, 12.6)) for k in range(13)]
    assert fake.batches == [4, 4, 4, 1]
    assert [(e.label, e.start, e.end, e.windows) for e in timeline.events] == [
        ("low", 0.0, 3.0, 3), ("high", 3.0, 5.0, 2), ("mid", 7.0, 11.0, 4), ("low", 11.0, 12.6, 2)]
    assert all(e.confidence > 0.99 for e in timeline.events)
    # The silent windows are uniform, hence below the threshold and in no event.
    assert timeline.windows[5].top[0][1] == pytest.approx(1 / 3, abs=1e-3)
    assert timeline.top(3)[0][0] == "low" and len(timeline.to_dict()["windows"]) == 13


def test_each_window_equals_the_same_stretch_classified_alone(tmp_path) -> None:
    """Overlapping windows of a stereo file = the stretch cut out, saved and loaded alone."""
    path = tmp_path / "stereo.wav"
    write_segments(path, [("mid", 1.3), ("high", 2.2), ("low", 0.9)], channels=2)
    fake = FakeClassifier()
    timeline = classify_recording(fake, path, hop=0.35, batch_size=3)
    data, rate = sf.read(path, dtype="float32")
    assert len(timeline.windows) == 1 + int(np.ceil((4.4 - 1.0) / 0.35))
    for w in timeline.windows:
        alone = tmp_path / "alone.wav"
        first = round(w.start * rate)
        sf.write(alone, data[first : first + rate], rate, subtype="FLOAT")
        probs, _ = fake.infer(load_audio(alone, fake.sample_rate, fake.clip_seconds)[None])
        np.testing.assert_allclose(w.probabilities, probs[0], atol=1e-6)


def test_gaps_between_windows_are_skipped(tmp_path) -> None:
    path = tmp_path / "gaps.wav"
    write_segments(path, [("low", 1), ("high", 1), ("mid", 1), ("high", 1), ("low", 1)])
    timeline = classify_recording(FakeClassifier(), path, hop=2.0)
    assert [(w.start, w.top[0][0]) for w in timeline.windows] == [(0.0, "low"), (2.0, "mid"), (4.0, "low")]


def test_memory_stays_bounded_on_a_long_recording(tmp_path) -> None:
    """Three minutes (8 MB of samples) are classified holding about one batch of windows."""
    path = tmp_path / "long.wav"
    write_segments(path, [(name, 20.0) for name in ["low", "mid", "high"] * 3])
    file_bytes = 180 * RATE * 4
    tracemalloc.start()
    try:
        timeline = classify_recording(FakeClassifier(), path, batch_size=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(timeline.windows) == 180 and len(timeline.events) == 9
    assert peak < file_bytes / 4, f"peak {peak / 1e6:.1f} MB for a {file_bytes / 1e6:.1f} MB recording"


def test_unreadable_and_unsupported_recordings_name_the_fix(tmp_path) -> None:
    fake = FakeClassifier()
    with pytest.raises(AudioError, match="no such file; check the path"):
        classify_recording(fake, tmp_path / "missing.wav")
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file.*WAV, FLAC or OGG"):
        classify_recording(fake, tmp_path / "notes.wav")
    slow = tmp_path / "slow.wav"
    sf.write(slow, np.zeros(2000, np.float32), 999)  # one under the lowest supported rate
    with pytest.raises(AudioError, match="unsupported sample-rate conversion 999 Hz -> 8000 Hz.*sox"):
        classify_recording(fake, slow)
    sf.write(slow, np.zeros(2000, np.float32), 1000)
    assert len(classify_recording(fake, slow).windows) == 2
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.r_[np.zeros(20000), np.nan, np.zeros(10)].astype(np.float32), 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite samples in 2.0-3.0 s"):
        classify_recording(fake, nan)
    with pytest.raises(ValueError, match="window and hop must be positive"):
        WindowReader(slow, 8000, 1.0, 0.0)


def _png(path) -> np.ndarray:
    image = imread(path)
    assert image.std() > 0, f"{path} is blank"
    return image


def test_recording_plot_has_its_size_and_content(tmp_path) -> None:
    path = tmp_path / "segments.wav"
    write_segments(path, [("low", 2), ("high", 2.5), ("mid", 2)])
    timeline = classify_recording(FakeClassifier(), path, hop=0.5, keep_logmel=True)
    # Each window keeps the log-mel of its own hop; the last keeps all it has up to the end.
    assert [w.logmel.shape[1] for w in timeline.windows[:2]] == [20, 20] and timeline.windows[-1].logmel.shape[1] == 40
    out = plot_recording(tmp_path / "timeline.png", timeline, timeline.top(3), "segments.wav")
    assert _png(out).shape[:2] == (1000, 1000)


# -- real server -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[str, list[Path]]:
    """Two minutes: 3 clips (>= 5 s) of each of 8 ESC-10 classes, each cut to exactly 5 s, back to back
    (44.1 kHz float WAV); and each cut clip as a file of its own."""
    folders = sorted(p for p in (ESC10 / "audio").iterdir() if p.is_dir())[:8]
    tmp = tmp_path_factory.mktemp("long")
    path, clips = tmp / "esc10-2min.wav", []
    with sf.SoundFile(path, "w", 44100, 1, subtype="FLOAT") as out:
        for folder in folders:
            long_enough = [c for c in sorted(folder.glob("*.ogg")) if sf.info(c).frames >= 5 * 44100]
            for clip in long_enough[:3]:
                wave, rate = sf.read(clip, dtype="float32")
                clips.append(tmp / f"{folder.name[:3]}-{clip.stem}.wav")
                sf.write(clips[-1], wave[: 5 * rate], rate, subtype="FLOAT")
                out.write(wave[: 5 * rate])
    return str(path), clips


@pytest.mark.slow
def test_real_recording_windows_equal_each_clip_classified_alone(triton, recording) -> None:
    path, clips = recording
    with EscClient(triton.grpc_url, "grpc") as client:
        timeline = classify_recording(client, path, batch_size=8, top_k=3, threshold=0.3)
        alone = client.classify_many(clips, top_k=3)
        overlapping = classify_recording(client, path, hop=2.5, batch_size=16)
    assert timeline.duration == pytest.approx(120.0) and len(timeline.windows) == 24
    assert [(w.start, w.end) for w in timeline.windows] == [(5.0 * k, 5.0 * k + 5) for k in range(24)]
    for w, result in zip(timeline.windows, alone):  # window k is exactly clip k
        np.testing.assert_allclose(w.probabilities, result.prediction.probabilities, atol=1e-5)
    assert timeline.events == merge_events(timeline.windows, 0.3)
    for e in timeline.events:  # events start and end on clip boundaries
        assert e.start % 5 == 0 and e.end % 5 == 0 and e.windows == (e.end - e.start) / 5
    assert len(overlapping.windows) == 47 and overlapping.windows[-1].end == 120.0
    np.testing.assert_allclose(overlapping.windows[2].probabilities, timeline.windows[1].probabilities, atol=1e-5)
