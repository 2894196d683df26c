"""An ITSM sandbox on 127.0.0.1: the ServiceNow Table API and Jira REST, just enough.

It keeps what write-back did (work notes, comments, states, transitions) so tests and
the demo can show it, checks credentials like the real APIs (basic auth; ServiceNow
OAuth client credentials), and can be scripted to misbehave: answer a status (429 with
Retry-After, 503, 500, 409…), stall past a client's timeout, or be down.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from selfservice.local import seed
from selfservice.local.loopback import LoopbackServer, QuietHandler

__all__ = ["ACCOUNTS", "Fault", "ItsmSandbox"]


@dataclass
class Fault:
    """One scripted answer: a status with headers, or a stall of ``delay`` seconds first."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class _State:
    servicenow: dict[str, dict[str, Any]] = field(default_factory=dict)
    journal: list[dict[str, Any]] = field(default_factory=list)
    jira_comments: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    jira_status: dict[str, str] = field(default_factory=dict)
    jsm_comments: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tokens: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)


_SEED = seed.load("itsm")
ACCOUNTS: dict[str, dict[str, str]] = _SEED["accounts"]
"""System → the ``username`` and ``password`` its basic auth accepts by default."""
JIRA_TRANSITIONS = {
    name: (str(transition["id"]), str(transition["status"]))
    for name, transition in _SEED["jira_transitions"].items()
}
"""Jira's workflow: transition name → (its id, the status it leads to)."""


