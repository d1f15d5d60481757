"""Client for the served `esc` ensemble: audio preparation, a tritonclient wrapper (``EscClient``),
long recordings in windows (``client.timeline``), plots (``client.plots``) and the CLI.

The pipeline's stages read audio through ``client.audio`` alone, so tritonclient is imported only
when a name that needs it is first used (a training machine may not have it)."""

from __future__ import annotations

import importlib
from typing import Any

from client.audio import AudioError, load_audio

_LAZY = {"Event": "client.timeline", "Timeline": "client.timeline", "classify_recording": "client.timeline",
         **{name: "client.triton" for name in ("ClientError", "EscClient", "FileResult", "Prediction",
                                               "RetryPolicy", "ServerUnavailable")}}

__all__ = ["AudioError", "ClientError", "EscClient", "Event", "FileResult", "Prediction", "RetryPolicy",
           "ServerUnavailable", "Timeline", "classify_recording", "load_audio"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
