"""PNG pictures of one clip for the upload page: the waveform sent and the served log-mel.

Covers: drawing on a private Agg canvas (no pyplot, so request threads share no global figure
state) and ``data:`` URIs for ``<img src>``. Does not cover: anything from training; the
log-mel comes from the server (the ensemble's LOGMEL output).
"""

from __future__ import annotations

import base64
import io

import numpy as np

DPI = 100
WAVEFORM_FIGSIZE = (9.0, 2.2)  # inches: 900 x 220 pixels
LOGMEL_FIGSIZE = (9.0, 3.2)  # inches: 900 x 320 pixels
TOP_DB = 80.0  # colour range of the log-mel below its peak (zero padding sits at the dB floor)


def _figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def waveform_png(wave: np.ndarray, sample_rate: int) -> bytes:
    """(samples,) float samples at ``sample_rate`` -> PNG of amplitude over time."""
    fig = _figure(WAVEFORM_FIGSIZE)
    ax = fig.subplots()
    ax.plot(np.arange(wave.size) / sample_rate, wave, linewidth=0.4, color="#1f5f99")
    peak = max(float(np.abs(wave).max(initial=0.0)), 1e-6)
    ax.set_xlim(0, wave.size / sample_rate)
    ax.set_ylim(-1.05 * peak, 1.05 * peak)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    return _png(fig)


def logmel_png(logmel: np.ndarray, seconds: float) -> bytes:
    """(n_mels, frames) log-mel in dB spanning ``seconds`` -> PNG with a dB colour bar covering
    the TOP_DB below the peak."""
    fig = _figure(LOGMEL_FIGSIZE)
    ax = fig.subplots()
    peak = float(logmel.max())
    image = ax.imshow(logmel, origin="lower", aspect="auto", cmap="magma", vmin=peak - TOP_DB,
                      vmax=peak, extent=(0.0, seconds, 0, logmel.shape[0]))
    fig.colorbar(image, ax=ax, label="dB")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    return _png(fig)


def data_uri(data: bytes, mimetype: str = "image/png") -> str:
    return f"data:{mimetype};base64,{base64.b64encode(data).decode('ascii')}"
