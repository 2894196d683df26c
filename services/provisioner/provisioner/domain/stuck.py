"""Tickets stuck in provisioning: queued or building for longer than any build can take.

CodeBuild ends every build within the project's queued and build timeouts and then
reports a terminal state, which ``BuildEventsFunction`` records. A request still
``queued`` or building (``provisioning``, ``updating``, ``destroying``) well past those
timeouts has lost its way — its build outcome was parked in a DLQ, its request in
another, a consumer is failing, or a rule no longer matches — and its requester is
waiting on a ticket that will never move. The check is that signal.

Requests waiting for a serial product's slot (``waiting_for_slot``) are not watched:
they wait, legitimately, behind the build that holds the slot, which is watched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from provisioner.domain.ledger import LedgerEntry
from provisioner.domain.lifecycle import BUILDING, State

__all__ = [
    "WATCHED",
    "InFlight",
    "InFlightIndex",
    "StuckReport",
    "StuckTicket",
    "find_stuck",
    "is_watched",
]

WATCHED: frozenset[State] = frozenset({State.QUEUED, *BUILDING})
"""The states a request must leave on its own within the build timeouts."""


def is_watched(entry: LedgerEntry) -> bool:
    """Whether the stuck-ticket check must see this entry (and so the index holds it)."""
    return entry.state in WATCHED and not entry.waiting_for_slot


@dataclass(frozen=True)
class InFlight:
    """What the in-flight index holds of a watched entry."""

    request_id: str
    state: State
    since: datetime
    """When the entry entered ``state``."""
    product: str
    instance: str
    attempt: int
    build_id: str | None = None
    log_url: str | None = None


class InFlightIndex(Protocol):
    """Watched entries by state and the time they entered it (a sparse DynamoDB index)."""

    def entered_before(self, state: State, cutoff: datetime) -> Iterable[InFlight]:
        """Entries in ``state`` since before ``cutoff``."""
        ...


@dataclass(frozen=True)
class StuckTicket:
    """One stuck request and how long it has been stuck."""

    entry: InFlight
    age: timedelta

    @property
    def age_minutes(self) -> int:
        """Whole minutes in the current state."""
        return int(self.age.total_seconds() // 60)


@dataclass(frozen=True)
class StuckReport:
    """The result of one check, oldest first."""

    checked_at: datetime
    threshold: timedelta
    stuck: tuple[StuckTicket, ...]


def find_stuck(index: InFlightIndex, *, now: datetime, threshold: timedelta) -> StuckReport:
    """Every watched request that entered its state more than ``threshold`` before ``now``."""
    if threshold <= timedelta(0):
        raise ValueError("the threshold must be positive")
    cutoff = now - threshold
    found = [
        StuckTicket(entry, now - entry.since)
        for state in sorted(WATCHED)
        for entry in index.entered_before(state, cutoff)
        if entry.since < cutoff  # the rule is the domain's, whatever the index answers
    ]
    found.sort(key=lambda ticket: (-ticket.age, ticket.entry.request_id))
    return StuckReport(checked_at=now, threshold=threshold, stuck=tuple(found))
