"""The embedded AWS: a moto server on 127.0.0.1 with the platform's gap fixes applied.

``python -m selfservice.local.moto_server --port N`` serves until stopped;
:class:`EmbeddedAws` starts one as a child process on a free port and stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["EmbeddedAws", "free_port"]


def _die_with_parent() -> None:
    """In the child: be terminated when the process that started us dies (Linux).

    A test run or a `selfservice up` killed outright must not leave a moto server
    behind on its port.
    """
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415 - child-side, Linux only

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedAws:
    """A moto server child process; use as a context manager."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_seconds: float = 30) -> EmbeddedAws:
        """Start and wait until it answers."""
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        log = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "selfservice.local.moto_server", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, no locks taken
        )
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the moto server exited with {self._process.returncode}")
            if self.answers(timeout=1):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the moto server did not answer on {self.endpoint}")

    def answers(self, timeout: float = 5) -> bool:
        """Whether the server answers on its endpoint (within ``timeout`` seconds)."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=timeout):  # noqa: S310 - loopback
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve moto on 127.0.0.1 with the gap fixes."""
    parser = argparse.ArgumentParser(prog="python -m selfservice.local.moto_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - only the server needs it

    from selfservice.local import moto_gaps  # noqa: PLC0415

    moto_gaps.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
