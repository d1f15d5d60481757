"""Classify audio with the `esc` ensemble on a Triton server, over gRPC or HTTP.

Covers: connecting (with errors that name the cause and the fix), reading the model's sample
rate, clip length, labels, batch limit and longest accepted input from the server's configs,
preparing audio exactly as in training (``client.audio``), batched inference, top-K results,
many files at once (async gRPC via ``tritonclient.grpc.aio``, or a bounded thread pool of
per-thread HTTP clients; results in input order, one bad file never stops the others),
timeouts, bounded retries with exponential backoff while the server is unavailable, and an
optional system-shared-memory path for a server on the same host (``client.shm``).
Does not cover: long recordings (``client.timeline``), plotting (``client.plots``).
Depends on tritonclient, numpy and soundfile only, nothing from training.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from client.audio import AudioError, load_audio, resample

log = logging.getLogger(__name__)
T = TypeVar("T")

PROTOCOLS = {"grpc": grpcclient, "http": httpclient}
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
WAVEFORM, PROBABILITIES, LOGMEL = "WAVEFORM", "PROBABILITIES", "LOGMEL"
# Always request both outputs: asking the ensemble for PROBABILITIES alone fails in Triton 2.51
# ("unexpected deadlock, at least one output is not set"); without with_logmel the client drops
# LOGMEL (55 kB per 5 s clip, against 441 kB of waveform sent).
OUTPUTS = [PROBABILITIES, LOGMEL]
# Source rates the client converts from; outside this range a file is broken or exotic.
MIN_RATE, MAX_RATE = 1_000, 768_000


class ClientError(RuntimeError):
    """The server cannot be used or refused a request; the message says why and what to do."""


class ServerUnavailable(ClientError):
    """The server could not be reached, even after retrying."""


class InputTooLong(ClientError):
    """A waveform longer than the server accepts; refused before sending."""


@dataclass(frozen=True)
class Prediction:
    """Top-K of one clip: ``top`` is [(label, probability)] with the highest first."""

    top: list[tuple[str, float]]
    probabilities: np.ndarray = field(repr=False)  # (n_classes,)
    logmel: np.ndarray | None = field(default=None, repr=False)  # (n_mels, frames)

    def to_dict(self) -> dict:
        return {"top_k": [{"label": k, "probability": round(p, 6)} for k, p in self.top]}


@dataclass(frozen=True)
class FileResult:
    """The outcome for one input of ``classify_many``: a prediction or the reason it has none."""

    path: str
    prediction: Prediction | None
    error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``attempts`` tries; waits base, 2*base, 4*base, ... (at most ``max_delay``) between."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(
                f"need attempts >= 1 and 0 <= base_delay <= max_delay; got {self.attempts}, "
                f"{self.base_delay}, {self.max_delay}"
            )

    def delays(self) -> list[float]:
        """The waits before retry 1, 2, ...: ``attempts - 1`` values."""
        return [min(self.base_delay * 2**i, self.max_delay) for i in range(self.attempts - 1)]


def is_unavailable(err: BaseException) -> bool:
    """True for the failures worth retrying: the server is down, starting or overloaded."""
    if isinstance(err, InferenceServerException):
        return err.status() in ("StatusCode.UNAVAILABLE", "503")
    return isinstance(err, ConnectionError)  # HTTP: refused, reset, aborted


def call_with_retries(call: Callable[[], T], policy: RetryPolicy, what: str,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call``; retry it after each unavailable error while the policy allows, else raise."""
    for attempt, delay in enumerate([*policy.delays(), None], 1):
        try:
            return call()
        except Exception as err:
            if delay is None or not is_unavailable(err):
                raise
            log.warning("%s: server unavailable (%s); retry %d/%d in %.2f s",
                        what, _describe(err), attempt, policy.attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


async def acall_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str) -> T:
    """``call_with_retries`` for coroutines (``asyncio.sleep`` between tries)."""
    for attempt, delay in enumerate([*policy.delays(), None], 1):
        try:
            return await call()
        except Exception as err:
            if delay is None or not is_unavailable(err):
                raise
            log.warning("%s: server unavailable (%s); retry %d/%d in %.2f s",
                        what, _describe(err), attempt, policy.attempts - 1, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def _describe(err: BaseException) -> str:
    if isinstance(err, InferenceServerException):
        return f"{err.status()}: {err.message()}"
    return f"{type(err).__name__}: {err}"


def check_conversion(orig_rate: int, target_rate: int, source: str | Path) -> None:
    """Refuse sample-rate conversions this client does not do (a broken or exotic header)."""
    if not MIN_RATE <= orig_rate <= MAX_RATE:
        raise AudioError(
            f"{source}: unsupported sample-rate conversion {orig_rate} Hz -> {target_rate} Hz; "
            f"this client converts from {MIN_RATE} to {MAX_RATE} Hz: resample the file first "
            f"(e.g. `sox in.wav -r {target_rate} out.wav`)"
        )


def default_url(protocol: str) -> str:
    return f"127.0.0.1:{DEFAULT_PORTS[protocol]}"


class EscClient:
    """One connection to the ensemble; the same API for ``protocol="grpc"`` and ``"http"``.

    ``timeout`` bounds each request (seconds); ``retry`` governs retries while the server is
    unavailable; ``shared_memory=True`` sends inputs and receives outputs through system shared
    memory regions (the server must run on this host; see ``client.shm``).
    """

    def __init__(self, url: str | None = None, protocol: str = "grpc", model: str = "esc",
                 timeout: float = 30.0, *, retry: RetryPolicy = RetryPolicy(),
                 shared_memory: bool = False) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.protocol, self.model, self.timeout, self.retry = protocol, model, timeout, retry
        self.url = url or default_url(protocol)
        self._lib = PROTOCOLS[protocol]
        self._client = self._new_client()
        self._local = threading.local()  # HTTP clients are not thread-safe: one per thread
        self._thread_clients: list = []
        self._shm = None
        self._down: ServerUnavailable | None = None
        self._logmel_shape: dict[int, tuple[int, ...]] = {}  # input samples -> (n_mels, frames)
        try:
            self._setup(shared_memory)
        except BaseException:
            self.close()
            raise

    def _setup(self, shared_memory: bool) -> None:
        """Check the server, read the ensemble's parameters and limits, register shared memory."""
        self._check_ready()
        config = self.model_config(self.model)
        params = self._parameters(config, {"sample_rate", "clip_seconds", "labels"})
        self.sample_rate = int(params["sample_rate"])
        self.clip_seconds = float(params["clip_seconds"])
        self.labels: list[str] = json.loads(params["labels"])
        self.max_batch_size: int | None = int(config.get("max_batch_size", 0)) or None
        self.max_samples = self._max_input_samples(config)
        if shared_memory:
            from client.shm import SharedMemoryIO

            self._shm = SharedMemoryIO(self._client, self._lib, self.url)
            clip_bytes = 4 * round(self.clip_seconds * self.sample_rate)  # fail now, not mid-run
            self._call(lambda: self._shm.reserve(WAVEFORM, clip_bytes), "shared memory registration")

    # -- connection and configuration -------------------------------------------------------

    def _new_client(self):
        if self.protocol == "http":
            return httpclient.InferenceServerClient(
                self.url, connection_timeout=self.timeout, network_timeout=self.timeout)
        return grpcclient.InferenceServerClient(self.url)

    def _thread_client(self):
        if self.protocol == "grpc" or threading.current_thread() is threading.main_thread():
            return self._client
        if not hasattr(self._local, "client"):
            self._local.client = self._new_client()
            self._thread_clients.append(self._local.client)
        return self._local.client

    def _unreachable(self, err: BaseException) -> ServerUnavailable:
        return ServerUnavailable(
            f"cannot reach Triton at {self.url} over {self.protocol} ({_describe(err)}) after "
            f"{self.retry.attempts} attempt(s); start it with `make serve`, or pass --url HOST:PORT "
            f"(gRPC 8001, HTTP 8000 by default)"
        )

    def _translate(self, err: BaseException, what: str) -> ClientError:
        """A tritonclient/socket error as a ClientError that names the cause and the fix."""
        if is_unavailable(err):
            return self._unreachable(err)
        if isinstance(err, TimeoutError) or (
            isinstance(err, InferenceServerException) and err.status() == "StatusCode.DEADLINE_EXCEEDED"
        ):
            return ClientError(
                f"no answer from Triton at {self.url} within {self.timeout:g} s; raise --timeout "
                f"or send smaller batches"
            )
        if isinstance(err, InferenceServerException):
            return ClientError(f"{what} failed on {self.url}: {err.message()}")
        return ClientError(f"{what} failed on {self.url}: {_describe(err)}")

    def _call(self, fn: Callable[[], T], what: str) -> T:
        try:
            return call_with_retries(fn, self.retry, f"{what} at {self.url}")
        except (InferenceServerException, OSError) as err:
            raise self._translate(err, what) from err

    def _check_ready(self) -> None:
        kwargs = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        if not self._call(lambda: self._client.is_server_live(**kwargs), "liveness"):
            raise ClientError(f"Triton at {self.url} is not live; check the server log")
        if not self._call(lambda: self._client.is_model_ready(self.model, **kwargs), "readiness"):
            raise ClientError(
                f"model {self.model!r} is not ready on {self.url}; check that the server's model "
                f"repository holds it (`dvc repro export`) and read the server log"
            )

    def model_config(self, name: str) -> dict:
        """The server's config of model ``name`` as a dict (the same keys for both protocols)."""
        if self.protocol == "grpc":
            return self._call(lambda: self._client.get_model_config(name, as_json=True), "config")["config"]
        return self._call(lambda: self._client.get_model_config(name), "config")

    def _parameters(self, config: dict, required: set[str]) -> dict[str, str]:
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        missing = required - params.keys()
        if missing:
            raise ClientError(
                f"model {config.get('name', self.model)!r} config lacks parameters {sorted(missing)}; "
                f"it was not built by this project's export stage"
            )
        return params

    def _max_input_samples(self, config: dict) -> int | None:
        """``max_input_elements`` of the ensemble step that reads WAVEFORM (the `logmel` model)."""
        steps = config.get("ensemble_scheduling", {}).get("step", [])
        readers = [s["model_name"] for s in steps if WAVEFORM in s.get("input_map", {}).values()]
        for name in readers or [self.model]:
            params = self._parameters(self.model_config(name), set())
            if params.get("max_input_elements"):  # optional in the model's config
                return int(params["max_input_elements"])
        return None

    # -- inference ---------------------------------------------------------------------------

    def check_length(self, n_samples: int) -> None:
        """Refuse, before sending, a waveform longer than the server accepts."""
        if self.max_samples is not None and n_samples > self.max_samples:
            raise InputTooLong(
                f"the waveform has {n_samples} samples ({n_samples / self.sample_rate:.1f} s), more "
                f"than the {self.max_samples} ({self.max_samples / self.sample_rate:.1f} s) the server "
                f"accepts (max_input_elements of the ensemble's first model); classify long "
                f"recordings in windows: `esc-classify --timeline` or client.timeline"
            )

    def infer(self, waveforms: np.ndarray, with_logmel: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(batch, samples) float32 at ``sample_rate`` -> probabilities (batch, n_classes) and
        log-mel (batch, n_mels, frames), or None without ``with_logmel``.

        Batches larger than the server's ``max_batch_size`` are sent in several requests.
        """
        waveforms = np.ascontiguousarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2:
            raise ValueError(f"waveforms must be (batch, samples), got shape {waveforms.shape}")
        self.check_length(waveforms.shape[1])
        step = self.max_batch_size or len(waveforms) or 1
        parts = [self._infer_batch(waveforms[i : i + step]) for i in range(0, len(waveforms), step)]
        if not parts:  # an empty batch: let the server say what is wrong with it
            parts = [self._infer_batch(waveforms)]
        probs = np.concatenate([p[PROBABILITIES] for p in parts])
        return probs, np.concatenate([p[LOGMEL] for p in parts]) if with_logmel else None

    def _infer_batch(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        """One request: (batch, samples) -> {output name: array} for both outputs."""
        if self._shm is not None and waveforms.size:
            shapes = self._output_shapes(waveforms.shape)
            return self._call(lambda: self._shm.infer(self._send, waveforms, shapes), "inference")
        return self._call(lambda: self._request(waveforms), "inference")

    def _request(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        inp = self._lib.InferInput(WAVEFORM, list(waveforms.shape), "FP32")
        inp.set_data_from_numpy(waveforms)
        result = self._send([inp], [self._lib.InferRequestedOutput(n) for n in OUTPUTS])
        return {n: result.as_numpy(n) for n in OUTPUTS}

    def _send(self, inputs: list, outputs: list):
        """One request with prepared InferInput/InferRequestedOutput objects; the raw result."""
        kwargs = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        return self._thread_client().infer(self.model, inputs, outputs=outputs, **kwargs)

    def _output_shapes(self, shape: tuple[int, int]) -> dict[str, tuple[int, ...]]:
        """Output shapes for a (batch, samples) input; the log-mel frames come from one probe."""
        if shape[1] not in self._logmel_shape:  # one plain request per new input length
            out = self._call(lambda: self._request(np.zeros((1, shape[1]), np.float32)), "inference")
            self._logmel_shape[shape[1]] = out[LOGMEL].shape[1:]
        return {PROBABILITIES: (shape[0], len(self.labels)), LOGMEL: (shape[0], *self._logmel_shape[shape[1]])}

    def top_k(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(probabilities)[::-1][:k]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def prepare(self, waveform: np.ndarray, sample_rate: int, source: str | Path = "waveform") -> np.ndarray:
        """A (samples,) waveform at ``sample_rate`` -> (samples',) at the model's rate."""
        check_conversion(sample_rate, self.sample_rate, source)
        return resample(np.asarray(waveform, np.float32), sample_rate, self.sample_rate)

    def classify_waveform(self, waveform: np.ndarray, top_k: int = 5, sample_rate: int | None = None,
                          with_logmel: bool = True) -> Prediction:
        """Classify one (samples,) waveform, at ``sample_rate`` (default: the model's rate)."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            waveform = self.prepare(waveform, sample_rate)
        probs, logmel = self.infer(waveform[None, :], with_logmel)
        return Prediction(self.top_k(probs[0], top_k), probs[0], None if logmel is None else logmel[0])

    def load(self, path: str | Path) -> np.ndarray:
        """Decode a file and prepare it as in training: (samples,) at the model's rate and length."""
        try:
            rate = sf.info(str(path)).samplerate
        except (sf.LibsndfileError, RuntimeError, TypeError):
            rate = self.sample_rate  # let load_audio name the problem
        check_conversion(rate, self.sample_rate, path)
        return load_audio(path, self.sample_rate, self.clip_seconds)

    def classify_file(self, path: str | Path, top_k: int = 5, with_logmel: bool = True) -> Prediction:
        return self.classify_waveform(self.load(path), top_k, with_logmel=with_logmel)

    # -- many files --------------------------------------------------------------------------

    def classify_many(self, paths: Sequence[str | Path], top_k: int = 5, concurrency: int = 4,
                      with_logmel: bool = False,
                      on_result: Callable[[int, FileResult], None] | None = None) -> list[FileResult]:
        """Classify files concurrently; results in input order, one per path.

        A file that cannot be classified gets ``FileResult.error`` and the others go on. Once the
        server is unreachable (after retries) the remaining files are not sent: they fail with
        the same reason, and ``server_down`` holds it. ``on_result(index, result)`` is called as
        each one finishes (any order). gRPC runs on ``tritonclient.grpc.aio`` (decoding in
        threads); HTTP and shared memory on a pool of ``concurrency`` threads.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        done = on_result or (lambda i, r: None)
        if self.protocol == "grpc" and self._shm is None:
            return asyncio.run(self._classify_many_aio(list(paths), top_k, concurrency, with_logmel, done))
        results: list[FileResult | None] = [None] * len(paths)
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                futures = {pool.submit(self._classify_one, p, top_k, with_logmel): i for i, p in enumerate(paths)}
                for future in as_completed(futures):
                    results[futures[future]] = result = future.result()
                    done(futures[future], result)
        finally:
            self._close_thread_clients()
        return results  # type: ignore[return-value]

    @property
    def server_down(self) -> ServerUnavailable | None:
        """Set once ``classify_many`` found the server unreachable."""
        return self._down

    def _failed(self, path: str | Path, err: Exception) -> FileResult:
        if isinstance(err, ServerUnavailable):
            self._down = self._down or err
        reason = str(err) if isinstance(err, AudioError) else f"{path}: {err}"
        return FileResult(str(path), None, reason)

    def _classify_one(self, path: str | Path, top_k: int, with_logmel: bool) -> FileResult:
        if self._down is not None:
            return self._failed(path, self._down)
        try:
            return FileResult(str(path), self.classify_file(path, top_k, with_logmel))
        except (AudioError, ClientError) as err:
            return self._failed(path, err)

    async def _classify_many_aio(self, paths: list, top_k: int, concurrency: int, with_logmel: bool,
                                 done: Callable[[int, FileResult], None]) -> list[FileResult]:
        gate = asyncio.Semaphore(concurrency)
        async with grpcaio.InferenceServerClient(self.url) as client:

            async def request(wave: np.ndarray) -> dict[str, np.ndarray]:
                inp = grpcaio.InferInput(WAVEFORM, [1, wave.shape[0]], "FP32")
                inp.set_data_from_numpy(wave[None])
                result = await client.infer(self.model, [inp], client_timeout=self.timeout,
                                            outputs=[grpcaio.InferRequestedOutput(n) for n in OUTPUTS])
                return {n: result.as_numpy(n) for n in OUTPUTS}

            async def one(index: int, path: str | Path) -> FileResult:
                async with gate:
                    try:
                        if self._down is not None:
                            raise self._down
                        wave = await asyncio.to_thread(self.load, path)
                        self.check_length(wave.shape[0])
                        try:
                            out = await acall_with_retries(lambda: request(wave), self.retry,
                                                           f"inference at {self.url}")
                        except (InferenceServerException, OSError) as err:
                            raise self._translate(err, "inference") from err
                        probs = out[PROBABILITIES][0]
                        logmel = out[LOGMEL][0] if with_logmel else None
                        result = FileResult(str(path), Prediction(self.top_k(probs, top_k), probs, logmel))
                    except (AudioError, ClientError) as err:
                        result = self._failed(path, err)
                done(index, result)
                return result

            return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(paths))))

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Unregister and free shared memory (if used) and close every connection."""
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        self._close_thread_clients()
        self._client.close()

    def _close_thread_clients(self) -> None:
        while self._thread_clients:
            self._thread_clients.pop().close()

    def __enter__(self) -> EscClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
