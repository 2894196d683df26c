"""The part of the CodeBuild API the provisioner calls, as a queue of local builds.

As in CodeBuild, a build runs with the credentials of the project's service role
(``credentials``: assumed as ``codebuild.amazonaws.com`` once per build); a retried
``StartBuild`` with the same idempotency token gets the same build.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfservice.local.build_runner import (
    BuildRun,
    make_workspace,
    run_buildspec,
    state_change_event,
)

__all__ = ["Credentials", "LocalCodeBuildClient", "QueuedBuild"]

Credentials = dict[str, str]
"""``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` for a build."""


@dataclass
class QueuedBuild:
    """A build asked for and not yet run: its id and its environment overrides."""

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
        self._queue: list[QueuedBuild] = []
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
                self._queue.append(QueuedBuild(build_id, overrides))
                self._queued.release()
        return {"build": {"id": build_id, "logs": {}}}

    def next_build(self, timeout: float | None = None) -> QueuedBuild | None:
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

    def refused(self, queued: QueuedBuild, context: str) -> tuple[BuildRun, dict[str, Any]]:
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

    def started(self, queued: QueuedBuild) -> dict[str, Any]:
        """The ``IN_PROGRESS`` state change CodeBuild sends as ``queued`` starts."""
        run = BuildRun(
            build_id=queued.build_id, status="IN_PROGRESS", failed_phase=None, phase_context=None
        )
        return state_change_event(run, queued.overrides, project=self._project, region=self._region)

    def run(self, queued: QueuedBuild) -> tuple[BuildRun, dict[str, Any]]:
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
