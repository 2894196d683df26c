"""A local CodeBuild: run the provisioner's buildspec the way CodeBuild does.

The bundle (buildspec, build tools, products) is copied into a fresh workspace per
build, the phases run in one bash shell (so ``cd`` carries over, as in buildspec 0.2)
with the project's environment plus the build's overrides, and the result takes the
shape of AWS's ``CodeBuild Build State Change`` event so the real handler consumes it.
Phase rules follow CodeBuild: a failed INSTALL or PRE_BUILD skips the rest; a failed
BUILD still runs POST_BUILD.

As in CodeBuild, a build runs with the credentials of the project's service role
(``credentials``: assumed as ``codebuild.amazonaws.com`` once per build), and its log
stream is created and written with them: a role that may not create the stream fails
the build before it starts (``ACCESS_DENIED`` in ``PROVISIONING``, CodeBuild's own
wording), and ``StartBuild`` itself is authorized against the caller's policies
(``authorize``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import yaml

from selfservice.local.loopback import LoopbackServer, QuietHandler

logger = logging.getLogger(__name__)

__all__ = [
    "BUNDLE_PATHS",
    "AccessDeniedError",
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


class AccessDeniedError(Exception):
    """A caller's policies do not allow the call (answered as AWS answers it)."""

    def __init__(self, message: str, code: str = "AccessDeniedException") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Credentials = dict[str, str]
"""``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` for a build."""


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


@dataclass
class _Queued:
    build_id: str
    overrides: dict[str, str]


