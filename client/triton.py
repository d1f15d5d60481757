"""Classify audio with the `esc` ensemble on a Triton server, over gRPC or HTTP.

Covers: connecting (with errors that name the cause and the fix), reading the model's sample
rate, clip length and labels from its config, preparing audio exactly as in training
(``client.audio``), one inference per batch of equal-length waveforms and top-K results.
Depends on tritonclient and numpy only, nothing from training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from client.audio import load_audio

PROTOCOLS = {"grpc": grpcclient, "http": httpclient}
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}


class ClientError(RuntimeError):
    """The server cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Prediction:
    """Top-K of one clip: ``top`` is [(label, probability)] with the highest first."""

    top: list[tuple[str, float]]
    probabilities: np.ndarray = field(repr=False)  # (n_classes,)
    logmel: np.ndarray | None = field(default=None, repr=False)  # (n_mels, frames)

    def to_dict(self) -> dict:
        return {"top_k": [{"label": k, "probability": round(p, 6)} for k, p in self.top]}


def default_url(protocol: str) -> str:
    return f"127.0.0.1:{DEFAULT_PORTS[protocol]}"


class EscClient:
    """One connection to the ensemble; the same API for ``protocol="grpc"`` and ``"http"``."""

    def __init__(self, url: str | None = None, protocol: str = "grpc", model: str = "esc",
                 timeout: float = 30.0) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
        self.protocol, self.model, self.timeout = protocol, model, timeout
        self.url = url or default_url(protocol)
        self._lib = PROTOCOLS[protocol]
        kwargs = {"network_timeout": timeout} if protocol == "http" else {}
        self._client = self._lib.InferenceServerClient(self.url, **kwargs)
        self._check_ready()
        params = self._model_parameters()
        self.sample_rate = int(params["sample_rate"])
        self.clip_seconds = float(params["clip_seconds"])
        self.labels: list[str] = json.loads(params["labels"])

    def _check_ready(self) -> None:
        try:
            live = self._client.is_server_live()
        except (InferenceServerException, OSError) as err:
            raise ClientError(
                f"cannot reach Triton at {self.url} over {self.protocol} ({err}); start it with "
                f"`make serve`, or pass --url HOST:PORT (gRPC 8001, HTTP 8000 by default)"
            ) from err
        if not live:
            raise ClientError(f"Triton at {self.url} is not live; check the server log")
        if not self._client.is_model_ready(self.model):
            raise ClientError(
                f"model {self.model!r} is not ready on {self.url}; check that the server's model "
                f"repository holds it (`dvc repro export`) and read the server log"
            )

    def _model_parameters(self) -> dict[str, str]:
        if self.protocol == "grpc":
            config = self._client.get_model_config(self.model, as_json=True)["config"]
        else:
            config = self._client.get_model_config(self.model)
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        missing = {"sample_rate", "clip_seconds", "labels"} - params.keys()
        if missing:
            raise ClientError(
                f"model {self.model!r} config lacks parameters {sorted(missing)}; it was not built "
                f"by this project's export stage"
            )
        return params

    def infer(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch, samples) float32 at ``sample_rate`` -> probabilities (batch, n_classes) and
        log-mel (batch, n_mels, frames)."""
        waveforms = np.ascontiguousarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2:
            raise ValueError(f"waveforms must be (batch, samples), got shape {waveforms.shape}")
        inp = self._lib.InferInput("WAVEFORM", list(waveforms.shape), "FP32")
        inp.set_data_from_numpy(waveforms)
        outputs = [self._lib.InferRequestedOutput(n) for n in ("PROBABILITIES", "LOGMEL")]
        kwargs = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        try:
            result = self._client.infer(self.model, [inp], outputs=outputs, **kwargs)
        except InferenceServerException as err:
            raise ClientError(f"inference failed on {self.url}: {err.message()}") from err
        return result.as_numpy("PROBABILITIES"), result.as_numpy("LOGMEL")

    def top_k(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(probabilities)[::-1][:k]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def classify_waveform(self, waveform: np.ndarray, top_k: int = 5) -> Prediction:
        """Classify one (samples,) waveform already at ``sample_rate``."""
        probs, logmel = self.infer(waveform[None, :])
        return Prediction(self.top_k(probs[0], top_k), probs[0], logmel[0])

    def load(self, path: str | Path) -> np.ndarray:
        """Decode a file and prepare it as in training: (samples,) at the model's rate and length."""
        return load_audio(path, self.sample_rate, self.clip_seconds)

    def classify_file(self, path: str | Path, top_k: int = 5) -> Prediction:
        return self.classify_waveform(self.load(path), top_k)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EscClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
