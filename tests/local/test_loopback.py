"""The local HTTP servers' shared base: many clients at once are queued, not dropped.

With the stdlib's listen backlog (5) a burst overflows the accept queue: the kernel resets
or drops connections (they time out), depending on its settings.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from typing import Any

import pytest

from selfservice.local import loopback
from selfservice.local.codebuild import CodeBuildEndpoint
from selfservice.local.eventbridge_front import EventBridgeFront
from selfservice.local.http_front import HttpFront
from selfservice.local.itsm_sandbox import ItsmSandbox
from selfservice.local.loopback import LoopbackServer
from selfservice.local.ssm_agent import SsmEndpoint

CLIENTS = 200


class _Function:
    """Answers every invocation at once, as a warm function would."""

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "body": "{}"}


def _burst(server: LoopbackServer) -> Counter[str]:
    """``CLIENTS`` connections opened at the same moment, each one GET: how each ended."""
    host, port = server.url.removeprefix("http://").split(":")
    start = threading.Barrier(CLIENTS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        start.wait()
        try:
            connection.request("GET", "/health")
            outcome = str(connection.getresponse().status)
        except OSError as exc:
            outcome = type(exc).__name__
        finally:
            connection.close()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _front() -> HttpFront:
    return HttpFront([("GET", "/health", _Function())]).start()


def test_every_local_server_shares_the_backlog() -> None:
    for server in (HttpFront, ItsmSandbox, CodeBuildEndpoint, SsmEndpoint, EventBridgeFront):
        assert issubclass(server, LoopbackServer), server
    assert loopback._Server.request_queue_size == loopback.LISTEN_BACKLOG >= CLIENTS // 2


def test_two_hundred_clients_at_once_are_all_answered_by_a_front() -> None:
    front = _front()
    try:
        assert _burst(front) == Counter({"200": CLIENTS})
    finally:
        front.stop()


def test_with_the_stdlib_backlog_of_5_part_of_a_burst_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loopback._Server, "request_queue_size", 5)
    front = _front()
    try:
        outcomes = _burst(front)
    finally:
        front.stop()
    assert outcomes["200"] < CLIENTS, outcomes


def _raise(error: BaseException) -> None:
    raise error


def _report(server: Any, error: BaseException) -> None:
    """What the server does when its handler raised ``error``."""
    try:
        _raise(error)
    except BaseException:  # noqa: BLE001 - handed to the server, as socketserver does
        server.handle_error(None, ("127.0.0.1", 1))


def test_a_client_that_hung_up_is_not_reported_as_an_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A sender that timed out (a fault test) leaves a broken pipe: no traceback for it."""
    server = loopback._Server(("127.0.0.1", 0), loopback.QuietHandler)
    try:
        _report(server, BrokenPipeError(32, "Broken pipe"))
        _report(server, ConnectionResetError(104, "reset"))
        _report(server, ValueError("a bug of ours"))
    finally:
        server.server_close()
    err = capfd.readouterr().err
    assert "BrokenPipeError" not in err
    assert "ConnectionResetError" not in err
    assert "ValueError: a bug of ours" in err  # every other error is still reported
