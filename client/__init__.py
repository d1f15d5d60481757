"""Client for the served `esc` ensemble: audio preparation, a tritonclient wrapper and a CLI."""

from client.audio import AudioError, load_audio
from client.triton import ClientError, EscClient, Prediction

__all__ = ["AudioError", "ClientError", "EscClient", "Prediction", "load_audio"]