class LocalCodeBuildClient:
    """The part of the CodeBuild API the provisioner calls, running builds locally.

    ``start_build`` honours the idempotency token (a retried attempt gets the same
    build) and queues the build. :meth:`next_build` hands queued builds out one at a
    time and :meth:`run` runs one, so several may run at once (the endpoint bounds how
    many); :meth:`run_pending` runs every queued build in order and returns their
    ``CodeBuild Build State Change`` events for delivery. Thread-safe.
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
        timeout_seconds: int = 3600,
        credentials: Callable[[str], Credentials] | None = None,
    ) -> None:
        self._root = root
        self._credentials = credentials
        self._build_credentials: dict[str, Credentials] = {}
        self._workdir = workdir
        self._project = project
        self._project_env = project_environment
        self._base_env = base_environment
        self._region = region
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._queue: list[_Queued] = []
        self._queued = threading.Semaphore(0)
        self._faults: list[dict[str, str]] = []
        self.runs: list[BuildRun] = []
        """Finished builds, in the order they finished."""
        self.requested_at: dict[str, float] = {}
        """Epoch time each build's StartBuild arrived (benchmarks: webhook → StartBuild)."""
        self.reported_at: dict[str, float] = {}
        """Epoch time each build's final state change was put on the bus."""

    @property
    def region(self) -> str:
        """The region its builds run in."""
        return self._region

    def inject_fault(self, environment: dict[str, str] | None = None) -> None:
        """Make the next build fail for real, as a broken Terraform run would.

        The default adds an argument ``terraform apply`` rejects (``TF_CLI_ARGS_apply``):
        the buildspec really runs, Terraform really fails in the BUILD phase, and the
        state change reports FAILED — for fault-injection tests and demos.
        """
        with self._lock:
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
        with self._lock:
            build_id = self._tokens.get(idempotencyToken)
            if build_id is None:
                build_id = f"{projectName}:{uuid.uuid4()}"
                self._tokens[idempotencyToken] = build_id
                self.requested_at[build_id] = time.time()
                overrides = {item["name"]: item["value"] for item in environmentVariablesOverride}
                self._queue.append(_Queued(build_id, overrides))
                self._queued.release()
        return {"build": {"id": build_id, "logs": {}}}

    def next_build(self, timeout: float | None = None) -> _Queued | None:
        """Take the oldest queued build, waiting up to ``timeout`` s for one (None: don't)."""
        if not self._queued.acquire(blocking=timeout is not None, timeout=timeout):
            return None
        with self._lock:
            return self._queue.pop(0)

    def credentials_for(self, build_id: str) -> Credentials:
        """The service role's credentials for one build (assumed once per build; empty:
        the base environment's)."""
        if self._credentials is None:
            return {}
        with self._lock:
            known = self._build_credentials.get(build_id)
        if known is None:
            known = self._credentials(build_id)
            with self._lock:
                self._build_credentials[build_id] = known
        return known

    def refused(self, queued: _Queued, context: str) -> tuple[BuildRun, dict[str, Any]]:
        """A build CodeBuild could not start: FAILED in PROVISIONING with ``context``."""
        run = BuildRun(
            build_id=queued.build_id,
            status="FAILED",
            failed_phase="PROVISIONING",
            phase_context=context[:1000],
            log=[f"[Container] {context}"],
        )
        with self._lock:
            self.runs.append(run)
            self._build_credentials.pop(queued.build_id, None)
        return run, state_change_event(
            run, queued.overrides, project=self._project, region=self._region
        )

    def started(self, queued: _Queued) -> dict[str, Any]:
        """The ``IN_PROGRESS`` state change CodeBuild sends as ``queued`` starts."""
        run = BuildRun(
            build_id=queued.build_id, status="IN_PROGRESS", failed_phase=None, phase_context=None
        )
        return state_change_event(run, queued.overrides, project=self._project, region=self._region)

    def run(self, queued: _Queued) -> tuple[BuildRun, dict[str, Any]]:
        """Run one build in a workspace of its own; the run and its final state change.

        A build that cannot even start (an unreadable buildspec, a workspace that cannot
        be made) fails alone, as CodeBuild reports it: FAILED in PROVISIONING.
        """
        try:
            workspace = make_workspace(self._root, self._workdir / queued.build_id.split(":", 1)[1])
            environment = {
                **self._base_env,
                **self.credentials_for(queued.build_id),
                **self._project_env,
                **queued.overrides,
                # Set by CodeBuild in every build (the buildspec reads account and partition).
                "CODEBUILD_BUILD_ARN": (
                    f"arn:aws:codebuild:{self._region}:123456789012:build/{queued.build_id}"
                ),
            }
            with self._lock:
                if self._faults:
                    environment.update(self._faults.pop(0))
            run = run_buildspec(
                workspace, environment, project=self._project, timeout_seconds=self._timeout
            )
        except Exception as exc:  # noqa: BLE001 - a broken build must not stop the others
            run = BuildRun(
                build_id=queued.build_id,
                status="FAILED",
                failed_phase="PROVISIONING",
                phase_context=f"CLIENT_ERROR: {type(exc).__name__}: {exc}"[:300],
                log=[f"local CodeBuild could not run the build: {exc!r}"],
            )
        run.build_id = queued.build_id
        with self._lock:
            self.runs.append(run)
            self._build_credentials.pop(queued.build_id, None)
        event = state_change_event(
            run, queued.overrides, project=self._project, region=self._region
        )
        return run, event

    def run_pending(self) -> list[dict[str, Any]]:
        """Run every queued build, one after another; their final state changes, in order."""
        events = []
        while (queued := self.next_build()) is not None:
            events.append(self.run(queued)[1])
        return events


PUT_FIRST_RETRY_SECONDS = 0.1
PUT_MAX_RETRY_SECONDS = 5.0
"""Backoff between attempts to put a state change on an unreachable bus."""


