"""Triton Python-backend model of the embedded repository: an ONNX model or the FFT log-mel.

Copied as ``<model>/<version>/model.py`` for each model of the embedded repository (the
pip-installed server has only the Python backend). The config parameter ``engine`` picks what
runs:

- ``onnxruntime``: the ``model.onnx`` beside this file (the same file and tensor names that the
  native onnxruntime backend serves in the official container).
- ``fft_logmel``: the log-mel front end of ``training/features.py`` computed with a real FFT
  (frames of the zero-padded waveform, window, ``rfft``, power, mel filters, dB) from the window
  and filters that the export stage saved from that module (``logmel.npz``). Several times faster
  on CPU than the ONNX graph, whose STFT is a dense DFT convolution (docs/benchmarks.md); parity
  tests hold the two together.

Per ``execute`` call, requests whose inputs have equal shapes are concatenated into one run; each
request still gets its own response, and a bad request gets an INVALID_ARG error without failing
the others. Config parameters (all optional, strings): ``engine``; ``max_input_elements`` (per
batch item; longer inputs are rejected); onnxruntime session settings ``intra_op_threads``
(0 = one per core), ``inter_op_threads``, ``execution_mode`` (sequential | parallel),
``graph_optimization`` (disable | basic | extended | all) and ``allow_spinning`` (0 | 1);
``keep_freed_memory_mb`` (0 = glibc's defaults): see ``keep_freed_memory``.
Not covered here: GPU log-mel (``fft_logmel`` runs on the CPU whatever the instance kind).
"""

import ctypes
import ctypes.util
import json
import os

import numpy as np
import scipy.fft
from threadpoolctl import threadpool_limits

try:  # inside the Triton Python backend; absent where the export stage and tests import the math
    import triton_python_backend_utils as pb_utils
except ImportError:
    pb_utils = None

ENGINES = ("onnxruntime", "fft_logmel")


def _param(config: dict, key: str, default: str) -> str:
    return config.get("parameters", {}).get(key, {}).get("string_value", "") or default


def malloc_thresholds(megabytes: int) -> tuple[int, int]:
    """(M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) in bytes for ``keep_freed_memory(megabytes)``; the
    same numbers as the environment variables MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_."""
    size = megabytes << 20
    return min(size, 32 << 20), size  # glibc caps the mmap threshold at 32 MB on 64-bit


def keep_freed_memory(megabytes: int) -> bool:
    """Make glibc malloc keep up to ``megabytes`` of freed memory for reuse; True if it took.

    By default, glibc serves each allocation above 128 kB (a clip's frames, spectrum, a batch)
    with a fresh ``mmap`` and returns freed memory to the kernel, so requests keep paying page
    faults on new pages: in a fresh stub process that doubled the time of the FFT log-mel
    (docs/benchmarks.md). Fixed thresholds keep such blocks in the heap, at the price of up to
    ``megabytes`` of resident memory per process.
    """
    path = ctypes.util.find_library("c")
    if megabytes <= 0 or path is None:
        return False
    libc = ctypes.CDLL(path)
    if not hasattr(libc, "mallopt"):  # not glibc (musl, macOS)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mmap_bytes, trim_bytes = malloc_thresholds(megabytes)
    return bool(libc.mallopt(m_mmap_threshold, mmap_bytes) and libc.mallopt(m_trim_threshold, trim_bytes))


