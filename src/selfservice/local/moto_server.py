"""The embedded AWS: a moto server on 127.0.0.1 with the platform's gap fixes applied.

``python -m selfservice.local.moto_server --port N`` serves until stopped;
:class:`EmbeddedAws` starts one as a child process on a free port and stops it.

IAM is enforced by default (``enforce_iam``; see ``docs/iam-enforcement.md``): every
request is authenticated (SigV4) and authorized by the policies in the embedded IAM.
The access key ``testing`` (secret ``testing``) is the account's root user.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from selfservice.local.iam import client as iam_client
from selfservice.local.iam.client import AccessDeniedError

__all__ = ["USAGE_LOG_ENV", "AccessDeniedError", "EmbeddedAws", "free_port"]

# Where the server appends one JSON line per authorization decision, when set.
USAGE_LOG_ENV = "SELFSERVICE_IAM_USAGE_LOG"


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
    """A moto server child process; use as a context manager.

    ``enforce_iam`` (default on) makes it authenticate and authorize every request as
    AWS IAM would; ``usage_log`` (or ``$SELFSERVICE_IAM_USAGE_LOG``) receives one JSON
    line per authorization decision of an IAM principal.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        *,
        enforce_iam: bool = True,
        usage_log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self.enforce_iam = enforce_iam
        env_log = os.environ.get(USAGE_LOG_ENV)
        self.usage_log = usage_log or (Path(env_log) if env_log else None)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_seconds: float = 30) -> EmbeddedAws:
        """Start and wait until it answers."""
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        log = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        arguments = ["--port", str(self.port)]
        if self.enforce_iam:
            arguments.append("--enforce-iam")
        if self.usage_log is not None:
            arguments += ["--usage-log", str(self.usage_log)]
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "selfservice.local.moto_server", *arguments],
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

    def assume_role_as_service(
        self,
        role_arn: str,
        service: str,
        *,
        session_name: str,
        source_arn: str | None = None,
        source_account: str | None = None,
    ) -> dict[str, str]:
        """Credentials of ``role_arn`` as ``service`` (``lambda.amazonaws.com``) gets them.

        The role's trust policy is evaluated for the principal ``{"Service": service}``
        with ``aws:SourceArn``/``aws:SourceAccount``; :class:`AccessDeniedError` (naming
        role and service) when it does not allow it. Returns ``AccessKeyId``,
        ``SecretAccessKey`` and ``SessionToken``.
        """
        return iam_client.assume_role_as_service(
            self.endpoint,
            role_arn,
            service,
            session_name=session_name,
            source_arn=source_arn,
            source_account=source_account,
        )

    def authorize(
        self,
        access_key_id: str,
        action: str,
        resources: Sequence[str],
        context: Mapping[str, Sequence[str]] | None = None,
        *,
        region: str = "us-east-1",
    ) -> None:
        """Whether the key's principal may do ``action`` on every one of ``resources``.

        For APIs the local runtime serves itself. Raises :class:`AccessDeniedError`
        with AWS's message (``User: ... is not authorized to perform: ...``).
        """
        iam_client.authorize(
            self.endpoint, access_key_id, action, resources, context, region=region
        )

    def verify_signature(
        self, *, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, Any]:
        """The principal (``kind``, ``arn``, ``account``, ``role_arn``, ``access_key_id``,
        ``user_name``, ``role_name``) that validly signed this request (SigV4, STS
        session keys included); :class:`AccessDeniedError` when it is not."""
        return iam_client.verify_signature(
            self.endpoint, method=method, path=path, headers=headers, body=body
        )

    def unresolved_actions(self) -> list[str]:
        """Actions served so far that were checked on ``*`` (no resolver knows them)."""
        return iam_client.unresolved_actions(self.endpoint)

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
    parser.add_argument("--enforce-iam", action="store_true")
    parser.add_argument("--usage-log", type=Path, default=None)
    args = parser.parse_args(argv)
    from selfservice.local import moto_gaps  # noqa: PLC0415 - only the server needs moto
    from selfservice.local.iam.server import IamMotoServer  # noqa: PLC0415

    moto_gaps.apply()
    if args.enforce_iam:
        from selfservice.local.iam import enforcement  # noqa: PLC0415

        enforcement.enable(args.usage_log)
    server = IamMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
