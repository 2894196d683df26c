"""A local CodeBuild endpoint: CodeBuild's JSON API on 127.0.0.1 around the local builds.

Builds run as in CodeBuild (:mod:`.build_runner`, queued by :mod:`.codebuild_client`);
this endpoint runs up to the project's concurrency of them at once, creates and
writes each build's log stream with the service role's credentials — a role that may
not create the stream fails the build before it starts (``ACCESS_DENIED`` in
``PROVISIONING``, CodeBuild's own wording) — puts the state changes on the bus, and
authorizes ``StartBuild`` itself against the caller's policies (``authorize``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

from selfservice.local.build_runner import BuildRun
from selfservice.local.codebuild_client import Credentials, LocalCodeBuildClient, QueuedBuild
from selfservice.local.loopback import LoopbackServer, QuietHandler

logger = logging.getLogger(__name__)

__all__ = ["AccessDeniedError", "CodeBuildEndpoint"]


class AccessDeniedError(Exception):
    """A caller's policies do not allow the call (answered as AWS answers it)."""

    def __init__(self, message: str, code: str = "AccessDeniedException") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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

    def _open_log(self, queued: QueuedBuild) -> tuple[Any, str | None]:
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
