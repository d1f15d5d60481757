"""Classify a long recording in sliding windows: a timeline of top-K per window, merged events.

Covers: window arithmetic (window = the model's clip length, configurable hop; the last window
reaches the end of the recording and is zero-padded, as training pads short clips), reading the
file block by block with ``soundfile.SoundFile`` (only the current window is held; a gap when
hop > window is skipped with a seek), resampling each window on its own (so a window is
classified exactly as the same stretch cut out and sent alone: no block-boundary effects),
batches of windows per request, and merging consecutive windows that share a top-1 class at or
above a threshold into events. Memory is bounded by ``batch_size`` x window, whatever the
recording's length (plus, with ``keep_logmel``, the log-mel of each hop for plotting).
Does not cover: plotting (``client.plots``), overlap-add smoothing of probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from client.audio import AudioError, fix_length, resample, to_mono
from client.triton import check_conversion


class Classifier(Protocol):
    """What the timeline needs of a client (``client.triton.EscClient`` has it)."""

    sample_rate: int
    clip_seconds: float
    labels: list[str]

    def infer(self, waveforms: np.ndarray, with_logmel: bool = True) -> tuple[np.ndarray, np.ndarray | None]: ...

    def top_k(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]: ...


@dataclass(frozen=True)
class Window:
    """One window's result; times in seconds, ``end`` clipped to the recording's end."""

    start: float
    end: float
    top: list[tuple[str, float]]
    probabilities: np.ndarray = field(repr=False)  # (n_classes,)
    logmel: np.ndarray | None = field(default=None, repr=False)  # (n_mels, frames of its hop)

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3),
                "top_k": [{"label": k, "probability": round(p, 6)} for k, p in self.top]}


@dataclass(frozen=True)
class Event:
    """Consecutive windows with the same top-1 ``label`` at or above the threshold."""

    label: str
    start: float
    end: float
    confidence: float  # mean top-1 probability of its windows
    windows: int

    def to_dict(self) -> dict:
        return {"label": self.label, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 6), "windows": self.windows}


@dataclass(frozen=True)
class Timeline:
    path: str
    duration: float  # seconds
    window: float  # seconds
    hop: float  # seconds
    threshold: float
    labels: list[str]
    windows: list[Window]
    events: list[Event]
    frame_seconds: float | None = None  # seconds per log-mel column, when windows keep theirs

    def mean_probabilities(self) -> np.ndarray:
        """(n_classes,): the mean over windows, a summary of the whole recording."""
        return np.mean([w.probabilities for w in self.windows], axis=0)

    def top(self, k: int) -> list[tuple[str, float]]:
        mean = self.mean_probabilities()
        return [(self.labels[i], float(mean[i])) for i in np.argsort(mean)[::-1][:k]]

    def to_dict(self) -> dict:
        return {"duration": round(self.duration, 3), "window": self.window, "hop": self.hop,
                "threshold": self.threshold, "windows": [w.to_dict() for w in self.windows],
                "events": [e.to_dict() for e in self.events]}


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start samples of the windows over ``n_samples``: 0, hop, 2*hop, ... until one reaches the end.

    ``1 + ceil(max(n_samples - window, 0) / hop)`` windows; the last may run past the end.
    """
    if window < 1 or hop < 1 or n_samples < 1:
        raise ValueError(f"need window, hop and n_samples >= 1; got {window}, {hop}, {n_samples}")
    return [k * hop for k in range(1 + ceil(max(n_samples - window, 0) / hop))]


def merge_events(windows: Iterable[Window], threshold: float) -> list[Event]:
    """Merge runs of consecutive windows whose top-1 label is the same and >= ``threshold``.

    A window below the threshold ends the current event. With hop < window, events span from
    their first window's start to their last window's end, so neighbours can overlap.
    """
    events: list[Event] = []
    run: list[Window] = []

    def close() -> None:
        if run:
            events.append(Event(run[0].top[0][0], run[0].start, run[-1].end,
                                float(np.mean([w.top[0][1] for w in run])), len(run)))
            run.clear()

    for w in windows:
        label, prob = w.top[0]
        if prob < threshold:
            close()
            continue
        if run and run[-1].top[0][0] != label:
            close()
        run.append(w)
    close()
    return events


