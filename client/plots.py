"""PNG figures of a classification: waveform, the served log-mel, top-K bars, the timeline.

Covers: one figure per clip (``plot_clip``: 1000 x 800 px) and per long recording
(``plot_recording``: 1000 x 1000 px, adding the timeline of per-window probabilities with the
merged events outlined). Uses matplotlib's Agg renderer through ``Figure`` (no pyplot state, no
display needed). The long-recording waveform is a min/max envelope read block by block, so the
recording is never loaded whole. Does not cover: interactive plots, audio playback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from client.audio import to_mono
from client.timeline import Timeline

DPI = 100
CLIP_SIZE = (10.0, 8.0)  # inches: 1000 x 800 px
RECORDING_SIZE = (10.0, 10.0)  # 1000 x 1000 px


def envelope(path: str | Path, points: int = 2000, block: int = 65536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max of the mono signal over ``points`` equal spans of the file, read in blocks.

    Returns times (points,) in seconds at the span starts, mins (points,), maxs (points,).
    """
    with sf.SoundFile(str(path)) as f:
        rate, frames = f.samplerate, f.frames
        points = max(1, min(points, frames))
        edges = np.linspace(0, frames, points + 1).astype(np.int64)
        lo, hi = np.full(points, np.inf, np.float32), np.full(points, -np.inf, np.float32)
        pos = 0
        for data in f.blocks(block, dtype="float32", always_2d=True):
            mono = to_mono(data)
            spans = np.searchsorted(edges, pos + np.arange(len(mono)), side="right") - 1
            spans = np.minimum(spans, points - 1)
            np.minimum.at(lo, spans, mono)
            np.maximum.at(hi, spans, mono)
            pos += len(mono)
    lo[~np.isfinite(lo)], hi[~np.isfinite(hi)] = 0.0, 0.0
    return edges[:-1] / rate, lo, hi


def _top_bars(ax, top: list[tuple[str, float]], title: str) -> None:
    labels, probs = [k for k, _ in top][::-1], [p for _, p in top][::-1]
    ax.barh(labels, probs, color="tab:blue")
    for y, p in enumerate(probs):
        ax.text(min(p + 0.01, 0.9), y, f"{p:.1%}", va="center")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title(title)


def _logmel_image(ax, fig: Figure, logmel: np.ndarray, extent: list[float]) -> None:
    image = ax.imshow(logmel, origin="lower", aspect="auto", extent=extent, cmap="magma")
    fig.colorbar(image, ax=ax, label="dB")


def plot_clip(out: str | Path, waveform: np.ndarray, sample_rate: int, logmel: np.ndarray,
              top: list[tuple[str, float]], title: str) -> Path:
    """Waveform (samples,), the ensemble's log-mel (n_mels, frames) and top-K bars -> PNG."""
    fig = Figure(figsize=CLIP_SIZE, dpi=DPI, layout="constrained")
    ax_wave, ax_mel, ax_top = fig.subplots(3, 1, height_ratios=[1, 1.4, 1])
    seconds = len(waveform) / sample_rate
    ax_wave.plot(np.arange(len(waveform)) / sample_rate, waveform, lw=0.4, color="tab:gray")
    ax_wave.set(xlim=(0, seconds), title=title, ylabel="amplitude")
    _logmel_image(ax_mel, fig, logmel, [0, seconds, 0, logmel.shape[0]])
    ax_mel.set(xlabel="time (s)", ylabel="mel band", title="log-mel (served LOGMEL)")
    _top_bars(ax_top, top, f"top-{len(top)}")
    fig.savefig(out, dpi=DPI)
    return Path(out)


def plot_recording(out: str | Path, timeline: Timeline, top: list[tuple[str, float]], title: str) -> Path:
    """Waveform envelope, the served log-mel of every hop, per-window probabilities with the
    events outlined, and top-K of the mean over windows -> PNG.

    Each window is drawn over its own hop (the last one up to the end of the recording); the
    log-mel panel needs a timeline made with ``keep_logmel=True`` and is left empty otherwise.
    """
    fig = Figure(figsize=RECORDING_SIZE, dpi=DPI, layout="constrained")
    ax_wave, ax_mel, ax_time, ax_top = fig.subplots(4, 1, height_ratios=[0.8, 1.2, 1.6, 1])
    times, lo, hi = envelope(timeline.path)
    ax_wave.fill_between(times, lo, hi, color="tab:gray", lw=0)
    ax_wave.set(xlim=(0, timeline.duration), title=title, ylabel="amplitude")

    windows = timeline.windows
    if timeline.frame_seconds is not None:
        vmin = min(float(w.logmel.min()) for w in windows)
        vmax = max(float(w.logmel.max()) for w in windows)
        for w in windows:
            end = w.start + w.logmel.shape[1] * timeline.frame_seconds
            image = ax_mel.imshow(w.logmel, origin="lower", aspect="auto", cmap="magma", vmin=vmin,
                                  vmax=vmax, extent=[w.start, end, 0, w.logmel.shape[0]])
        fig.colorbar(image, ax=ax_mel, label="dB")
    ax_mel.set(xlim=(0, timeline.duration), ylabel="mel band", title="log-mel (served LOGMEL, per hop)")

    edges = [w.start for w in windows] + [windows[-1].end]
    probs = np.stack([w.probabilities for w in windows]).T  # (n_classes, n_windows)
    mesh = ax_time.pcolormesh(edges, np.arange(len(timeline.labels) + 1) - 0.5, probs,
                              vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(mesh, ax=ax_time, label="probability")
    for e in timeline.events:
        row = timeline.labels.index(e.label)
        ax_time.add_patch(Rectangle((e.start, row - 0.5), e.end - e.start, 1.0, fill=False,
                                    edgecolor="white", lw=1.5))
    ax_time.set_yticks(range(len(timeline.labels)), timeline.labels, fontsize=7)
    ax_time.set(xlim=(0, timeline.duration), xlabel="time (s)",
                title=f"windows of {timeline.window:g} s every {timeline.hop:g} s; events "
                      f"(top-1 >= {timeline.threshold:g}) outlined")
    _top_bars(ax_top, top, f"top-{len(top)} of the mean over {len(windows)} windows")
    fig.savefig(out, dpi=DPI)
    return Path(out)

