"""The write-back retry decision."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from notifier.domain.retry import RetryPolicy, decide

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def _decide(status: int | None, headers: dict[str, str] | None = None, **kwargs: object) -> object:
    options = {
        "attempt": 1,
        "refreshed": False,
        "policy": POLICY,
        "now": NOW,
        "rng": random.Random(7),
        **kwargs,
    }
    return decide(status, headers or {}, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success(status: int) -> None:
    assert _decide(status).kind == "done"  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [400, 403, 404, 405, 410, 422])
def test_permanent_client_errors_go_straight_to_the_failure_path(status: int) -> None:
    decision = _decide(status)
    assert (decision.kind, decision.reason) == ("permanent", f"HTTP {status}")  # type: ignore[attr-defined]


def test_a_401_refreshes_once() -> None:
    assert _decide(401).kind == "refresh"  # type: ignore[attr-defined]
    assert _decide(401, refreshed=True).kind == "permanent"  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [None, 408, 409, 429, 500, 502, 503, 504])
def test_transient_failures_back_off_with_jitter_under_a_cap(status: int | None) -> None:
    waits = [_decide(status, attempt=n, rng=random.Random(n)).wait_seconds for n in range(1, 9)]  # type: ignore[attr-defined]
    assert all(0 <= w <= POLICY.cap_seconds for w in waits)
    assert len(set(waits)) > 1  # jittered


def test_retry_after_in_seconds_and_as_a_date_and_servicenow_reset() -> None:
    assert _decide(429, {"Retry-After": "120"}).wait_seconds == 120  # type: ignore[attr-defined]
    date = "Fri, 20 Nov 2026 09:00:30 GMT"
    assert _decide(503, {"retry-after": date}).wait_seconds == 30  # type: ignore[attr-defined]
    reset = str(int(NOW.timestamp()) + 45)
    assert _decide(429, {"X-RateLimit-Reset": reset}).wait_seconds == 45  # type: ignore[attr-defined]
    assert _decide(429, {"Retry-After": "soon"}).wait_seconds <= POLICY.cap_seconds  # type: ignore[attr-defined]
