"""Run functions the way Lambda does, from their template specs: a worker per function,
SQS pollers honouring batch size, partial batch failures and the queue's redrive, an
HTTP front for HTTP APIs (payload format 2.0), schedules (``rate(...)``) invoking
their function with what EventBridge Scheduler or a scheduled rule would send, and
each function's output shipped to its CloudWatch Logs group."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from selfservice.local.lambda_events import scheduled_event, scheduler_input, sqs_event
from selfservice.local.loopback import LoopbackServer, QuietHandler
from selfservice.local.sigv4 import Caller, SignatureError, verify
from selfservice.templates import FunctionSpec

__all__ = [
    "FunctionWorker",
    "HttpFront",
    "IamAuthorizer",
    "Invocable",
    "InvocationError",
    "LogShipper",
    "ScheduledRunner",
    "SqsPoller",
    "schedule_interval",
]


_CREDENTIAL_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


class InvocationError(RuntimeError):
    """The function raised (Lambda reports it as a function error)."""


class Invocable(Protocol):
    """Something that takes a Lambda event and returns the function's result."""

    def invoke(self, event: dict[str, Any]) -> Any:
        """One invocation."""
        ...


@dataclass(frozen=True)
class IamAuthorizer:
    """AWS_IAM authorization: the credentials the front accepts, by access key id, and
    (given ``authorize``) the IAM decision on ``execute-api:Invoke`` for the route, as
    API Gateway asks IAM: ``authorize(access_key_id, action, resources)`` raises to refuse."""

    credentials: dict[str, tuple[str, Caller]]
    region: str = "us-east-1"
    authorize: Callable[[str, str, list[str]], None] | None = None
    api_id: str = "local"


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


@dataclass
class SqsPoller:
    """Lambda's SQS event source: batches, partial failures, deletes what succeeded."""

    sqs: Any
    queue_url: str
    queue_name: str
    worker: FunctionWorker
    batch_size: int = 10
    batching_window_seconds: float = 0.0
    """``MaximumBatchingWindowInSeconds``: how long to gather a batch once one arrived."""
    stop_event: threading.Event = field(default_factory=threading.Event)
    invocations: int = 0
    last_problem: str | None = None
    """The last error polling met (e.g. AccessDenied on ``sqs:ReceiveMessage``)."""

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, 10),
            WaitTimeSeconds=wait,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        return messages

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns the batch size."""
        messages = self._receive(self.batch_size, 1)
        if not messages:
            return 0
        # Like Lambda: with a batching window, keep gathering until the batch is full
        # or the window (counted from the first message) closes.
        closes = time.monotonic() + self.batching_window_seconds
        while len(messages) < self.batch_size and (left := closes - time.monotonic()) > 0:
            wait = 1 if left >= 1 else 0
            more = self._receive(self.batch_size - len(messages), wait)
            if not more and not wait:
                time.sleep(min(left, 0.05))
            messages += more
        event = sqs_event(
            [m["Body"] for m in messages],
            queue=self.queue_name,
            receive_count=max(
                int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) for m in messages
            ),
            message_ids=[m["MessageId"] for m in messages],
            receipt_handles=[m["ReceiptHandle"] for m in messages],
        )
        self.invocations += 1
        try:
            response = self.worker.invoke(event) or {}
        except InvocationError:
            return len(messages)  # nothing is deleted: the whole batch comes back
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def run(self) -> None:
        """Poll until stopped.

        A failed receive (the execution role may not read the queue: Lambda reports
        ``PROBLEM: ... permission`` on the mapping) is written to the function's log
        once per kind of error, and polling goes on, as Lambda's does.
        """
        reported: set[str] = set()
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a poller outlives one bad batch, like Lambda's
                problem = f"{type(exc).__name__}: {exc}"
                if problem not in reported:
                    reported.add(problem)
                    self.last_problem = problem
                    self.worker.note(f"event source mapping for {self.queue_name}: {problem}")
                time.sleep(0.5)


_RATE = re.compile(r"^rate\((\d+) (minutes?|hours?|days?)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_interval(expression: str) -> float | None:
    """Seconds between runs of a ``rate(...)`` expression; None for ``cron``/``at``."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass
