"""Test tiers, decided from what a test can reach rather than marked by hand.

- **pure**: no embedded AWS, no sockets: domain logic, handlers and adapters against the
  typed in-memory fakes, templates read from disk, generated examples. ``make test-fast``
  runs this tier alone.
- **integration**: reaches the embedded AWS (moto, in process or as a server), the local
  runtime's HTTP fronts and endpoints, the ITSM sandbox, or a raw socket. Marked
  automatically here: a test is integration when its function, or a fixture it uses
  (transitively), references anything defined in :data:`SERVER_MODULES`, directly or
  through the test suite's own helper modules.
- **e2e** (and **fault**): marked by hand on the slow cases (real Terraform, a whole
  platform); ``make test`` runs every tier.

The classification is checked, not trusted: a pure test that opens an internet socket
in its own thread fails with :class:`TierError`, naming the tier it belongs to. A test
that reaches a socket in a way no reference shows (a client pointed at a URL) says so
with ``@pytest.mark.integration``.
"""

from __future__ import annotations

import functools
import inspect
import socket
import threading
import types
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

SERVER_MODULES = frozenset(
    {
        "selfservice.local.moto_server",
        "selfservice.local.platform",
        "selfservice.local.itsm_sandbox",
        "selfservice.local.functions",
        "selfservice.local.http_front",
        "selfservice.local.loopback",
        "selfservice.local.codebuild",
        "selfservice.local.ssm_agent",
        "selfservice.local.eventbridge_front",
        "selfservice.develop.demo",
        "selfservice.develop.up",
        "moto",
        "selfservice.local.moto_gaps",
        "selfservice.local.moto_sqs_gaps",
        "http.server",
        "socketserver",
        "socket",
        "urllib.request",
    }
)
"""The embedded AWS in either form, and what serves or opens sockets: a test referencing
anything defined in one of these modules is an integration test."""

_OWN_PREFIXES = ("tests.", "bench.")


class TierError(RuntimeError):
    """A test classified pure opened a socket."""


def _is_server_module(name: str) -> bool:
    return any(name == module or name.startswith(f"{module}.") for module in SERVER_MODULES)


def _is_own(name: str) -> bool:
    return name == "tests" or name.startswith(_OWN_PREFIXES)


def _code_names(code: types.CodeType) -> Iterator[str]:
    """Every global or attribute name a code object (and the code nested in it) uses."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _unwrap(obj: Any) -> Any:
    """The function behind ``functools.wraps``, partials, static and class methods."""
    if isinstance(obj, functools.partial):
        return obj.func
    if isinstance(obj, staticmethod | classmethod):
        return _unwrap(obj.__func__)
    if isinstance(obj, property):
        return obj.fget
    if isinstance(obj, types.FunctionType):
        return inspect.unwrap(obj)
    return obj


class Classifier:
    """Whether an object can reach a server, memoized across the whole collection."""

    def __init__(self) -> None:
        self._memo: dict[int, bool] = {}

    def reaches_server(self, obj: Any) -> bool:
        """True when ``obj`` is, or (through the suite's own code) uses, a server object."""
        obj = _unwrap(obj)
        key = id(obj)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = False  # a cycle adds nothing
        self._memo[key] = result = self._decide(obj)
        return result

    def _decide(self, obj: Any) -> bool:
        if isinstance(obj, types.ModuleType):
            name = obj.__name__
            own = _is_own(name) and any(self.reaches_server(v) for v in list(vars(obj).values()))
            return _is_server_module(name) or own
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not (_is_server_module(module) or _is_own(module)):
            return False
        if _is_server_module(module):
            return True
        if isinstance(obj, types.FunctionType):
            return self._function_reaches(obj)
        return isinstance(obj, type) and any(
            self.reaches_server(member)
            for member in vars(obj).values()
            if isinstance(member, types.FunctionType | staticmethod | classmethod | property)
        )

    def _function_reaches(self, function: types.FunctionType) -> bool:
        namespace = function.__globals__
        names = set(_code_names(function.__code__))
        if any(_is_server_module(name) for name in names):
            return True  # `import urllib.request` inside the function, say
        cells = [cell.cell_contents for cell in function.__closure__ or () if _filled(cell)]
        referenced = [namespace[name] for name in names if name in namespace]
        for value in _chain(referenced, cells, function.__defaults__ or ()):
            if isinstance(value, types.ModuleType) and _is_own(value.__name__):
                # `helpers.start()` reaches what `start` reaches, not all of `helpers`:
                # follow only the module's members this code names.
                members = vars(value)
                if any(self.reaches_server(members[n]) for n in names if n in members):
                    return True
            elif self.reaches_server(value):
                return True
        return False


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _chain(*iterables: Iterable[Any]) -> Iterator[Any]:
    for iterable in iterables:
        yield from iterable


def mark_integration_tests(items: list[pytest.Item], *, guards: set[str]) -> None:
    """Add the ``integration`` marker to every test (not ``e2e``) that reaches a server.

    ``guards`` are autouse fixtures every test has, which watch sockets rather than
    reach anything: they are left out of each test's fixture closure.
    """
    classifier = Classifier()
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker("e2e"):
            continue
        fixtures = [
            definition.func
            for name, definitions in item._fixtureinfo.name2fixturedefs.items()
            if name not in guards
            for definition in definitions
        ]
        if any(classifier.reaches_server(obj) for obj in [item.function, *fixtures]):
            item.add_marker(pytest.mark.integration)


def forbid_sockets(monkeypatch: pytest.MonkeyPatch, nodeid: str) -> None:
    """For the rest of the test, an internet socket opened from its thread is a TierError.

    Threads a server started by an earlier integration test runs (pollers, log
    shippers) are not the test's own, so only the main thread is watched.
    """
    connect, bind = socket.socket.connect, socket.socket.bind

    def refuse(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and (
            threading.current_thread() is threading.main_thread()
        ):
            raise TierError(
                f"{nodeid} is in the pure tier but opened a socket: it reaches a server "
                "without the tier classifier seeing it (tests/tiers.py: reach the server "
                "through a fixture or helper that references it, add its module there, or "
                "mark the test @pytest.mark.integration)"
            )

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        refuse(sock)
        connect(sock, address)

    def guarded_bind(sock: socket.socket, address: Any) -> None:
        refuse(sock)
        bind(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "bind", guarded_bind)
