"""The tiers are decided from what a test reaches, and the pure tier is held to it."""

from __future__ import annotations

from http.client import HTTPConnection

import pytest

from selfservice.local.moto_server import EmbeddedAws
from selfservice.templates import load_platform
from tests.conftest import ROOT
from tests.tiers import Classifier, TierError


def _starts_the_embedded_aws() -> EmbeddedAws:
    return EmbeddedAws()


def _calls_a_helper_that_does() -> object:
    return _starts_the_embedded_aws()


def _imports_a_socket_module_locally() -> object:
    import urllib.request  # noqa: PLC0415

    return urllib.request


def _reads_templates_only() -> object:
    return load_platform(ROOT / "template.yaml")


def _closes_over(value: object) -> object:
    def inner() -> object:
        return value

    return inner


@pytest.mark.parametrize(
    ("obj", "integration"),
    [
        (_starts_the_embedded_aws, True),
        (_calls_a_helper_that_does, True),
        (_imports_a_socket_module_locally, True),
        (_closes_over(EmbeddedAws), True),
        (_reads_templates_only, False),
        (_closes_over(42), False),
    ],
    ids=["direct", "through-a-helper", "local-import", "closure", "templates-only", "plain"],
)
def test_what_a_function_reaches_decides_its_tier(obj: object, integration: bool) -> None:
    assert Classifier().reaches_server(obj) is integration


@pytest.fixture
def embedded() -> type[EmbeddedAws]:
    return EmbeddedAws  # referencing it is enough: nothing is started


def test_a_test_using_a_server_fixture_is_marked_integration(
    request: pytest.FixtureRequest, embedded: type[EmbeddedAws]
) -> None:
    assert embedded is EmbeddedAws
    assert request.node.get_closest_marker("integration") is not None


def test_a_pure_test_is_not_marked_and_may_not_open_a_socket(
    request: pytest.FixtureRequest,
) -> None:
    # http.client is no server module, so nothing marks this test: the guard must catch it.
    assert request.node.get_closest_marker("integration") is None
    connection = HTTPConnection("127.0.0.1", 9, timeout=1)
    with pytest.raises(TierError, match="is in the pure tier but opened a socket"):
        connection.connect()
    connection.close()
