"""A local CodeBuild: run the provisioner's buildspec the way CodeBuild does.

The bundle (buildspec, build tools, products) is copied into a fresh workspace per
build, the phases run in one bash shell (so ``cd`` carries over, as in buildspec 0.2)
with the project's environment plus the build's overrides, and the result takes the
shape of AWS's ``CodeBuild Build State Change`` event so the real handler consumes it.
Phase rules follow CodeBuild: a failed INSTALL or PRE_BUILD skips the rest; a failed
BUILD still runs POST_BUILD.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import yaml

from selfservice.local.loopback import LoopbackServer, QuietHandler

__all__ = [
    "BUNDLE_PATHS",
    "BuildRun",
    "CodeBuildEndpoint",
    "LocalCodeBuildClient",
    "make_workspace",
    "run_buildspec",
    "state_change_event",
]

BUNDLE_PATHS = (
    "services/provisioner/buildspec.yml",
    "services/provisioner/buildtools",
    "services/provisioner/products",
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
    completed = subprocess.run(  # noqa: S603 - bash running our own buildspec
        ["bash", "-c", _script(spec)],  # noqa: S607
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
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


def state_change_event(
    run: BuildRun,
    overrides: dict[str, str],
    *,
    project: str,
    account: str = "123456789012",
    region: str = "us-east-1",
    log_group: str | None = None,
) -> dict[str, Any]:
    """AWS's ``CodeBuild Build State Change`` event for a finished local build."""
    arn = f"arn:aws:codebuild:{region}:{account}:build/{run.build_id}"
    stream = run.build_id.split(":", 1)[1]
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
        "time": run.ended_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {
            "build-status": run.status,
            "project-name": project,
            "build-id": arn,
            "current-phase": "COMPLETED",
            "current-phase-context": "[: ]",
            "version": "1",
            "additional-information": {
                "build-complete": True,
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


@dataclass
class _Queued:
    build_id: str
    overrides: dict[str, str]


class LocalCodeBuildClient:
    """The part of the CodeBuild API the provisioner calls, running builds locally.

    ``start_build`` honours the idempotency token (a retried attempt gets the same
    build) and queues the build; :meth:`run_pending` runs queued builds in order and
    returns their ``CodeBuild Build State Change`` events for delivery.
    """

    def __init__(
        self,
        root: Path,
        workdir: Path,
        *,
        project: str,
        project_environment: dict[str, str],
        base_environment: dict[str, str],
        region: str = "us-east-1",
    ) -> None:
        self._root = root
        self._workdir = workdir
        self._project = project
        self._project_env = project_environment
        self._base_env = base_environment
        self._region = region
        self._tokens: dict[str, str] = {}
        self._queue: list[_Queued] = []
        self._faults: list[dict[str, str]] = []
        self.runs: list[BuildRun] = []
        self.requested_at: dict[str, float] = {}
        """Epoch time each build's StartBuild arrived (benchmarks: webhook → StartBuild)."""
        self.reported_at: dict[str, float] = {}
        """Epoch time each build's final state change was put on the bus."""

    def inject_fault(self, environment: dict[str, str] | None = None) -> None:
        """Make the next build fail for real, as a broken Terraform run would.

        The default adds an argument ``terraform apply`` rejects (``TF_CLI_ARGS_apply``):
        the buildspec really runs, Terraform really fails in the BUILD phase, and the
        state change reports FAILED — for fault-injection tests and demos.
        """
        self._faults.append(environment or {"TF_CLI_ARGS_apply": "-injected-fault"})

    def start_build(
        self,
        *,
        projectName: str,  # noqa: N803 - the CodeBuild API's parameter names
        idempotencyToken: str,  # noqa: N803
        environmentVariablesOverride: list[dict[str, str]],  # noqa: N803
    ) -> dict[str, Any]:
        """Queue a build (or return the one this token already started)."""
        if projectName != self._project:
            raise ValueError(f"no such project {projectName}")
        build_id = self._tokens.get(idempotencyToken)
        if build_id is None:
            build_id = f"{projectName}:{uuid.uuid4()}"
            self._tokens[idempotencyToken] = build_id
            self.requested_at[build_id] = time.time()
            overrides = {item["name"]: item["value"] for item in environmentVariablesOverride}
            self._queue.append(_Queued(build_id, overrides))
        return {"build": {"id": build_id, "logs": {}}}

    def run_pending(self) -> list[dict[str, Any]]:
        """Run every queued build; their state-change events, in order."""
        events = []
        while self._queue:
            queued = self._queue.pop(0)
            workspace = make_workspace(self._root, self._workdir / queued.build_id.split(":", 1)[1])
            environment = {**self._base_env, **self._project_env, **queued.overrides}
            if self._faults:
                environment.update(self._faults.pop(0))
            run = run_buildspec(workspace, environment, project=self._project)
            run.build_id = queued.build_id
            self.runs.append(run)
            events.append(
                state_change_event(
                    run, queued.overrides, project=self._project, region=self._region
                )
            )
        return events


class CodeBuildEndpoint(LoopbackServer):
    """CodeBuild's JSON API on 127.0.0.1 (``AWS_ENDPOINT_URL_CODEBUILD`` points here).

    ``StartBuild`` queues a build on the :class:`LocalCodeBuildClient`; a worker thread
    runs queued builds one after another, writes each build's log to CloudWatch Logs
    and puts its ``CodeBuild Build State Change`` event on the default bus, where the
    templates' rule picks it up — as CodeBuild itself does.
    """

    def __init__(
        self, client: LocalCodeBuildClient, *, events: Any, logs: Any, log_group: str
    ) -> None:
        self.client = client
        self._events = events
        self._logs = logs
        self._log_group = log_group
        self._wake = threading.Event()
        self._stop = threading.Event()
        super().__init__(self._handler())
        self._builder = threading.Thread(target=self._run_builds, daemon=True)
        self.finished: list[dict[str, Any]] = []

    def start(self) -> Self:
        """Serve, and run builds in a thread of their own."""
        with contextlib.suppress(Exception):
            self._logs.create_log_group(logGroupName=self._log_group)
        self._builder.start()
        return super().start()

    def stop(self) -> None:
        """Stop serving (a running build finishes in its own process)."""
        self._stop.set()
        self._wake.set()
        super().stop()

    def _run_builds(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1)
            self._wake.clear()
            for event in self.client.run_pending():
                run = self.client.runs[-1]
                stream = run.build_id.split(":", 1)[1]
                with contextlib.suppress(Exception):
                    self._logs.create_log_stream(logGroupName=self._log_group, logStreamName=stream)
                    base = int(run.started_at.timestamp() * 1000)
                    self._logs.put_log_events(
                        logGroupName=self._log_group,
                        logStreamName=stream,
                        logEvents=[
                            {"timestamp": base + i, "message": line or " "}
                            for i, line in enumerate(run.log[-5000:])
                        ],
                    )
                event["detail"]["additional-information"]["logs"]["group-name"] = self._log_group
                self._events.put_events(
                    Entries=[
                        {
                            "Source": event["source"],
                            "DetailType": event["detail-type"],
                            "Detail": json.dumps(event["detail"]),
                            "Resources": event["resources"],
                        }
                    ]
                )
                self.client.reported_at[run.build_id] = time.time()
                self.finished.append(event)

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                target = self.headers.get("X-Amz-Target", "")
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                status, body = (
                    400,
                    {"__type": "InvalidInputException", "message": f"unsupported {target}"},
                )
                if target.endswith(".StartBuild"):
                    try:
                        body = endpoint.client.start_build(
                            projectName=request["projectName"],
                            idempotencyToken=request.get("idempotencyToken", str(uuid.uuid4())),
                            environmentVariablesOverride=request.get(
                                "environmentVariablesOverride", []
                            ),
                        )
                        status = 200
                        endpoint._wake.set()
                    except ValueError as exc:
                        status, body = (
                            400,
                            {"__type": "ResourceNotFoundException", "message": str(exc)},
                        )
                self.send_body(
                    status,
                    json.dumps(body, default=str).encode(),
                    {"Content-Type": "application/x-amz-json-1.1"},
                )

        return Handler
