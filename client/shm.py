"""System shared memory for requests to a Triton server on the same host.

Covers: one input region (WAVEFORM) and one region per output, created with
``tritonclient.utils.shared_memory``, registered with the server, grown when a larger request
comes, and unregistered and unlinked on ``close``. Requests through one ``SharedMemoryIO`` are
serialised (the regions are reused), so it brings nothing to concurrent clients.
Triton may still hold a region for a moment after it answered (it releases the request after
sending the response) and then refuses to unregister it as "in use": ``_release`` retries as
``UNREGISTER_RETRY`` allows, and a grown region gets a new name, so it never collides with the old one.
Does not cover: CUDA shared memory, servers on another host (registration fails there, with a
message saying so).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np
import tritonclient.utils.shared_memory as shm
from tritonclient.utils import InferenceServerException

from client.triton import ClientError, RetryPolicy, is_unavailable

log = logging.getLogger(__name__)
_ids = itertools.count()
WAVEFORM = "WAVEFORM"
UNREGISTER_RETRY = RetryPolicy(attempts=15, base_delay=0.005, max_delay=0.2)  # waits 1.9 s in all


class SharedMemoryIO:
    """Regions named ``esc_<pid>_<n>_<tensor>_<generation>`` for one client connection.

    ``client`` is a sync tritonclient ``InferenceServerClient`` and ``lib`` its module
    (``tritonclient.grpc`` or ``tritonclient.http``).
    """

    def __init__(self, client, lib: ModuleType, url: str) -> None:
        self._client, self._lib, self._url = client, lib, url
        self._prefix = f"esc_{os.getpid()}_{next(_ids)}"
        self._regions: dict[str, tuple[shm.SharedMemoryRegion, int, str]] = {}  # tensor -> (handle, bytes, name)
        self._generations = itertools.count()
        self._lock = threading.Lock()

    def reserve(self, tensor: str, nbytes: int) -> shm.SharedMemoryRegion:
        """The region for ``tensor``, (re)created and registered when smaller than ``nbytes``."""
        handle, size, _ = self._regions.get(tensor, (None, 0, ""))
        if handle is not None and size >= nbytes:
            return handle
        if handle is not None:
            self._release(tensor)
        name = f"{self._prefix}_{tensor.lower()}_{next(self._generations)}"
        handle = shm.create_shared_memory_region(name, f"/{name}", nbytes, create_only=True)
        try:
            self._client.register_system_shared_memory(name, f"/{name}", nbytes)
        except (InferenceServerException, OSError) as err:
            shm.destroy_shared_memory_region(handle)
            if is_unavailable(err):  # the caller retries
                raise
            raise ClientError(
                f"Triton at {self._url} cannot map shared memory region /{name} ({err}); "
                f"system shared memory needs the server on this host with access to /dev/shm: "
                f"run without shared memory"
            ) from err
        self._regions[tensor] = (handle, nbytes, name)
        log.debug("registered shared memory /%s (%d bytes)", name, nbytes)
        return handle

    def name(self, tensor: str) -> str:
        """The registered name of ``tensor``'s region."""
        return self._regions[tensor][2]

    def _release(self, tensor: str) -> None:
        handle, _, name = self._regions.pop(tensor)
        try:
            self._unregister(name)
        except (InferenceServerException, OSError) as err:  # the server may be gone already
            log.warning("could not unregister shared memory %s on %s: %s", name, self._url, err)
        finally:
            shm.destroy_shared_memory_region(handle)

    def _unregister(self, name: str) -> None:
        for delay in [*UNREGISTER_RETRY.delays(), None]:
            try:
                return self._client.unregister_system_shared_memory(name)
            except InferenceServerException as err:
                if delay is None or "currently in use" not in str(err):
                    raise
                log.debug("shared memory %s still in use on %s; retrying in %.3f s", name, self._url, delay)
                time.sleep(delay)

    def infer(self, send: Callable[[list, list], object], waveforms: np.ndarray,
              output_shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """Write (batch, samples) float32 to the input region, ``send(inputs, outputs)`` the
        request, and copy each float32 output of ``output_shapes`` out of its region."""
        with self._lock:
            inp = self._lib.InferInput(WAVEFORM, list(waveforms.shape), "FP32")
            shm.set_shared_memory_region(self.reserve(WAVEFORM, waveforms.nbytes), [waveforms])
            inp.set_shared_memory(self.name(WAVEFORM), waveforms.nbytes)
            outputs = []
            for name, shape in output_shapes.items():
                nbytes = int(np.prod(shape)) * 4
                self.reserve(name, nbytes)
                out = self._lib.InferRequestedOutput(name)
                out.set_shared_memory(self.name(name), nbytes)
                outputs.append(out)
            result = send([inp], outputs)
            arrays = {}
            for name in output_shapes:
                meta = result.get_output(name)
                shape = meta["shape"] if isinstance(meta, dict) else list(meta.shape)  # HTTP | gRPC
                arrays[name] = shm.get_contents_as_numpy(self._regions[name][0], np.float32, shape).copy()
            return arrays

    def close(self) -> None:
        """Unregister every region from the server and unlink it."""
        with self._lock:
            for tensor in list(self._regions):
                self._release(tensor)
