"""``selfservice up``: the whole platform on this machine, until Ctrl-C.

Starts the embedded AWS, deploys the templates into it, runs every function, and
prints where everything listens. The ops API accepts only SigV4-signed requests: the
operator's credentials (fresh each run) are written to an env file readable by the
current user only, never printed.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path

from selfservice.local.platform import LocalPlatform

__all__ = ["run_up"]

READY_LINE = "READY"
"""Printed once everything listens (scripts and tests wait for it)."""


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.writelines(f"{name}={value}\n" for name, value in values.items())


def run_up(
    root: Path, *, workdir: Path | None, instances: int, ops_config: Path | None = None
) -> int:
    """Bring the platform up, print its endpoints, and serve until interrupted."""
    directory = workdir or Path(tempfile.mkdtemp(prefix="selfservice-up-"))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    platform = LocalPlatform(root, directory, say=lambda line: print(line, flush=True))
    with platform:
        if ops_config is not None:
            platform.configure_ops(ops_config.read_text())
        launched = platform.launch_instances(instances) if instances else []
        env_file = directory / "operator.env"
        _write_env_file(env_file, platform.operator_environment())
        webhooks = platform.fronts["WebhookApi"].url
        print(
            "\n".join(
                [
                    "selfservice is up (Ctrl-C to stop)",
                    f"  webhooks      {webhooks}/webhooks/servicenow, {webhooks}/webhooks/jira",
                    f"  ops API       {platform.ops_url} (SigV4, service execute-api)",
                    f"  ITSM sandbox  {platform.itsm.url}",
                    f"  embedded AWS  {platform.embedded.endpoint}",
                    f"  instances     {', '.join(launched) or 'none'}"
                    + (" (tagged SSMRunAllowed=true)" if launched else ""),
                    f"  state         {directory}",
                    f"operator credentials: {env_file} (mode 600). Try:",
                    f"  set -a; . {env_file}; set +a",
                    "  selfservice ops run-commands "
                    + (f"--instance-id {launched[0]} " if launched else "--tag Name=… ")
                    + "uptime hostname",
                    "the operator tools read the embedded AWS (any credentials will do):",
                    f"  selfservice status RITM0010042 --endpoint-url {platform.embedded.endpoint}",
                    "  selfservice replay --start … --end … "
                    f"--endpoint-url {platform.embedded.endpoint}",
                    READY_LINE,
                ]
            ),
            flush=True,
        )
        stop.wait()
        print("stopping …", flush=True)
    return 0
