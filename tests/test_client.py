"""client.triton: retries with backoff, error translation, many files, limits, shared memory.

Fast tests use fake failing calls and unreachable ports; slow tests use the real server of the
``triton`` fixture (its QUICK repository accepts at most 10 s per waveform).
"""

from __future__ import annotations

import asyncio
import logging
import os

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from client.audio import AudioError
from client.triton import (
    ClientError,
    EscClient,
    InputTooLong,
    RetryPolicy,
    ServerUnavailable,
    acall_with_retries,
    call_with_retries,
    is_unavailable,
)
from tests.conftest import ESC10

PROTOCOLS = ("grpc", "http")
CLIPS = [ESC10 / "audio" / folder / name for folder, name in [
    ("001 - Dog bark", "5-203128-A.ogg"), ("002 - Rain", "1-17367-A.ogg"),
    ("010 - Fire crackling", "1-17150-A.ogg")]]
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
UNAVAILABLE = InferenceServerException("connect failed", status="StatusCode.UNAVAILABLE")


class Flaky:
    """Raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors, self.calls = list(errors), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_backoff_doubles_up_to_the_cap() -> None:
    assert RetryPolicy(attempts=6, base_delay=0.5, max_delay=3.0).delays() == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(attempts=1).delays() == []
    with pytest.raises(ValueError, match="need attempts >= 1"):
        RetryPolicy(attempts=0)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (UNAVAILABLE, True),
        (InferenceServerException("busy", status="503"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (InferenceServerException("bad input", status="StatusCode.INVALID_ARGUMENT"), False),
        (InferenceServerException("bad input", status="400"), False),
        (TimeoutError("timed out"), False),
    ],
)
def test_only_unavailable_errors_are_retried(error: BaseException, transient: bool) -> None:
    assert is_unavailable(error) is transient


def test_retries_wait_with_backoff_then_succeed(caplog) -> None:
    waits: list[float] = []
    call = Flaky(UNAVAILABLE, ConnectionResetError("reset"))
    with caplog.at_level(logging.WARNING, logger="client.triton"):
        assert call_with_retries(call, RetryPolicy(attempts=3, base_delay=0.25), "infer", waits.append) == "ok"
    assert call.calls == 3 and waits == [0.25, 0.5]
    assert "infer: server unavailable (StatusCode.UNAVAILABLE: connect failed); retry 1/2 in 0.25 s" in caplog.text
    assert "retry 2/2 in 0.50 s" in caplog.text


def test_retries_are_bounded_and_other_errors_are_not_retried() -> None:
    waits: list[float] = []
    call = Flaky(*[UNAVAILABLE] * 5)
    with pytest.raises(InferenceServerException, match="connect failed"):
        call_with_retries(call, RetryPolicy(attempts=3, base_delay=0.1), "infer", waits.append)
    assert call.calls == 3 and waits == [0.1, 0.2]  # attempts, not one more
    invalid = Flaky(InferenceServerException("NaN", status="StatusCode.INVALID_ARGUMENT"))
    with pytest.raises(InferenceServerException, match="NaN"):
        call_with_retries(invalid, RetryPolicy(attempts=3), "infer", waits.append)
    assert invalid.calls == 1 and waits == [0.1, 0.2]


def test_async_retries() -> None:
    call = Flaky(UNAVAILABLE, UNAVAILABLE)

    async def attempt() -> str:
        return call()

    assert asyncio.run(acall_with_retries(attempt, FAST, "infer")) == "ok" and call.calls == 3
    never = Flaky(*[UNAVAILABLE] * 3)

    async def fail() -> str:
        return never()

    with pytest.raises(InferenceServerException):
        asyncio.run(acall_with_retries(fail, FAST, "infer"))
    assert never.calls == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unreachable_server_is_retried_then_named(protocol: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="client.triton"):
        with pytest.raises(ServerUnavailable,
                           match=r"cannot reach Triton at 127.0.0.1:1 .*after 3 attempt\(s\).*make serve"):
            EscClient("127.0.0.1:1", protocol, retry=FAST)
    assert caplog.text.count("server unavailable") == 2


def test_client_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="protocol must be one of"):
        EscClient("127.0.0.1:1", "udp")
    with pytest.raises(ValueError, match="timeout must be positive"):
        EscClient("127.0.0.1:1", "grpc", timeout=0)


# -- real server -----------------------------------------------------------------------------

def client_for(triton, protocol: str, **kwargs) -> EscClient:
    return EscClient(triton.grpc_url if protocol == "grpc" else triton.http_url, protocol, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_many_files_keep_order_and_per_file_errors(triton, tmp_path, protocol: str) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    paths = [CLIPS[0], not_audio, CLIPS[1], tmp_path / "missing.ogg", CLIPS[2], *CLIPS]
    seen: list[int] = []
    with client_for(triton, protocol) as client:
        results = client.classify_many(paths, top_k=3, concurrency=3, on_result=lambda i, r: seen.append(i))
        singles = [client.classify_file(p, top_k=3) for p in CLIPS]
    assert [r.path for r in results] == [str(p) for p in paths] and sorted(seen) == list(range(len(paths)))
    assert results[1].prediction is None and "notes.wav: not a readable audio file" in results[1].error
    assert results[3].prediction is None and "missing.ogg: no such file" in results[3].error
    good = [results[i] for i in (0, 2, 4, 5, 6, 7)]
    assert all(r.error is None and r.prediction.logmel is None for r in good)
    for r, single in zip(good, singles * 2):
        np.testing.assert_allclose(r.prediction.probabilities, single.probabilities, atol=1e-5)
        assert [k for k, _ in r.prediction.top] == [k for k, _ in single.top]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_too_long_input_is_refused_before_sending(triton, protocol: str, monkeypatch) -> None:
    with client_for(triton, protocol) as client:
        limit = client.max_samples
        assert limit == 10 * client.sample_rate  # the logmel model's max_input_elements (QUICK: 10 s)
        assert client.infer(np.zeros((2, limit), np.float32), with_logmel=False)[0].shape == (2, len(client.labels))
        client.max_samples = None  # without the client's check, the server refuses it itself
        with pytest.raises(ClientError, match=rf"has {limit + 1} values per item, more than the {limit} this model"):
            client.infer(np.zeros((1, limit + 1), np.float32))
        client.max_samples = limit
        monkeypatch.setattr(client, "_send", lambda *a, **k: pytest.fail("a too-long input was sent"))
        with pytest.raises(InputTooLong, match=rf"has {limit + 1} samples .*more than the {limit} .*--timeline"):
            client.infer(np.zeros((1, limit + 1), np.float32))
        with pytest.raises(InputTooLong, match="more than the"):
            client.classify_waveform(np.zeros(limit + 1, np.float32))


@pytest.mark.slow
def test_batches_over_the_server_limit_are_split(triton) -> None:
    with client_for(triton, "grpc") as client:
        wave = client.load(CLIPS[0])
        batch = np.stack([wave * g for g in np.linspace(0.1, 1.0, client.max_batch_size + 3)])
        probs, logmel = client.infer(batch)
        single = client.infer(batch[-1:])[0]
    assert probs.shape == (client.max_batch_size + 3, len(client.labels)) and logmel.shape[0] == len(batch)
    np.testing.assert_allclose(probs[-1], single[0], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_over_its_timeout_names_the_fix(triton, protocol: str) -> None:
    with pytest.raises(ClientError, match=r"no answer from Triton .* within 0.001 s; raise --timeout"):
        with client_for(triton, protocol, timeout=0.001) as client:  # health checks may already time out
            client.infer(np.zeros((8, client.max_samples), np.float32))


@pytest.mark.slow
def test_waveforms_at_another_rate_are_resampled(triton) -> None:
    with client_for(triton, "http") as client:
        wave = client.load(CLIPS[1])
        at_44k = np.repeat(wave, 2)  # the same signal at twice the rate, roughly
        pred = client.classify_waveform(at_44k, sample_rate=2 * client.sample_rate)
        assert pred.probabilities.shape == (len(client.labels),)
        with pytest.raises(AudioError, match="unsupported sample-rate conversion 500 Hz"):
            client.classify_waveform(wave, sample_rate=500)


def _shm_files() -> set[str]:
    return {f for f in os.listdir("/dev/shm") if f.startswith(f"esc_{os.getpid()}_")}


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_memory_gives_the_same_answers_and_cleans_up(triton, protocol: str) -> None:
    with client_for(triton, protocol) as plain, client_for(triton, protocol, shared_memory=True) as shm:
        waves = np.stack([plain.load(p) for p in CLIPS])
        expected = plain.infer(waves)
        for rows in ([0], [0, 1, 2], [2, 1]):  # the regions grow for the larger batch
            probs, logmel = shm.infer(waves[rows])
            np.testing.assert_allclose(probs, expected[0][rows], atol=1e-6)
            np.testing.assert_allclose(logmel, expected[1][rows], atol=1e-4)
        many = shm.classify_many(CLIPS, top_k=2, concurrency=2)
        np.testing.assert_allclose(np.stack([r.prediction.probabilities for r in many]), expected[0], atol=1e-6)
        status = plain._client.get_system_shared_memory_status(**({"as_json": True} if protocol == "grpc" else {}))
        assert _shm_files() and str(os.getpid()) in str(status)
    assert not _shm_files()  # unlinked on close
    with client_for(triton, protocol) as plain:
        status = plain._client.get_system_shared_memory_status(**({"as_json": True} if protocol == "grpc" else {}))
    assert f"esc_{os.getpid()}_" not in str(status)  # unregistered on close


class Registry:
    """The shared-memory calls of a tritonclient client; unregistering fails as "in use" ``busy`` times."""

    def __init__(self, busy: int) -> None:
        self.busy, self.registered = busy, set()

    def register_system_shared_memory(self, name: str, key: str, nbytes: int) -> None:
        assert name not in self.registered, f"shared memory region '{name}' already in manager"
        self.registered.add(name)

    def unregister_system_shared_memory(self, name: str) -> None:
        if self.busy:
            self.busy -= 1
            raise InferenceServerException(f"Cannot unregister shared memory region '{name}', it is currently in use.")
        self.registered.discard(name)


@pytest.mark.parametrize("busy", [0, 3])
def test_a_region_the_server_still_holds_is_unregistered_once_free(busy: int) -> None:
    from client.shm import SharedMemoryIO

    server = Registry(busy)
    io = SharedMemoryIO(server, None, "here")
    io.reserve("WAVEFORM", 8)
    first = io.name("WAVEFORM")
    io.reserve("WAVEFORM", 16)  # grows: the old region is released
    assert server.registered == {io.name("WAVEFORM")} and io.name("WAVEFORM") != first
    io.close()
    assert not server.registered and not _shm_files() and server.busy == 0


def test_a_region_held_past_the_wait_is_left_with_a_warning_and_never_blocks_its_successor(monkeypatch, caplog) -> None:
    import client.shm

    monkeypatch.setattr(client.shm, "UNREGISTER_RETRY", RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01))
    server = Registry(busy=10**6)
    io = client.shm.SharedMemoryIO(server, None, "here")
    io.reserve("WAVEFORM", 8)
    with caplog.at_level(logging.WARNING, logger="client.shm"):
        io.reserve("WAVEFORM", 16)
    assert "could not unregister shared memory" in caplog.text and "currently in use" in caplog.text
    assert len(server.registered) == 2  # the held one stays registered; the new one has its own name
    io.close()
    assert not _shm_files()


@pytest.mark.slow
def test_shared_memory_the_server_cannot_see_names_the_fix(triton, monkeypatch) -> None:
    import client.shm

    real = client.shm.shm.create_shared_memory_region
    monkeypatch.setattr(client.shm.shm, "create_shared_memory_region",  # as for a server on another host
                        lambda name, key, size, create_only=False: real(name, f"{key}-here", size, create_only))
    with pytest.raises(ClientError, match="cannot map shared memory region.*needs the server on this host.*without"):
        client_for(triton, "grpc", shared_memory=True)
    assert not _shm_files()


@pytest.mark.slow
def test_a_server_lost_mid_run_fails_the_remaining_files_fast(pipeline_run, tmp_path, caplog) -> None:
    """Once retries show the server gone, the other files fail at once with the same reason."""
    from model_repository.server import Ports, TritonServer
    from tests.conftest import free_port

    server = TritonServer(pipeline_run.model_repository, Ports(free_port(), free_port(), free_port()),
                          log_file=tmp_path / "tritonserver.log",
                          extra_args=("--exit-timeout-secs=2",))  # our open connections would hold it 30 s
    with server:
        clients = {p: client_for(server, p, retry=FAST) for p in PROTOCOLS}
        assert all(c.classify_file(CLIPS[0]).probabilities.shape == (10,) for c in clients.values())
    for protocol, client in clients.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="client.triton"), client:
            results = client.classify_many(CLIPS * 4, concurrency=2)
        assert all(r.prediction is None and "cannot reach Triton" in r.error for r in results), protocol
        assert isinstance(client.server_down, ServerUnavailable)
        # at most `concurrency` files spent their retries; 12 files would log 24 retries
        assert 2 <= caplog.text.count("server unavailable") <= 2 * (FAST.attempts - 1), protocol
