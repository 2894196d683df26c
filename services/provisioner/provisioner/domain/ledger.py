"""The request ledger: what it stores and the port the domain writes it through."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from provisioner.domain.lifecycle import State
from selfservice_contracts.request import Action, ProvisioningRequest

__all__ = [
    "ConcurrentUpdateError",
    "Ledger",
    "LedgerEntry",
    "SerialSlot",
    "Transition",
]


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


class Ledger(Protocol):
    """Where entries and their history live."""

    def get(self, request_id: str) -> LedgerEntry | None:
        """The entry, or None if the request was never seen."""
        ...

    def save(
        self, before: LedgerEntry | None, after: LedgerEntry, transitions: list[Transition]
    ) -> None:
        """Write ``after`` and its history iff the entry is still ``before``."""
        ...

    def history(self, request_id: str) -> list[Transition]:
        """Every transition, oldest first."""
        ...


class SerialSlot(Protocol):
    """One-at-a-time builds for products that require it (AWS Organizations accounts)."""

    def acquire(self, product: str, request_id: str) -> bool:
        """Take the slot (or confirm we hold it); False queues the request behind it."""
        ...

    def release(self, product: str, request_id: str) -> str | None:
        """Free the slot; returns the next waiting request id (now holding it), if any."""
        ...
