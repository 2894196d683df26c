"""The request ledger: what it stores (the port it is written through is
:class:`provisioner.domain.ports.Ledger`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from provisioner.domain.lifecycle import State
from selfservice_contracts.request import Action, ProvisioningRequest

__all__ = ["ConcurrentUpdateError", "LedgerEntry", "Transition", "transitions"]


@dataclass(frozen=True)
class Transition:
    """One step of a request's history, with when and why."""

    request_id: str
    sequence: int
    from_state: State | None
    to_state: State
    at: datetime
    cause: str
    """What caused it: ``<event type> <event id>`` or ``build <build id> <status>``."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerEntry:
    """The one item per ticket instance and product."""

    request_id: str
    product: str
    instance: str
    """The ticket the instance belongs to (``servicenow:RITM0010042``)."""
    state: State
    version: int
    action: Action
    attempt: int
    request: ProvisioningRequest
    updated_at: datetime
    build_id: str | None = None
    log_url: str | None = None
    queued_by: str | None = None
    """``source#id`` of the event that queued the current build (to resume its retry)."""
    waiting_for_slot: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    sequence: int = 0
    """Number of transitions recorded so far."""

    def advance(self, **changes: Any) -> LedgerEntry:
        """A copy with the changes and the next version."""
        return replace(self, version=self.version + 1, **changes)


class ConcurrentUpdateError(RuntimeError):
    """The entry changed since it was read; the caller retries from a fresh read."""


def transitions(
    entry: LedgerEntry | None,
    request_id: str,
    states: tuple[State, ...],
    at: datetime,
    cause: str,
    *,
    detail: dict[str, Any] | None = None,
) -> list[Transition]:
    """The history steps that take ``entry`` (None: a new request) through ``states``."""
    previous = entry.state if entry else None
    sequence = entry.sequence if entry else 0
    steps = []
    for state in states:
        sequence += 1
        steps.append(Transition(request_id, sequence, previous, state, at, cause, detail or {}))
        previous = state
    return steps