class ScheduledRunner:
    """A schedule (SAM ``ScheduleV2`` or ``Schedule``): the function invoked at its rate.

    Like Lambda's asynchronous invocation by a schedule, a failed run is counted and
    left behind; the next run comes at the next tick. The first run is one interval
    after the start, as a new schedule's is.
    """

    worker: Invocable
    interval_seconds: float
    kind: str = "ScheduleV2"
    input: str | None = None
    name: str = "schedule"
    stop_event: threading.Event = field(default_factory=threading.Event)
    invocations: int = 0
    last_problem: str | None = None
    """The last error polling met (e.g. AccessDenied on ``sqs:ReceiveMessage``)."""
    failures: int = 0

    def event(self, at: datetime) -> Any:
        """What the schedule sends at ``at``."""
        arn = f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{self.name}"
        if self.kind == "ScheduleV2":
            return scheduler_input(self.input, at=at, schedule_arn=arn)
        if self.input:
            return json.loads(self.input)
        return scheduled_event(
            at=at, rule_arn=f"arn:aws:events:us-east-1:123456789012:rule/{self.name}"
        )

    def tick(self) -> Any:
        """One run now; the function's result, or None if it failed."""
        self.invocations += 1
        try:
            return self.worker.invoke(self.event(datetime.now(UTC)))
        except InvocationError:
            self.failures += 1
            return None

    def run(self) -> None:
        """Run every interval until stopped."""
        while not self.stop_event.wait(self.interval_seconds):
            self.tick()


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{([^}/]+)\}", r"(?P<\1>[^/]+)", path) + "$")


UNAVAILABLE: dict[str, Any] = {
    "statusCode": 503,
    "headers": {"Content-Type": "application/json", "Retry-After": "5"},
    "body": json.dumps({"message": "Service Unavailable"}),
}
"""API Gateway's answer while the platform behind it is being restored."""


class HttpFront(LoopbackServer):
    """An HTTP API on 127.0.0.1: routes from the template, payload format 2.0."""

    def __init__(
        self, routes: Sequence[tuple[str, str, Invocable]], iam: IamAuthorizer | None = None
    ) -> None:
        self.iam = iam
        self.unavailable = False
        """While True, every route answers API Gateway's 503 with ``Retry-After``."""
        self.routes = [
            (method.upper(), _route_pattern(path), path, worker) for method, path, worker in routes
        ]
        super().__init__(self._handler())

    def refusal(self, access_key: str, method: str, path: str) -> str | None:
        """Why IAM refuses ``execute-api:Invoke`` on this route to the key, or None."""
        if self.iam is None or self.iam.authorize is None:
            return None
        arn = (
            f"arn:aws:execute-api:{self.iam.region}:123456789012:"
            f"{self.iam.api_id}/$default/{method}{path}"
        )
        try:
            self.iam.authorize(access_key, "execute-api:Invoke", [arn])
        except Exception as error:  # noqa: BLE001 - any refusal is API Gateway's 403
            return str(getattr(error, "message", error))
        return None

    def _handler(self) -> type[QuietHandler]:
        front = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                path = self.path.split("?", 1)[0]
                for method, pattern, template_path, worker in front.routes:
                    match = pattern.match(path)
                    if method == self.command and match:
                        length = int(self.headers.get("Content-Length") or 0)
                        raw = self.rfile.read(length) if length else b""
                        caller = None
                        if front.iam is not None:
                            try:
                                caller = verify(
                                    method=method,
                                    url=f"http://{self.headers.get('Host', '')}{self.path}",
                                    headers=dict(self.headers.items()),
                                    body=raw,
                                    secrets=front.iam.credentials,
                                    region=front.iam.region,
                                )
                            except SignatureError as error:
                                self._reply(403, error.body, {})
                                return
                            refusal = front.refusal(caller.access_key, method, path)
                            if refusal is not None:
                                self._reply(403, {"Message": refusal}, {})
                                return
                        try:
                            text, encoded = raw.decode("utf-8"), False
                        except UnicodeDecodeError:
                            text, encoded = base64.b64encode(raw).decode(), True
                        event = {
                            "version": "2.0",
                            "routeKey": f"{method} {template_path}",
                            "rawPath": path,
                            "rawQueryString": self.path.partition("?")[2],
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "requestContext": {
                                "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                                "requestId": str(uuid.uuid4()),
                                "routeKey": f"{method} {template_path}",
                                "stage": "$default",
                                "accountId": "123456789012",
                                **({"authorizer": caller.authorizer()} if caller else {}),
                            },
                            "pathParameters": match.groupdict() or None,
                            "body": text,
                            "isBase64Encoded": encoded,
                        }
                        try:
                            response = UNAVAILABLE if front.unavailable else worker.invoke(event)
                        except InvocationError:
                            self._reply(500, {"message": "Internal Server Error"}, {})
                            return
                        self._reply(
                            response.get("statusCode", 200),
                            response.get("body", ""),
                            response.get("headers") or {},
                        )
                        return
                self._reply(404, {"message": "Not Found"}, {})

            def _reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
                payload = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_body(status, payload, headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        return Handler