class CodeBuildEndpoint(LoopbackServer):
    """CodeBuild's JSON API on 127.0.0.1 (``AWS_ENDPOINT_URL_CODEBUILD`` points here).

    ``StartBuild`` queues a build on the :class:`LocalCodeBuildClient`. Up to
    ``concurrency`` builds run at once (the project's ``ConcurrentBuildLimit`` in the
    runtime), each in its own process tree and workspace. Every build puts the real
    ``CodeBuild Build State Change`` events on the default bus — ``IN_PROGRESS`` when it
    starts, then ``SUCCEEDED`` or ``FAILED`` — and writes its log to CloudWatch Logs, as
    CodeBuild itself does; the templates' rules pick the events up from there.

    ``ListBuilds``, ``ListBuildsForProject`` and ``BatchGetBuilds`` answer for the builds
    it ran (an AWS CLI pointed here with ``AWS_ENDPOINT_URL_CODEBUILD`` sees them), and
    each build's log link (``logs.deepLink`` of ``StartBuild`` and ``BatchGetBuilds``,
    ``deep-link`` of the state changes — what CodeBuild points at the console with) is
    :meth:`log_url`, where ``GET`` serves the build's log.
    """

    def __init__(
        self,
        client: LocalCodeBuildClient,
        *,
        events: Any,
        logs: Any,
        log_group: str,
        concurrency: int = 1,
        logs_as: Callable[[Credentials], Any] | None = None,
        authorize: Callable[[str, list[str], dict[str, str], bytes, str], None] | None = None,
    ) -> None:
        """``logs_as`` gives a CloudWatch Logs client using a build's credentials (the
        service role's); ``authorize(action, resources, headers, body, path)`` raises
        :class:`AccessDeniedError` for a call the signer may not make."""
        if concurrency < 1:
            raise ValueError(f"build concurrency must be at least 1, not {concurrency}")
        self.client = client
        self.concurrency = concurrency
        self._events = events
        self._logs = logs
        self._log_group = log_group
        self._logs_as = logs_as
        self._authorize = authorize
        self._stop = threading.Event()
        self._lock = threading.Lock()
        super().__init__(self._handler())
        self._builders = [
            threading.Thread(target=self._run_builds, name=f"codebuild-{n}", daemon=True)
            for n in range(concurrency)
        ]
        self.started: list[dict[str, Any]] = []
        """Every ``IN_PROGRESS`` state change (put on the bus, or in :attr:`undelivered`)."""
        self.finished: list[dict[str, Any]] = []
        """Every final state change (put on the bus, or in :attr:`undelivered`)."""
        self.put_retries = 0
        """How often putting a state change on the bus had to be tried again."""
        self.undelivered: list[dict[str, Any]] = []
        """State changes still failing when the runtime stopped."""

    def start(self) -> Self:
        """Serve, and run builds in ``concurrency`` threads of their own."""
        with contextlib.suppress(Exception):
            self._logs.create_log_group(logGroupName=self._log_group)
        for builder in self._builders:
            builder.start()
        return super().start()

    def stop(self) -> None:
        """Stop serving (a running build finishes in its own process)."""
        self._stop.set()
        super().stop()

    def log_url(self, build_id: str) -> str:
        """Where this endpoint serves a build's log (``GET``; plain text)."""
        return f"{self.url}/builds/{build_id.split(':', 1)[-1]}/log"

    def build_ids(self) -> list[str]:
        """Every build it was asked for, newest first (``ListBuilds``)."""
        requested = dict(self.client.requested_at)
        return sorted(requested, key=lambda b: requested[b], reverse=True)

    def describe_build(self, build_id: str) -> dict[str, Any] | None:
        """One build as ``BatchGetBuilds`` answers it, or None when it never existed."""
        requested = self.client.requested_at.get(build_id)
        if requested is None:
            return None
        run = next((r for r in list(self.client.runs) if r.build_id == build_id), None)
        arn = f"arn:aws:codebuild:{self.client.region}:123456789012:build/{build_id}"
        with self._lock:
            started = any(e["detail"]["build-id"] == arn for e in self.started)
        build: dict[str, Any] = {
            "id": build_id,
            "arn": arn,
            "projectName": build_id.split(":", 1)[0],
            "buildStatus": run.status if run else "IN_PROGRESS",
            "currentPhase": "COMPLETED" if run else ("BUILD" if started else "QUEUED"),
            "buildComplete": run is not None,
            "startTime": run.started_at.timestamp() if run else requested,
            "logs": {
                "groupName": self._log_group,
                "streamName": build_id.split(":", 1)[-1],
                "deepLink": self.log_url(build_id),
            },
        }
        if run is not None:
            build["endTime"] = run.ended_at.timestamp()
            if run.failed_phase:
                build["phases"] = [
                    {
                        "phaseType": run.failed_phase,
                        "phaseStatus": "FAILED",
                        "contexts": [{"message": run.phase_context or ""}],
                    }
                ]
        return build

    def build_log(self, stream: str) -> str | None:
        """A build's log by its stream (the id after the project), or None if unknown."""
        for run in list(self.client.runs):
            if run.build_id.split(":", 1)[-1] == stream:
                return "\n".join(run.log) + "\n"
        if any(b.split(":", 1)[-1] == stream for b in self.client.requested_at):
            return "the build is still running: its log is here once it ends\n"
        return None

    def _run_builds(self) -> None:
        while not self._stop.is_set():
            queued = self.client.next_build(timeout=0.5)
            if queued is None:
                continue
            started = self.client.started(queued)
            started["detail"]["additional-information"]["logs"]["deep-link"] = self.log_url(
                queued.build_id
            )
            self._put(started)
            with self._lock:
                self.started.append(started)
            logs, refusal = self._open_log(queued)
            if refusal is not None:
                run, event = self.client.refused(queued, refusal)
            else:
                run, event = self.client.run(queued)
            self._ship_log(run, logs)
            event["detail"]["additional-information"]["logs"]["group-name"] = self._log_group
            event["detail"]["additional-information"]["logs"]["deep-link"] = self.log_url(
                run.build_id
            )
            self._put(event)
            self.client.reported_at[run.build_id] = time.time()
            with self._lock:
                self.finished.append(event)

    def _open_log(self, queued: _Queued) -> tuple[Any, str | None]:
        """Create the build's log stream as its service role, as CodeBuild does first.

        Returns the logs client to write with, and CodeBuild's refusal when the role
        may not create the stream (the build then fails before it starts).
        """
        stream = queued.build_id.split(":", 1)[1]
        if self._logs_as is None:
            logs = self._logs
        else:
            try:
                logs = self._logs_as(self.client.credentials_for(queued.build_id))
            except Exception as exc:  # noqa: BLE001 - the role cannot even be assumed
                return self._logs, (
                    f"CLIENT_ERROR: CodeBuild cannot assume the project's service role: {exc}"
                )
        try:
            logs.create_log_stream(logGroupName=self._log_group, logStreamName=stream)
        except Exception as exc:  # noqa: BLE001 - sorted below
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if "AccessDenied" in code:
                logger.error("build %s: %s", queued.build_id, exc)  # noqa: TRY400 - no trace
                return self._logs, (
                    "ACCESS_DENIED: Service role is not allowed to create Amazon CloudWatch "
                    f"Logs log streams for build {queued.build_id}: {exc}"
                )
            logger.warning("build %s: log stream not created: %s", queued.build_id, exc)
        return logs, None

    def _ship_log(self, run: BuildRun, logs: Any) -> None:
        stream = run.build_id.split(":", 1)[1]
        base = int(run.started_at.timestamp() * 1000)
        try:
            logs.put_log_events(
                logGroupName=self._log_group,
                logStreamName=stream,
                logEvents=[
                    {"timestamp": base + i, "message": line or " "}
                    for i, line in enumerate(run.log[-5000:])
                ],
            )
        except Exception as exc:  # noqa: BLE001 - the build's outcome stands; say why
            logger.error("build %s: log not delivered: %s", run.build_id, exc)  # noqa: TRY400

    def _put(self, event: dict[str, Any]) -> None:
        """Put one state change on the default bus, retried until it lands.

        CodeBuild's own delivery to EventBridge is at least once; a bus that is briefly
        unreachable (the embedded AWS restarting) or a failed entry must delay the
        event, not lose it or end this builder thread. Only a runtime that is stopping
        gives up, and keeps the event in :attr:`undelivered`.
        """
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event["resources"],
        }
        delay = PUT_FIRST_RETRY_SECONDS
        for attempt in itertools.count(1):
            try:
                reply = self._events.put_events(Entries=[entry])
                if not reply.get("FailedEntryCount"):
                    return
                problem = str(reply.get("Entries", [{}])[0].get("ErrorCode", "failed entry"))
            except Exception as exc:  # noqa: BLE001 - any failure is retried below
                problem = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.put_retries += 1
            if attempt == 1 or attempt % 10 == 0:
                logger.warning(
                    "build state change %s not on the bus yet (attempt %d): %s",
                    event["detail"]["build-id"],
                    attempt,
                    problem,
                )
            if self._stop.wait(delay):
                with self._lock:
                    self.undelivered.append(event)
                logger.error("build state change %s not delivered", event["detail"]["build-id"])
                return
            delay = min(delay * 2, PUT_MAX_RETRY_SECONDS)

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                target = self.headers.get("X-Amz-Target", "")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                request = json.loads(raw or b"{}")
                status = 400
                body: dict[str, Any] = {
                    "__type": "InvalidInputException",
                    "message": f"unsupported {target}",
                }
                action = target.rpartition(".")[2]
                if action == "ListBuilds":
                    projects = ["*"]  # CodeBuild authorizes ListBuilds on no resource
                elif action == "BatchGetBuilds":
                    projects = sorted({b.split(":", 1)[0] for b in request.get("ids", [])})
                else:
                    projects = [request.get("projectName", "*")]
                resources = [
                    "*"
                    if p == "*"
                    else f"arn:aws:codebuild:{endpoint.client.region}:123456789012:project/{p}"
                    for p in projects
                ]
                if endpoint._authorize is not None:
                    try:
                        endpoint._authorize(
                            f"codebuild:{action}",
                            resources,
                            dict(self.headers.items()),
                            raw,
                            self.path,
                        )
                    except AccessDeniedError as exc:
                        self.send_body(
                            400,
                            json.dumps({"__type": exc.code, "message": exc.message}).encode(),
                            {"Content-Type": "application/x-amz-json-1.1"},
                        )
                        return
                if action in {"ListBuilds", "ListBuildsForProject"}:
                    project = request.get("projectName")
                    ids = [b for b in endpoint.build_ids() if project in {None, b.split(":", 1)[0]}]
                    status, body = 200, {"ids": ids}
                elif action == "BatchGetBuilds":
                    found = {b: endpoint.describe_build(b) for b in request.get("ids", [])}
                    status, body = (
                        200,
                        {
                            "builds": [b for b in found.values() if b],
                            "buildsNotFound": [i for i, b in found.items() if not b],
                        },
                    )
                elif target.endswith(".StartBuild"):
                    try:
                        body = endpoint.client.start_build(
                            projectName=request["projectName"],
                            idempotencyToken=request.get("idempotencyToken", str(uuid.uuid4())),
                            environmentVariablesOverride=request.get(
                                "environmentVariablesOverride", []
                            ),
                        )
                        body["build"]["logs"]["deepLink"] = endpoint.log_url(body["build"]["id"])
                        status = 200
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

            def do_GET(self) -> None:  # noqa: N802 - the stdlib handler protocol
                match = re.fullmatch(r"/builds/([^/]+)/log", self.path.split("?", 1)[0])
                text = endpoint.build_log(match.group(1)) if match else None
                self.send_body(
                    404 if text is None else 200,
                    (text or "no such build\n").encode(),
                    {"Content-Type": "text/plain; charset=utf-8"},
                )

        return Handler
