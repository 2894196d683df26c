"""Shared fixtures. Tests talk only to loopback: any other address fails the test."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from selfservice.local import moto_gaps
from selfservice.templates import FunctionSpec, Template, load_platform
from tests.telemetry import PutEventsSpy, Telemetry, capture_put_events, capture_telemetry
from tests.tiers import forbid_sockets, mark_integration_tests

ROOT = Path(__file__).resolve().parent.parent

# Powertools reads these when a handler module is imported; tests set them once, here,
# rather than reloading modules. Tracing is off outside Lambda.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "selfservice")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tests")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# Tests that use moto see AWS's behaviour where the platform depends on it.
moto_gaps.apply()

# Property tests explore new examples on every developer run (that is how they find
# bugs); under CI they replay a fixed set so a submission's verdict is reproducible.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def fuzz_examples(count: int) -> int:
    """A property test's example count: all of them, but a tenth under ``make test-fast``
    (``SELFSERVICE_TEST_TIER=fast``), which is for iterating; ``make test`` runs them all."""
    if os.environ.get("SELFSERVICE_TEST_TIER") == "fast":
        return max(100, count // 10)
    return count


class NetworkAccessError(RuntimeError):
    """A test tried to reach an address that is not loopback."""


def _is_loopback(address: Any) -> bool:
    """Whether an AF_INET/AF_INET6 address tuple points at this machine's loopback."""
    host = address[0] if isinstance(address, tuple) else None
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkAccessError(f"tests may only reach loopback, not {address!r}")
        original_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkAccessError(f"tests may only reach loopback, not {address!r}")
        return original_connect_ex(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reaches the embedded AWS or a socket ``integration``; then
    put the slow tiers' files first (:func:`slowest_files_first`)."""
    mark_integration_tests(items, guards={"_loopback_only", "_pure_tests_open_no_sockets"})
    items[:] = slowest_files_first(items)


def slowest_files_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The files holding e2e or fault tests first, then integration, then pure ones.

    ``make test`` hands whole files to its workers in collection order (``--dist
    loadfile``): a minute-long end-to-end file collected last would run alone at the end
    while the other worker idles. Started first, the slow files overlap each other and
    the many short pure files fill the gaps. A file's own tests keep their order.
    """

    def tier(item: pytest.Item) -> int:
        if item.get_closest_marker("e2e") or item.get_closest_marker("fault"):
            return 0
        return 1 if item.get_closest_marker("integration") else 2

    rank: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        rank[path] = min(rank.get(path, 2), tier(item))
    # sorted() is stable: files and their tests keep their order within a tier.
    return sorted(items, key=lambda item: rank[item.nodeid.split("::", 1)[0]])


@pytest.fixture(autouse=True)
def _pure_tests_open_no_sockets(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pure test that opens an internet socket in its own thread is in the wrong tier."""
    node = request.node
    if not (node.get_closest_marker("integration") or node.get_closest_marker("e2e")):
        forbid_sockets(monkeypatch, node.nodeid)


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def platform() -> Template:
    """template.yaml with every nested service template."""
    return load_platform(ROOT / "template.yaml")


def platform_functions() -> list[FunctionSpec]:
    """Every function of the platform (for parametrization, ids = logical ids)."""
    return [
        fn
        for template in load_platform(ROOT / "template.yaml").walk()
        for fn in template.functions()
    ]


@pytest.fixture
def telemetry(capsys: pytest.CaptureFixture[str]) -> Iterator[Telemetry]:
    """The log lines and EMF metrics the code under test emits."""
    with capture_telemetry(capsys) as captured:
        yield captured


@pytest.fixture
def put_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[PutEventsSpy]:
    """Every PutEvents entry sent through botocore (TraceHeader included)."""
    with capture_put_events(monkeypatch) as spy:
        yield spy
