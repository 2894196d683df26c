"""The EventBridge endpoint the local functions call: the embedded AWS's, with scripted failures.

EventBridge's ``PutEvents`` fails per entry: an HTTP 200 whose ``FailedEntryCount`` says
which entries did not reach the bus (``ThrottlingException``, ``InternalFailure``). moto
never answers that way for a valid entry, so the functions reach EventBridge through
this front (``AWS_ENDPOINT_URL_EVENTBRIDGE``). It passes every call through unchanged,
unless told to fail the next entries of a source (:meth:`EventBridgeFront.fail_entries`):
those are answered as failed and never forwarded, the rest of the call goes to the bus,
and the answer is merged back in the order of the request — as EventBridge answers.

When the embedded AWS does not answer, neither does the front: the connection is closed
without a response, so a caller sees what it would see without the front.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from selfservice.local.loopback import LoopbackServer, QuietHandler, forward

__all__ = ["EntryOutcome", "EventBridgeFront"]

PUT_EVENTS = "AWSEvents.PutEvents"
# A local front that forwards a signed call with a changed body names the hash of the
# body that was signed (see docs/iam-enforcement.md).
SIGNED_PAYLOAD_HEADER = "X-Selfservice-Signed-Payload-Sha256"
_JSON = {"Content-Type": "application/x-amz-json-1.1"}


@dataclass(frozen=True)
class EntryOutcome:
    """What became of one ``PutEvents`` entry that came through the front."""

    source: str
    detail_type: str
    event_id: str | None
    """The CloudEvent id carried in ``Detail`` (None when the detail is not one)."""
    error_code: str | None
    """None: the entry went on to the bus; else the code the caller was answered."""


@dataclass
class _Failure:
    source: str | None
    code: str


def _event_id(entry: dict[str, Any]) -> str | None:
    try:
        detail = json.loads(entry.get("Detail") or "")
    except ValueError:
        return None
    value = detail.get("id") if isinstance(detail, dict) else None
    return value if isinstance(value, str) else None


class EventBridgeFront(LoopbackServer):
    """A pass-through to the embedded AWS that can fail ``PutEvents`` entries on request."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self.entries: list[EntryOutcome] = []
        """Every ``PutEvents`` entry seen, in order, with what became of it."""
        super().__init__(self._handler())

    def fail_entries(
        self, count: int, *, source: str | None = None, code: str = "InternalFailure"
    ) -> None:
        """Fail the next ``count`` entries (of ``source``, or of any source) with ``code``."""
        with self._lock:
            self._failures.extend(_Failure(source, code) for _ in range(count))

    @property
    def pending_failures(self) -> int:
        """Scripted failures not used yet."""
        with self._lock:
            return len(self._failures)

    def outcomes(self, event_id: str) -> list[str | None]:
        """What happened to each entry that carried ``event_id`` (None: put on the bus)."""
        with self._lock:
            return [e.error_code for e in self.entries if e.event_id == event_id]

    def _take_failure(self, source: str) -> _Failure | None:
        with self._lock:
            for index, failure in enumerate(self._failures):
                if failure.source in (None, source):
                    return self._failures.pop(index)
        return None

    def _give_back(self, failures: list[_Failure]) -> None:
        """Failures taken for a call that never got through are used by the next one."""
        with self._lock:
            self._failures[:0] = failures

    def _record(self, outcomes: list[EntryOutcome]) -> None:
        with self._lock:
            self.entries.extend(outcomes)

    def _put_events(
        self, path: str, headers: list[tuple[str, str]], raw_request: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        request = json.loads(raw_request or b"{}")
        entries: list[dict[str, Any]] = list(request.get("Entries") or [])
        failed = {i: self._take_failure(str(e.get("Source", ""))) for i, e in enumerate(entries)}
        injected = any(failed.values())
        forwarded = [e for i, e in enumerate(entries) if failed[i] is None]
        status, answer_headers, raw = 200, dict(_JSON), b""
        upstream: list[dict[str, Any]] = []
        if forwarded:
            # Nothing injected (the usual case): the call goes on as it came.
            body = json.dumps({**request, "Entries": forwarded}).encode() if injected else None
            if body is not None:
                # The caller signed the whole call; the embedded AWS checks that signature
                # over the body the caller sent, which the front declares.
                signed = hashlib.sha256(raw_request).hexdigest()
                headers = [*headers, (SIGNED_PAYLOAD_HEADER, signed)]
            try:
                status, answer_headers, raw = forward(
                    self._upstream, "POST", path, headers, body or raw_request
                )
            except OSError:
                self._give_back([failure for failure in failed.values() if failure])
                raise
            if status != 200:  # noqa: PLR2004 - the whole call failed upstream: pass it on
                return status, answer_headers, raw
            upstream = list(json.loads(raw).get("Entries", []))
        results = iter(upstream)
        answers = [
            {"ErrorCode": failure.code, "ErrorMessage": "injected by the local EventBridge front"}
            if (failure := failed[index]) is not None
            else next(results)
            for index in range(len(entries))
        ]
        self._record(
            [
                EntryOutcome(
                    str(entry.get("Source", "")),
                    str(entry.get("DetailType", "")),
                    _event_id(entry),
                    answer.get("ErrorCode"),
                )
                for entry, answer in zip(entries, answers, strict=True)
            ]
        )
        if not injected:
            return status, answer_headers, raw
        merged = {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}
        return 200, answer_headers, json.dumps(merged).encode()

    def _handler(self) -> type[QuietHandler]:
        front = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = self.headers.items()
                try:
                    if self.headers.get("X-Amz-Target") == PUT_EVENTS:
                        status, answer_headers, payload = front._put_events(
                            self.path, headers, body
                        )
                    else:
                        status, answer_headers, payload = forward(
                            front._upstream, "POST", self.path, headers, body
                        )
                except OSError:
                    # The embedded AWS is not there: neither is its EventBridge.
                    self.close_connection = True
                    return
                self.send_body(status, payload, answer_headers)

        return Handler