def logmel_fft(waveform: np.ndarray, window: np.ndarray, filterbank: np.ndarray,
               hop_length: int, log_floor: float, rfft=scipy.fft.rfft) -> np.ndarray:
    """(batch, samples) float32 -> (batch, n_mels, 1 + samples // hop_length) float32 dB.

    The math of ``training.features.LogMel``: centred frames (``n_fft // 2`` zeros each side),
    windowed DFT power, mel filters, ``10 * log10(max(mel, log_floor))``; in float32 like the
    PyTorch module, with a real FFT (scipy's, which keeps float32) in place of its DFT convolution.
    ``rfft`` is there to compare FFTs (numpy's computes in float64, about twice as slow here).
    """
    n_fft = window.shape[0]
    padded = np.pad(waveform, ((0, 0), (n_fft // 2, n_fft // 2)))  # (batch, samples + n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop_length]
    spectrum = rfft(frames * window, axis=-1)  # (batch, frames, n_fft // 2 + 1) complex64
    power = spectrum.real**2 + spectrum.imag**2
    mel = np.matmul(power, filterbank.T)  # (batch, frames, n_mels)
    db = 10.0 * np.log10(np.maximum(mel, np.float32(log_floor)))
    return np.ascontiguousarray(db.transpose(0, 2, 1), dtype=np.float32)  # (batch, n_mels, frames)


class FFTLogMel:
    """``run(outputs, feeds)`` like an onnxruntime session, for the one output LOGMEL."""

    def __init__(self, tables) -> None:
        """``tables``: the mapping of ``logmel.npz`` (window, filterbank, hop_length, log_floor)."""
        self.window = np.asarray(tables["window"], np.float32)  # (n_fft,)
        self.filterbank = np.asarray(tables["filterbank"], np.float32)  # (n_mels, n_fft // 2 + 1)
        self.hop_length = int(tables["hop_length"])
        self.log_floor = float(tables["log_floor"])

    def run(self, outputs: list, feeds: dict) -> list:
        (waveform,) = feeds.values()
        return [logmel_fft(np.asarray(waveform, np.float32), self.window, self.filterbank,
                           self.hop_length, self.log_floor)]


def onnx_session(path: str, config: dict, args: dict):
    import onnxruntime as ort  # here, so that the FFT log-mel stub starts without it

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(_param(config, "intra_op_threads", "0"))
    options.inter_op_num_threads = int(_param(config, "inter_op_threads", "1"))
    options.execution_mode = {
        "sequential": ort.ExecutionMode.ORT_SEQUENTIAL, "parallel": ort.ExecutionMode.ORT_PARALLEL,
    }[_param(config, "execution_mode", "sequential")]
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[_param(config, "graph_optimization", "all")]
    spinning = _param(config, "allow_spinning", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    providers = ["CPUExecutionProvider"]
    if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(args["model_instance_device_id"])}))
    return ort.InferenceSession(path, options, providers=providers)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.name = args["model_name"]
        (self.input,) = config["input"]
        self.outputs = [o["name"] for o in config["output"]]
        self.max_elements = int(_param(config, "max_input_elements", "0"))
        engine = _param(config, "engine", "onnxruntime")
        # numpy's BLAS (the FFT engine's mel matmul) would otherwise start a thread per core whose
        # spinning doubles the CPU time of each request (docs/benchmarks.md); one stub, one thread.
        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        keep_freed_memory(int(_param(config, "keep_freed_memory_mb", "0")))
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        if engine == "onnxruntime":
            self.session = onnx_session(os.path.join(version_dir, "model.onnx"), config, args)
        elif engine == "fft_logmel":
            with np.load(os.path.join(version_dir, "logmel.npz")) as tables:
                self.session = FFTLogMel(tables)
        else:
            raise ValueError(f"{self.name}: engine must be one of {ENGINES}, got {engine!r}")

    def _check(self, array: np.ndarray) -> str | None:
        name = self.input["name"]
        if array.size == 0 or array.shape[-1] == 0:
            return f"{self.name}: input {name} is empty (shape {list(array.shape)}); send at least one sample"
        if self.max_elements and array[0].size > self.max_elements:
            return (
                f"{self.name}: input {name} has {array[0].size} values per item, more than the "
                f"{self.max_elements} this model accepts; split long recordings into windows"
            )
        if not np.isfinite(array).all():
            return f"{self.name}: input {name} contains NaN or infinite values; clean the audio before sending"
        return None

    def execute(self, requests):
        responses = [None] * len(requests)
        groups = {}
        for i, request in enumerate(requests):
            array = pb_utils.get_input_tensor_by_name(request, self.input["name"]).as_numpy()
            error = self._check(array)
            if error is not None:
                responses[i] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(error, pb_utils.TritonError.INVALID_ARG)
                )
            else:
                groups.setdefault(array.shape[1:], []).append((i, array))
        for members in groups.values():
            try:
                batch = np.concatenate([a for _, a in members]) if len(members) > 1 else members[0][1]
                results = self.session.run(self.outputs, {self.input["name"]: batch})
            except Exception as err:  # one failed run answers its own requests only
                for i, _ in members:
                    responses[i] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"{self.name}: inference failed: {err}")
                    )
                continue
            offset = 0
            for i, array in members:
                n = array.shape[0]
                tensors = [
                    pb_utils.Tensor(name, np.ascontiguousarray(out[offset : offset + n]))
                    for name, out in zip(self.outputs, results)
                ]
                responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
                offset += n
        return responses
