"""Property-based: arbitrary bodies and headers never produce a 5xx or an exception.

Bodies are arbitrary bytes, arbitrary JSON, vendor fixtures with random parts
replaced or removed, or fixtures carrying what a JSON parser chokes on — nesting up to
20,000 levels deep (as a whole body or as one field), ``NaN``/``Infinity``, ``1e999``,
integers beyond the interpreter's 4,300-digit limit; most are correctly signed so they
reach parsing, normalization, validation and policy rather than stopping at the 401.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake import runtime
from intake.domain.intake import Delivery
from intake.handlers import webhook
from tests.conftest import fuzz_examples
from tests.intake.conftest import (
    automation_delivery,
    fixture,
    jira_delivery,
    make_service,
    servicenow_delivery,
)
from tests.lambda_context import FakeContext

FIXTURES = {
    "servicenow": ["servicenow-ritm-ec2-inserted.json", "servicenow-ritm-account-inserted.json"],
    "jira": [
        "jira-issue-created-webhook.json",
        "jira-issue-updated-approved.json",
        "jira-automation-web-request.json",
    ],
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated_fixture(draw: st.DrawFn, source: str) -> Any:
    body = fixture(draw(st.sampled_from(FIXTURES[source])))
    for _ in range(draw(st.integers(0, 4))):
        paths = list(_paths(body))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return body


_HOSTILE = "\u0000hostile\u0000"


@st.composite
def nested(draw: st.DrawFn) -> str:
    """JSON text nested ``depth`` levels deep: arrays, objects or both alternating."""
    depth = draw(st.sampled_from([30, 65, 100, 1000, 10_000, 20_000]) | st.integers(1, 3000))
    form = draw(st.sampled_from(["array", "object", "mixed"]))
    opening = {"array": ["["], "object": ['{"a":'], "mixed": ["[", '{"a":']}[form]
    closing = {"[": "]", '{"a":': "}"}
    opened = [opening[i % len(opening)] for i in range(depth)]
    return "".join(opened) + "1" + "".join(closing[o] for o in reversed(opened))


hostile_values = nested() | st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "9" * 4301, "-" + "1" * 10_000]
)


@st.composite
def hostile_fixture(draw: st.DrawFn, source: str) -> bytes:
    """A fixture with one value (or the whole body) replaced by hostile JSON text."""
    body = draw(mutated_fixture(source))
    hostile = draw(hostile_values)
    paths = list(_paths(body))
    if not paths or draw(st.integers(0, 3)) == 0:
        return hostile.encode()
    path = draw(st.sampled_from(paths))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = _HOSTILE
    return json.dumps(body).replace(json.dumps(_HOSTILE), hostile, 1).encode()


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    source = draw(st.sampled_from(["servicenow", "jira"]))
    kind = draw(st.sampled_from(["fixture", "fixture", "fixture", "json", "bytes", "hostile"]))
    if kind == "fixture":
        body: Any = draw(mutated_fixture(source))
    elif kind == "json":
        body = draw(json_values)
    elif kind == "hostile":
        body = draw(hostile_fixture(source))
    else:
        body = draw(st.binary(max_size=300))
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    now = datetime.now(UTC)
    if source == "servicenow":
        delivery = servicenow_delivery(raw, at=now)
    elif isinstance(body, dict) and "issueKey" in body:
        delivery = automation_delivery(raw, at=now)
    else:
        delivery = jira_delivery(raw, at=now)
    headers = dict(delivery.headers)
    if draw(st.integers(0, 9)) == 0:  # sometimes: broken or random headers
        headers = draw(st.dictionaries(st.sampled_from(sorted(headers)), st.text(max_size=30)))
    if draw(st.integers(0, 19)) == 0:
        headers["content-type"] = draw(st.text(max_size=30))
    return Delivery(delivery.source, headers, raw, now)


def _http_event(delivery: Delivery) -> dict[str, Any]:
    path = f"/webhooks/{delivery.source}"
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": dict(delivery.headers),
        "requestContext": {
            "http": {"method": "POST", "path": path, "sourceIp": "203.0.113.1"},
            "requestId": "fuzz",
            "routeKey": f"POST {path}",
            "stage": "$default",
        },
        # Binary-safe: API Gateway base64-encodes bodies that are not valid UTF-8.
        "body": base64.b64encode(delivery.body).decode(),
        "isBase64Encoded": True,
    }


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "service", lambda: make_service()[0])


STATUSES: Counter[int] = Counter()


@pytest.mark.usefixtures("wired")
@settings(
    max_examples=fuzz_examples(3000),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries())
def test_no_delivery_yields_a_5xx_or_an_exception(delivery: Delivery) -> None:
    response = webhook.app.resolve(_http_event(delivery), FakeContext())  # type: ignore[arg-type]
    assert 200 <= response["statusCode"] < 500, response
    json.loads(response["body"])
    STATUSES[response["statusCode"]] += 1


@pytest.mark.usefixtures("wired")
@pytest.mark.parametrize("source", ["servicenow", "jira"])
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"sys_id": NaN}',
        b'{"sys_id": 1e999}',
        b'{"sys_id": ' + b"9" * 5000 + b"}",
        b"[1, 2]",
    ],
    ids=["deep-arrays", "deep-objects", "nan", "infinite", "huge-integer", "array"],
)
def test_a_signed_body_json_cannot_hold_is_a_400_naming_why(source: str, raw: bytes) -> None:
    """Found by testing as a user: a signed 20 KB body nested 10,000 deep was a 500."""
    now = datetime.now(UTC)
    signed = (servicenow_delivery if source == "servicenow" else jira_delivery)(raw, at=now)
    response = webhook.app.resolve(_http_event(signed), FakeContext())  # type: ignore[arg-type]
    assert response["statusCode"] == 400, response
    reply = json.loads(response["body"])
    assert reply["message"] == "body is not a valid JSON object"
    assert reply["errors"][0]["field"] == "body"


def test_the_fuzzer_reaches_past_authentication() -> None:
    # Runs after the property test (same module, file order): most cases must get past
    # authentication and media-type checks, or the property above would prove little.
    if not STATUSES:
        pytest.skip("measures the property test above; run the module, not this test alone")
    if fuzz_examples(3000) < 3000:
        pytest.skip("make test-fast runs too few examples to judge coverage; make test does")
    assert sum(STATUSES.values()) >= 3000
    assert STATUSES[401] + STATUSES[415] < sum(STATUSES.values()) / 2
    assert {202, 400, 422} <= set(STATUSES), STATUSES
