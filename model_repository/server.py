"""Start and stop the real ``tritonserver`` shipped in the nvidia-pytriton wheel.

Covers: locating the binary, installing the Python-backend stub that matches this interpreter,
the environment the stub needs (this environment's ``bin`` first on PATH, libpython's directory
on LD_LIBRARY_PATH), waiting for readiness and a clean shutdown. CPU-only hosts work; the server
then logs harmless CUDA/NVML warnings. Does not cover the official container (see Dockerfile).

Command line: ``python -m model_repository.server --model-repository artifacts/model_repository``
serves in the foreground until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def triton_home() -> Path:
    try:
        import pytriton
    except ImportError as err:
        raise RuntimeError("nvidia-pytriton is not installed; run `make setup`") from err
    return Path(pytriton.__file__).parent / "tritonserver"


def prepare_python_backend(home: Path) -> None:
    """Copy the stub built for this Python version into the Python backend (idempotent)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = home / "python_backend_stubs" / version / "triton_python_backend_stub"
    target = home / "backends" / "python" / "triton_python_backend_stub"
    if not stub.exists():
        raise RuntimeError(f"nvidia-pytriton ships no Python backend stub for Python {version}")
    if not target.exists() or target.stat().st_size != stub.stat().st_size:
        shutil.copy2(stub, target)


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
    return env


@dataclass(frozen=True)
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


class TritonServer:
    """A ``tritonserver`` child process bound to 127.0.0.1.

    Use as a context manager: ``with TritonServer(repo, ports) as server: ...``; the server is
    ready on entry and stopped on exit.
    """

    def __init__(self, model_repository: Path, ports: Ports = Ports(), log_file: Path | None = None,
                 host: str = "127.0.0.1", extra_args: tuple[str, ...] = ()) -> None:
        self.model_repository = Path(model_repository).resolve()
        if not (self.model_repository / "esc" / "config.pbtxt").is_file():
            raise FileNotFoundError(
                f"{self.model_repository} holds no `esc` ensemble; run `dvc repro export` first"
            )
        self.ports, self.host, self.log_file, self.extra_args = ports, host, log_file, extra_args
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports.grpc}"

    def command(self) -> list[str]:
        home = triton_home()
        return [
            str(home / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={home / 'backends'}",
            f"--http-address={self.host}", f"--http-port={self.ports.http}",
            f"--grpc-address={self.host}", f"--grpc-port={self.ports.grpc}",
            f"--metrics-address={self.host}", f"--metrics-port={self.ports.metrics}",
            "--allow-gpu-metrics=false", "--pinned-memory-pool-byte-size=0",
            "--cuda-memory-pool-byte-size=0:0", "--exit-on-error=true",
            # Clients holding connections would otherwise delay shutdown by 30 s.
            "--exit-timeout-secs=5",
            *self.extra_args,
        ]

    def check_ports_free(self) -> None:
        """Fail early: a server already on these ports would answer our readiness probes."""
        for name, port in vars(self.ports).items():
            with socket.socket() as sock:
                if sock.connect_ex((self.host, port)) == 0:
                    raise RuntimeError(
                        f"{self.host}:{port} ({name}) is already in use, perhaps by another "
                        f"tritonserver; stop it or choose other ports"
                    )

    def start(self, timeout: float = 60.0) -> TritonServer:
        self.check_ports_free()
        prepare_python_backend(triton_home())
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(), env=server_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_ready(self, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"tritonserver exited with code {self.process.returncode} before it was ready; "
                    f"see {self.log_file or 'its output'}"
                )
            if self.is_ready():
                return time.monotonic() - start
            time.sleep(0.1)
        raise TimeoutError(f"tritonserver not ready after {timeout:.0f} s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-repository", type=Path, default=Path("artifacts/model_repository"))
    parser.add_argument("--http-port", type=int, default=Ports.http)
    parser.add_argument("--grpc-port", type=int, default=Ports.grpc)
    parser.add_argument("--metrics-port", type=int, default=Ports.metrics)
    args = parser.parse_args(argv)
    server = TritonServer(args.model_repository, Ports(args.http_port, args.grpc_port, args.metrics_port))
    server.check_ports_free()
    prepare_python_backend(triton_home())
    log.info("starting %s", " ".join(server.command()))
    # Foreground: tritonserver's own log goes to this terminal; Ctrl-C stops it.
    os.execve(server.command()[0], server.command(), server_env())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
