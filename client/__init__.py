"""Client for the served `esc` ensemble: audio preparation, a tritonclient wrapper (``EscClient``),
long recordings in windows (``client.timeline``), plots (``client.plots``) and the CLI."""

from client.audio import AudioError, load_audio
from client.timeline import Event, Timeline, classify_recording
from client.triton import ClientError, EscClient, FileResult, Prediction, RetryPolicy, ServerUnavailable

__all__ = ["AudioError", "ClientError", "EscClient", "Event", "FileResult", "Prediction", "RetryPolicy",
           "ServerUnavailable", "Timeline", "classify_recording", "load_audio"]
