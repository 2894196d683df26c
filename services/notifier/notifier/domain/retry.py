"""When to try a write-back again, and when to stop: a pure decision.

- 2xx: done.
- 401: refresh the credentials once, then try again; a second 401 is permanent.
- 408, 409, 425, 429, 500, 502, 503, 504, timeouts and refused connections: transient.
  Wait what the server asks (``Retry-After`` in seconds or as an HTTP date, or
  ServiceNow's ``X-RateLimit-Reset``), else exponential backoff with full jitter.
- any other 4xx: permanent — retrying cannot help; the failure path takes over at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["Decision", "RetryPolicy", "decide"]

TRANSIENT = {408, 409, 425, 429, 500, 502, 503, 504}
UNAVAILABLE = {429, 500, 502, 503, 504}
"""Answers that say the ITSM itself is unavailable (with no answer at all): only these
back off across receives. A conflict or timeout on one ticket (408, 409, 425) keeps the
short wait, so it cannot hold every other ticket's updates for long."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try within one invocation before handing the retry to the queue."""

    attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 8.0
    max_inline_wait_seconds: float = 10.0
    """Longer waits are not slept inside the function: the message comes back later."""
    queue_base_seconds: float = 30.0
    queue_cap_seconds: float = 1800.0
    """Backoff across receives when an invocation spends its attempts on an unavailable
    ITSM (:data:`UNAVAILABLE`, or no answer) that named no wait of its own: receive n
    comes back after ``queue_base_seconds * 2**(n-1)``, at most ``queue_cap_seconds``.
    With 8 receives, an outage of about an hour recovers by itself instead of parking
    every pending update in the DLQ."""

    def queue_wait(self, receive_count: int) -> float:
        """How long the queue keeps a message away after its ``receive_count``-th receive."""
        doubled = self.queue_base_seconds * 2.0 ** (max(receive_count, 1) - 1)
        return min(self.queue_cap_seconds, doubled)


@dataclass(frozen=True)
class Decision:
    """What to do after one attempt."""

    kind: Literal["done", "retry", "refresh", "permanent"]
    wait_seconds: float = 0.0
    reason: str = ""


def _server_wait(headers: dict[str, str], now: datetime) -> float | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after:
        value = retry_after.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, (when - now).total_seconds())
    reset = lowered.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, int(reset) - now.timestamp())
    return None


def decide(
    status: int | None,
    headers: dict[str, str],
    *,
    attempt: int,
    refreshed: bool,
    policy: RetryPolicy,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The decision after attempt number ``attempt`` (1-based); None status = no response."""
    if status is not None and 200 <= status < 300:  # noqa: PLR2004
        return Decision("done")
    if status == 401:  # noqa: PLR2004
        if refreshed:
            return Decision("permanent", reason="credentials rejected after a refresh")
        return Decision("refresh", reason="credentials rejected")
    if status is not None and status not in TRANSIENT:
        return Decision("permanent", reason=f"HTTP {status}")
    asked = _server_wait(headers, now or datetime.now(UTC))
    if asked is not None:
        wait = asked
    else:
        backoff = min(policy.cap_seconds, policy.base_seconds * 2 ** (attempt - 1))
        wait = (rng or random.Random()).uniform(0, backoff)  # noqa: S311 - jitter, not crypto
    reason = f"HTTP {status}" if status is not None else "no response"
    return Decision("retry", wait_seconds=wait, reason=reason)