class ItsmSandbox(LoopbackServer):
    """A threaded HTTP server; use as a context manager."""

    def __init__(
        self,
        *,
        servicenow_user: str = ACCOUNTS["servicenow"]["username"],
        servicenow_password: str = ACCOUNTS["servicenow"]["password"],
        jira_email: str = ACCOUNTS["jira"]["username"],
        jira_token: str = ACCOUNTS["jira"]["password"],
        oauth_client: tuple[str, str] = ("client-id", "client-secret"),
    ) -> None:
        self.state = _State()
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.down = False
        """While true, every request is dropped unanswered (the connection is closed)."""
        self.refused = 0
        """How many requests were dropped while :attr:`down` (fault-injection figures)."""
        self._lock = threading.Lock()
        self._basic = {
            "servicenow": f"{servicenow_user}:{servicenow_password}",
            "jira": f"{jira_email}:{jira_token}",
        }
        self._oauth_client = oauth_client
        super().__init__(self._handler())

    def fail_next(self, route: str, *faults: Fault) -> None:
        """Script the next answers of a route: ``servicenow``, ``jira`` or ``oauth``."""
        with self._lock:
            self.faults[route].extend(faults)

    def set_password(self, system: str, user: str, password: str) -> None:
        """Change what ``servicenow`` or ``jira`` accepts as basic auth (a rotation in the ITSM)."""
        with self._lock:
            self._basic[system] = f"{user}:{password}"

    def revoke_tokens(self) -> None:
        """Expire every OAuth token (the next call with one gets 401)."""
        with self._lock:
            self.state.tokens.clear()

    def __enter__(self) -> ItsmSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling ------------------------------------------------------

    def _authorized(self, system: str, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme == "Basic":
            try:
                return base64.b64decode(value).decode() == self._basic[system]
            except ValueError:
                return False
        if scheme == "Bearer" and system == "servicenow":
            with self._lock:
                return value in self.state.tokens
        return False

    def _next_fault(self, route: str) -> Fault | None:
        with self._lock:
            return self.faults[route].pop(0) if self.faults[route] else None

    def _handler(self) -> type[QuietHandler]:
        sandbox = self

        class Handler(QuietHandler):
            def _send(
                self, status: int, body: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                payload = b"" if body is None else json.dumps(body).encode()
                typed = {"Content-Type": "application/json"} if payload else {}
                self.send_body(status, payload, {**(headers or {}), **typed})

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"
                ):
                    return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                return json.loads(raw) if raw else None

            def _route(self, method: str) -> None:
                if sandbox.down:
                    with sandbox._lock:
                        sandbox.refused += 1
                    self.close_connection = True
                    self.connection.close()
                    return
                path = urlsplit(self.path).path
                system = (
                    "oauth"
                    if path == "/oauth_token.do"
                    else ("servicenow" if path.startswith("/api/now/") else "jira")
                )
                with sandbox._lock:
                    sandbox.state.requests.append((method, self.path))
                fault = sandbox._next_fault(system)
                if fault is not None:
                    time.sleep(fault.delay)
                    if fault.status:
                        self._send(
                            fault.status,
                            fault.body or {"error": {"message": "scripted"}},
                            fault.headers,
                        )
                        return
                body = self._body()
                if system == "oauth":
                    self._oauth(body or {})
                    return
                if not sandbox._authorized(system, self.headers.get("Authorization", "")):
                    self._send(401, {"error": {"message": "User Not Authenticated"}})
                    return
                if system == "servicenow":
                    self._servicenow(method, path, body)
                else:
                    self._jira(method, path, body)

            def _oauth(self, form: dict[str, str]) -> None:
                if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
                    "client_credentials",
                    *sandbox._oauth_client,
                ):
                    self._send(401, {"error": "invalid_client"})
                    return
                token = uuid.uuid4().hex
                with sandbox._lock:
                    sandbox.state.tokens.add(token)
                self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 1799})

            def _servicenow(self, method: str, path: str, body: Any) -> None:
                match = re.fullmatch(r"/api/now/table/sc_req_item/([0-9a-f]{32})", path)
                if method == "PATCH" and match:
                    sys_id = match.group(1)
                    with sandbox._lock:
                        record = sandbox.state.servicenow.setdefault(sys_id, {"state": "1"})
                        for element in ("work_notes", "comments"):
                            if body.get(element):
                                sandbox.state.journal.append(
                                    {
                                        "element_id": sys_id,
                                        "element": element,
                                        "value": body[element],
                                        "received_at": time.time(),
                                    }
                                )
                        if "state" in body:
                            record["state"] = str(body["state"])
                    self._send(200, {"result": {"sys_id": sys_id, "state": record["state"]}})
                    return
                if method == "GET" and path == "/api/now/table/sys_journal_field":
                    query = parse_qs(urlsplit(self.path).query).get("sysparm_query", [""])[0]
                    element_id = re.search(r"element_id=([0-9a-f]{32})", query)
                    needle = re.search(r"valueLIKE([^^]+)", query)
                    with sandbox._lock:
                        rows = [
                            row
                            for row in sandbox.state.journal
                            if element_id
                            and row["element_id"] == element_id.group(1)
                            and (not needle or needle.group(1) in row["value"])
                        ]
                    self._send(200, {"result": rows[:1]})
                    return
                self._send(404, {"error": {"message": "No Record found"}, "status": "failure"})

            def _jira(self, method: str, path: str, body: Any) -> None:
                comment = re.fullmatch(r"/rest/api/3/issue/([A-Z][A-Z0-9_]*-\d+)/comment", path)
                transitions = re.fullmatch(
                    r"/rest/api/3/issue/([A-Z][A-Z0-9_]*-\d+)/transitions", path
                )
                jsm = re.fullmatch(
                    r"/rest/servicedeskapi/request/([A-Z][A-Z0-9_]*-\d+)/comment", path
                )
                if comment and method == "POST":
                    with sandbox._lock:
                        items = sandbox.state.jira_comments[comment.group(1)]
                        items.append({"id": str(10000 + len(items)), "body": body["body"]})
                    self._send(201, items[-1])
                elif comment and method == "GET":
                    with sandbox._lock:
                        items = list(sandbox.state.jira_comments[comment.group(1)])
                    self._send(200, {"comments": items, "total": len(items)})
                elif jsm and method == "POST":
                    with sandbox._lock:
                        sandbox.state.jsm_comments[jsm.group(1)].append(body)
                    self._send(201, {"id": "1", **body})
                elif transitions and method == "GET":
                    self._send(
                        200,
                        {
                            "transitions": [
                                {"id": tid, "name": name, "to": {"name": to}}
                                for name, (tid, to) in JIRA_TRANSITIONS.items()
                            ]
                        },
                    )
                elif transitions and method == "POST":
                    wanted = body.get("transition", {}).get("id")
                    target = next(
                        (to for tid, to in JIRA_TRANSITIONS.values() if tid == wanted), None
                    )
                    if target is None:
                        self._send(400, {"errorMessages": ["Transition id is not valid"]})
                        return
                    with sandbox._lock:
                        sandbox.state.jira_status[transitions.group(1)] = target
                    self._send(204)
                else:
                    self._send(404, {"errorMessages": ["Issue does not exist"]})

            def do_GET(self) -> None:  # noqa: N802 - the stdlib handler protocol
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                self._route("POST")

            def do_PATCH(self) -> None:  # noqa: N802 - the stdlib handler protocol
                self._route("PATCH")

        return Handler
