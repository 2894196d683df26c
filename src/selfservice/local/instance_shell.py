"""A command on an instance of the embedded EC2, run as the SSM agent would run it.

Each instance has a sandbox: its own working directory, a scrubbed environment (no AWS
credentials, no caller variables; ``AWS_SSM_INSTANCE_ID`` and ``AWS_SSM_REGION_NAME``
as the SSM agent sets them), its own process group, and the document's
``executionTimeout`` (the group is killed and the invocation is ``TimedOut``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["SCRUBBED_PATH", "SHELL_DOCUMENTS", "Invocation", "Outcome", "run_on_instance"]

SCRUBBED_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL_DOCUMENTS = {"AWS-RunShellScript": "linux", "AWS-RunPowerShellScript": "windows"}
Outcome = tuple[str, int, str, str]
"""How a command ended: its status, response code, standard output and standard error."""


@dataclass
class Invocation:
    """One command on one instance, as ``GetCommandInvocation`` describes it."""

    command_id: str
    instance_id: str
    document: str
    visible_at: float
    status: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started: datetime | None = None
    ended: datetime | None = None

    def view(self, limit: int) -> dict[str, Any]:
        """The invocation as the API answers it, output cut at ``limit`` characters."""
        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "DocumentName": self.document,
            "Status": self.status,
            "StatusDetails": self.status,
            "ResponseCode": self.response_code,
            "StandardOutputContent": self.stdout[:limit],
            "StandardErrorContent": self.stderr[:limit],
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "ExecutionStartDateTime": self.started.isoformat() if self.started else "",
            "ExecutionEndDateTime": self.ended.isoformat() if self.ended else "",
        }


def run_on_instance(
    invocation: Invocation,
    commands: list[str],
    timeout: int,
    instance: dict[str, Any],
    *,
    workdir: Path,
    shell: str,
    region: str,
) -> Outcome:
    """Run a shell document's ``commands`` for ``instance`` in its sandbox under ``workdir``.

    Marks ``invocation`` started; returns how it ended (it is the caller's to record).
    """
    sandbox = workdir / "instances" / invocation.instance_id
    script_dir = sandbox / "commands" / invocation.command_id
    script_dir.mkdir(parents=True, exist_ok=True)
    invocation.started = datetime.now(UTC)
    invocation.status = "InProgress"
    if SHELL_DOCUMENTS[invocation.document] == "windows" or instance.get("Platform") == "windows":
        pwsh = shutil.which("pwsh")
        if pwsh is None or SHELL_DOCUMENTS[invocation.document] != "windows":
            return "Failed", 1, "", "the local runtime cannot run this platform's document\n"
        argv = [pwsh, "-NoProfile", "-NonInteractive", "-File"]
        script = script_dir / "script.ps1"
    else:
        argv = [shell]
        script = script_dir / "script.sh"
    script.write_text("\n".join(commands) + "\n")
    environment = {
        "PATH": SCRUBBED_PATH,
        "HOME": str(sandbox),
        "LANG": "C.UTF-8",
        "AWS_SSM_INSTANCE_ID": invocation.instance_id,
        "AWS_SSM_REGION_NAME": region,
    }
    with subprocess.Popen(  # noqa: S603 - the script is the vetted document's commands
        [*argv, str(script)],
        cwd=sandbox,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            return "TimedOut", -1, out.decode(errors="replace"), err.decode(errors="replace")
    status = "Success" if process.returncode == 0 else "Failed"
    return status, process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