class WindowReader:
    """The windows of an audio file at ``sample_rate``, read block by block.

    ``starts`` are in samples at ``sample_rate``; iterating yields (window_samples,) float32
    arrays, each resampled on its own and zero-padded past the end of the file.
    """

    def __init__(self, path: str | Path, sample_rate: int, window: float, hop: float) -> None:
        if window <= 0 or hop <= 0:
            raise ValueError(f"window and hop must be positive seconds, got {window}, {hop}")
        self.path, self.sample_rate = Path(path), sample_rate
        if not self.path.is_file():
            raise AudioError(f"{self.path}: no such file; check the path")
        try:
            info = sf.info(str(self.path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            raise AudioError(f"{self.path}: not a readable audio file ({err}); use WAV, FLAC or OGG/Vorbis") from err
        if info.frames <= 0:
            raise AudioError(f"{self.path}: the file holds no samples; re-export the recording")
        check_conversion(info.samplerate, sample_rate, self.path)
        self.rate, self.frames = info.samplerate, info.frames
        self.duration = info.frames / info.samplerate
        self.window_samples = round(window * sample_rate)
        self.hop_samples = round(hop * sample_rate)
        n_samples = max(1, round(self.duration * sample_rate))
        self.starts = window_starts(n_samples, self.window_samples, self.hop_samples)

    def __len__(self) -> int:
        return len(self.starts)

    def _frame(self, sample: int) -> int:
        """A sample index at ``sample_rate`` -> the file's frame index."""
        return round(sample * self.rate / self.sample_rate)

    def __iter__(self) -> Iterator[np.ndarray]:
        span = self._frame(self.window_samples)  # window length in file frames
        with sf.SoundFile(str(self.path)) as f:
            buf, buf_start = np.zeros((0, f.channels), np.float32), 0  # (frames, channels)
            for start in self.starts:
                first = self._frame(start)
                if first >= buf_start + len(buf):  # no overlap with what was read: skip ahead
                    f.seek(first)
                    buf = buf[:0]
                else:
                    buf = buf[first - buf_start :]
                buf_start = first
                if len(buf) < span:
                    buf = np.concatenate([buf, f.read(span - len(buf), dtype="float32", always_2d=True)])
                if not np.isfinite(buf).all():
                    raise AudioError(
                        f"{self.path}: NaN or infinite samples in {start / self.sample_rate:.1f}-"
                        f"{(start + self.window_samples) / self.sample_rate:.1f} s; re-export the recording"
                    )
                wave = resample(to_mono(buf[:span]), self.rate, self.sample_rate)
                yield fix_length(wave, self.window_samples)  # (window_samples,)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def classify_recording(client: Classifier, path: str | Path, hop: float | None = None,
                       batch_size: int = 8, top_k: int = 3, threshold: float = 0.5,
                       keep_logmel: bool = False,
                       on_batch: Callable[[int, int], None] | None = None) -> Timeline:
    """Slide a window of ``client.clip_seconds`` over the file (every ``hop`` seconds, default
    the window: no overlap), classify ``batch_size`` windows per request, merge events.

    ``keep_logmel`` keeps each window's served log-mel over its own hop (for plots).
    ``on_batch(windows done, windows total)`` reports progress.
    """
    if batch_size < 1 or top_k < 1 or not 0 <= threshold <= 1:
        raise ValueError(f"need batch_size >= 1, top_k >= 1, 0 <= threshold <= 1; got "
                         f"{batch_size}, {top_k}, {threshold}")
    window = client.clip_seconds
    hop = window if hop is None else hop
    reader = WindowReader(path, client.sample_rate, window, hop)
    windows: list[Window] = []
    frame_seconds = None
    for batch in _batches(zip(reader.starts, reader), batch_size):
        waves = np.stack([wave for _, wave in batch])  # (batch, window_samples)
        probs, logmel = client.infer(waves, with_logmel=keep_logmel)
        for j, (start, _) in enumerate(batch):
            t0 = start / client.sample_rate
            t1 = min(t0 + window, reader.duration)
            own_logmel = None
            if logmel is not None:  # the frames of this window's own hop (all of it for the last)
                frame_seconds = window / logmel.shape[2]
                own = t1 if len(windows) == len(reader) - 1 else min(t0 + hop, t1)
                own_logmel = logmel[j][:, : ceil(logmel.shape[2] * (own - t0) / window)].copy()
            windows.append(Window(t0, t1, client.top_k(probs[j], top_k), probs[j], own_logmel))
        if on_batch is not None:
            on_batch(len(windows), len(reader))
    return Timeline(str(path), reader.duration, window, hop, threshold, list(client.labels),
                    windows, merge_events(windows, threshold), frame_seconds)
