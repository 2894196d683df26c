"""Run a buildspec the way CodeBuild does, in a fresh workspace, and say how it went.

The bundle (buildspec, build tools, products, the plan review) is copied into a fresh workspace per
build, the phases run in one bash shell (so ``cd`` carries over, as in buildspec 0.2)
with the project's environment plus the build's overrides, and the result takes the
shape of AWS's ``CodeBuild Build State Change`` event so the real handler consumes it.
Phase rules follow CodeBuild: a failed INSTALL or PRE_BUILD skips the rest; a failed
BUILD still runs POST_BUILD. No network, no server: :mod:`.codebuild_client` queues
builds for it and :mod:`.codebuild` serves CodeBuild's API around it.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BUNDLE_PATHS",
    "BuildRun",
    "make_workspace",
    "run_buildspec",
    "state_change_event",
]

BUNDLE_PATHS = (
    "services/provisioner/buildspec.yml",
    "services/provisioner/buildtools",
    "services/provisioner/products",
    # The build's review step (buildtools/review.py) runs the provisioner's plan review:
    # its domain (no boto3), the guardrails' model, its price tables and the contracts.
    "services/provisioner/provisioner/__init__.py",
    "services/provisioner/provisioner/settings.py",
    "services/provisioner/provisioner/domain",
    "services/provisioner/provisioner/prices",
    "schemas/selfservice_contracts",
)
PHASES = ("install", "pre_build", "build", "post_build")
_MARK = "__SELFSERVICE_PHASE_FAILED__"


@dataclass
class BuildRun:
    """What a local build did."""

    build_id: str
    status: str
    failed_phase: str | None
    phase_context: str | None
    log: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def make_workspace(root: Path, destination: Path) -> Path:
    """Copy the bundle (what CodeBuild downloads from S3) into ``destination``."""
    ignore = shutil.ignore_patterns(".terraform", "*.tfstate*", "tfplan", "__pycache__")
    for relative in BUNDLE_PATHS:
        source = root / relative
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    return destination


def _script(buildspec: dict[str, Any]) -> str:
    lines = ["__failed=''"]
    for phase in PHASES:
        commands = (buildspec.get("phases", {}).get(phase) or {}).get("commands", [])
        # POST_BUILD runs after a failed BUILD; nothing runs after INSTALL/PRE_BUILD fail.
        guard = (
            '[ -z "$__failed" ] || [ "$__failed" = BUILD ]'
            if phase == "post_build"
            else '[ -z "$__failed" ]'
        )
        lines.append(f'echo "[Container] Entering phase {phase.upper()}"')
        for command in commands:
            quoted = shlex.quote(str(command))
            lines.append(
                f"if {guard}; then printf '[Container] Running command %s\\n' {quoted}; "
                f"eval {quoted} || {{ printf '%s %s %s\\n' {_MARK} {phase.upper()} {quoted}; "
                f"__failed=${{__failed:-{phase.upper()}}}; }}; fi"
            )
    lines.append('[ -z "$__failed" ]')
    return "\n".join(lines) + "\n"


def run_buildspec(
    workspace: Path,
    environment: dict[str, str],
    *,
    buildspec: str = "services/provisioner/buildspec.yml",
    project: str = "selfservice-provision",
    timeout_seconds: int = 1800,
) -> BuildRun:
    """Run the buildspec in ``workspace``; the environment is the build's whole environment."""
    spec = yaml.safe_load((workspace / buildspec).read_text())
    variables = {str(k): str(v) for k, v in (spec.get("env", {}).get("variables") or {}).items()}
    build_id = f"{project}:{uuid.uuid4()}"
    env = {
        **variables,
        **environment,
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_SRC_DIR": str(workspace),
    }
    run = BuildRun(build_id=build_id, status="IN_PROGRESS", failed_phase=None, phase_context=None)
    try:
        completed = subprocess.run(  # noqa: S603 - bash running our own buildspec
            ["bash", "-c", _script(spec)],  # noqa: S607
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # CodeBuild stops a build at the project's TimeoutInMinutes and reports it FAILED.
        run.log = _text(exc.stdout).splitlines() + _text(exc.stderr).splitlines()
        run.failed_phase = "BUILD"
        run.phase_context = f"BUILD_TIMED_OUT: Build has timed out. {timeout_seconds} secs"
        run.status = "FAILED"
        run.ended_at = datetime.now(UTC)
        return run
    run.log = (completed.stdout + completed.stderr).splitlines()
    failure = next((line for line in run.log if line.startswith(_MARK)), None)
    if failure:
        _, phase, command = failure.split(" ", 2)
        run.failed_phase = phase
        run.phase_context = (
            f"COMMAND_EXECUTION_ERROR: Error while executing command: {command[:300]}"
        )
    run.status = "SUCCEEDED" if completed.returncode == 0 and failure is None else "FAILED"
    run.ended_at = datetime.now(UTC)
    return run


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def state_change_event(
    run: BuildRun,
    overrides: dict[str, str],
    *,
    project: str,
    account: str = "123456789012",
    region: str = "us-east-1",
    log_group: str | None = None,
) -> dict[str, Any]:
    """AWS's ``CodeBuild Build State Change`` event for a local build.

    A run still ``IN_PROGRESS`` gives the event CodeBuild sends when a build starts
    (phase ``SUBMITTED``, not complete); a finished run gives the final one.
    """
    arn = f"arn:aws:codebuild:{region}:{account}:build/{run.build_id}"
    stream = run.build_id.split(":", 1)[1]
    finished = run.status != "IN_PROGRESS"
    phases = []
    if run.failed_phase:
        phases.append(
            {
                "phase-type": run.failed_phase,
                "phase-status": "FAILED",
                "phase-context": [run.phase_context or ""],
            }
        )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": account,
        "time": (run.ended_at if finished else run.started_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {
            "build-status": run.status,
            "project-name": project,
            "build-id": arn,
            "current-phase": "COMPLETED" if finished else "SUBMITTED",
            "current-phase-context": "[: ]",
            "version": "1",
            "additional-information": {
                "build-complete": finished,
                "initiator": "selfservice-provisioner",
                "build-start-time": run.started_at.strftime("%b %d, %Y %-I:%M:%S %p"),
                "source": {"type": "S3"},
                "phases": phases,
                "environment": {
                    "environment-variables": [
                        {"name": name, "type": "PLAINTEXT", "value": value}
                        for name, value in overrides.items()
                    ]
                },
                "logs": {
                    "group-name": log_group or f"/aws/codebuild/{project}",
                    "stream-name": stream,
                },
            },
        },
    }
