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

import http.client
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from selfservice.local.loopback import LoopbackServer, QuietHandler

__all__ = ["EntryOutcome", "EventBridgeFront"]

PUT_EVENTS = "AWSEvents.PutEvents"
# Headers the front sets itself (the HTTP server adds Server and Date to every answer).
_HOP_BY_HOP = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "server",
    "date",
}


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

    def _forward(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to the embedded AWS; raises OSError when it does not answer."""
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP},
            )
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _put_events(
        self, path: str, headers: dict[str, str], request: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        entries: list[dict[str, Any]] = list(request.get("Entries") or [])
        failed = {i: self._take_failure(str(e.get("Source", ""))) for i, e in enumerate(entries)}
        forwarded = [e for i, e in enumerate(entries) if failed[i] is None]
        status, answer_headers, raw = 200, [("Content-Type", "application/x-amz-json-1.1")], b""
        upstream: list[dict[str, Any]] = []
        if forwarded:
            try:
                status, answer_headers, raw = self._forward(
                    path, headers, json.dumps({**request, "Entries": forwarded}).encode()
                )
            except OSError:
                self._give_back([failure for failure in failed.values() if failure])
                raise
            if status != 200:  # noqa: PLR2004 - the whole call failed upstream: pass it on
                return status, answer_headers, raw
            upstream = list(json.loads(raw).get("Entries", []))
        results: list[dict[str, Any]] = []
        outcomes: list[EntryOutcome] = []
        for index, entry in enumerate(entries):
            failure = failed[index]
            result = (
                {
                    "ErrorCode": failure.code,
                    "ErrorMessage": "injected by the local EventBridge front",
                }
                if failure is not None
                else upstream.pop(0)
            )
            results.append(result)
            outcomes.append(
                EntryOutcome(
                    str(entry.get("Source", "")),
                    str(entry.get("DetailType", "")),
                    _event_id(entry),
                    result.get("ErrorCode"),
                )
            )
        self._record(outcomes)
        body = {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}
        keep = [(k, v) for k, v in answer_headers if k.lower() not in _HOP_BY_HOP]
        return 200, keep, json.dumps(body).encode()

    def _handler(self) -> type[QuietHandler]:
        front = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                try:
                    if headers.get("X-Amz-Target") == PUT_EVENTS:
                        status, answer_headers, payload = front._put_events(
                            self.path, headers, json.loads(body or b"{}")
                        )
                    else:
                        status, answer_headers, payload = front._forward(self.path, headers, body)
                except OSError:
                    # The embedded AWS is not there: neither is its EventBridge.
                    self.close_connection = True
                    return
                self.send_body(
                    status,
                    payload,
                    {k: v for k, v in answer_headers if k.lower() not in _HOP_BY_HOP},
                )

        return Handler
