"""A function's execution environment as Lambda runs it: a worker process per function,
invoked one event at a time, its output shipped to its CloudWatch Logs group.

Its event sources are :mod:`.event_sources` (SQS pollers, schedules) and
:mod:`.http_front` (HTTP APIs).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, Protocol

from selfservice.templates import FunctionSpec

__all__ = ["FunctionWorker", "Invocable", "InvocationError", "LogShipper"]


_CREDENTIAL_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


class InvocationError(RuntimeError):
    """The function raised (Lambda reports it as a function error)."""


class Invocable(Protocol):
    """Something that takes a Lambda event and returns the function's result."""

    def invoke(self, event: dict[str, Any]) -> Any:
        """One invocation."""
        ...


class LogShipper:
    """Lambda's log delivery: a function's output lines into its CloudWatch Logs group.

    One log stream per execution environment, named as Lambda names them; lines are
    batched and put every ``interval`` seconds from a thread of their own, so a slow or
    stopped log endpoint never holds up the function (lines it refuses are counted in
    :attr:`dropped`, and stay in the local log file).
    """

    MAX_EVENT_BYTES = 200_000  # CloudWatch Logs takes events up to 256 KiB
    MAX_BATCH_EVENTS = 1000
    MAX_BATCH_BYTES = 900_000  # PutLogEvents takes up to 1 MiB (26 bytes of overhead each)

    def __init__(self, logs: Any, group: str, *, interval: float = 0.5) -> None:
        self.logs = logs
        self.group = group
        self.stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        self.interval = interval
        self.dropped = 0
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.ensure_stream()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def ensure_stream(self) -> None:
        """Create this environment's log stream (and the group, unless deployed already).

        As Lambda does: a group the template deployed (``LoggingConfig.LogGroup``) needs only
        ``logs:CreateLogStream``; ``logs:CreateLogGroup`` is asked for a missing group only.
        """
        try:
            self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        except self.logs.exceptions.ResourceNotFoundException:
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=self.group)
            self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def write(self, line: str) -> None:
        """Queue one line (one log event), stamped now."""
        text = line.rstrip("\n")
        if not text:
            return
        encoded = text.encode()
        if len(encoded) > self.MAX_EVENT_BYTES:
            text = encoded[: self.MAX_EVENT_BYTES].decode(errors="ignore")
        with self._lock:
            self._pending.append({"timestamp": int(time.time() * 1000), "message": text})

    def flush(self) -> None:
        """Put what is queued, in batches within PutLogEvents' limits."""
        with self._lock:
            pending, self._pending = self._pending, []
        while pending:
            batch: list[dict[str, Any]] = []
            size = 0
            while pending and len(batch) < self.MAX_BATCH_EVENTS:
                cost = len(pending[0]["message"].encode()) + 26
                if batch and size + cost > self.MAX_BATCH_BYTES:
                    break
                batch.append(pending.pop(0))
                size += cost
            try:
                self.logs.put_log_events(
                    logGroupName=self.group, logStreamName=self.stream, logEvents=batch
                )
            except Exception:  # noqa: BLE001 - logs are best effort, as Lambda's are
                self.dropped += len(batch)

    def close(self) -> None:
        """Ship what is left and stop."""
        self._closed.set()
        self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._closed.wait(self.interval):
            self.flush()


class FunctionWorker:
    """A function's execution environment (child process), invoked one event at a time.

    What the function writes (Powertools' JSON lines, tracebacks) goes to ``log_path``
    and, given a :class:`LogShipper`, to the function's CloudWatch Logs group as well.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        environment: dict[str, str],
        log_path: Path,
        shipper: LogShipper | None = None,
    ) -> None:
        self.spec = spec
        self.shipper = shipper
        self.credentials: dict[str, str] = {
            k: v for k, v in environment.items() if k in _CREDENTIAL_VARIABLES
        }
        """The execution role's credentials this environment was given (``AWS_*``)."""
        self._lock = threading.Lock()
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "selfservice.local.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",  # a function's odd bytes must not stop its output being read
            bufsize=1,
        )
        self._output = threading.Thread(target=self._copy_output, daemon=True)
        self._output.start()
        setup = {
            "name": spec.logical_id,
            "handler": spec.handler,
            "environment": environment,
            "paths": [str(p) for p in spec.import_paths],
            **({"log_group": shipper.group, "log_stream": shipper.stream} if shipper else {}),
        }
        self._stdin, self._stdout = self._pipes()
        self._stdin.write(json.dumps(setup) + "\n")
        ready = self._stdout.readline()
        if not ready:
            raise RuntimeError(f"{spec.describe()} did not start; see {log_path}")
        self.timeout_seconds = int(spec.properties.get("Timeout", 3))
        self.invocations = 0
        """Invocations so far, whoever invoked it (a poller, a schedule, the HTTP front)."""

    @property
    def pid(self) -> int:
        """The execution environment's process id (what its memory is read from)."""
        return self._process.pid

    def _copy_output(self) -> None:
        stderr = self._process.stderr
        if stderr is None:
            return
        for line in stderr:
            self._log.write(line.encode())
            self._log.flush()
            if self.shipper is not None:
                self.shipper.write(line)

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        if self._process.stdin is None or self._process.stdout is None:
            raise RuntimeError("the worker has no pipes")
        return self._process.stdin, self._process.stdout

    def invoke(self, event: dict[str, Any]) -> Any:
        """One invocation; the function's return value or :class:`InvocationError`."""
        request = {
            "event": event,
            "request_id": str(uuid.uuid4()),
            "deadline_ms": int(time.time() * 1000) + self.timeout_seconds * 1000,
        }
        with self._lock:
            self.invocations += 1
            self._stdin.write(json.dumps(request) + "\n")
            answer = json.loads(self._stdout.readline() or '{"error": "WorkerDied", "message": ""}')
        if "error" in answer:
            message = answer.get("message", "")[-1500:]
            trace = answer.get("trace", "")[-1500:]
            raise InvocationError(f"{answer['error']}: {message}\n{trace}")
        return answer["result"]

    def note(self, line: str) -> None:
        """A line from the runtime itself (not the function) in the function's log."""
        self._log.write(f"[local runtime] {line}\n".encode())
        self._log.flush()
        if self.shipper is not None:
            self.shipper.write(f"[local runtime] {line}")

    def stop(self) -> None:
        """End the process."""
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._output.join(timeout=5)
        self._log.close()
        if self.shipper is not None:
            self.shipper.close()
