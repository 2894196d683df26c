"""The request ledger: what it stores (the port it is written through is
:class:`provisioner.domain.ports.Ledger`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from provisioner.domain.lifecycle import State
from selfservice_contracts.request import Action, ProvisioningRequest

__all__ = [
    "ConcurrentUpdateError",
    "HeldPlan",
    "LedgerEntry",
    "Transition",
    "cost_scope",
    "live_cost_scope",
    "transitions",
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
class HeldPlan:
    """A saved plan the ticket was shown, waiting for (or given) an approval of its hash."""

    sha256: str
    attempt: int
    """The attempt whose build made it (its files are under ``plans/<request>/<attempt>/``)."""
    module_sha256: str
    """The product module it was made from; it is applied only with that module."""
    monthly_cost: Decimal
    """Its estimate's monthly cost after the apply (the instance's, once applied)."""


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
    plan_only: bool = False
    """The queued or current build only plans: its plan waits for an approval."""
    apply_held: bool = False
    """The queued or current build applies ``held_plan`` (approved) and nothing else."""
    held_plan: HeldPlan | None = None
    """The plan awaiting approval, or approved and being applied."""
    replan_because: str | None = None
    """Why the current plan is made again (an approved plan went stale, another was approved)."""
    monthly_cost: Decimal | None = None
    """What the live instance costs per month (its applied plan's estimate), for budgets."""

    def advance(self, **changes: Any) -> LedgerEntry:
        """A copy with the changes and the next version."""
        return replace(self, version=self.version + 1, **changes)


def cost_scope(environment: str | None, cost_center: str | None) -> str:
    """The budget's scope of an instance: its environment and cost center."""
    return f"{environment or '-'}#{cost_center or '-'}"


def live_cost_scope(entry: LedgerEntry) -> str | None:
    """The scope a live, priced instance counts towards (None: it counts nowhere)."""
    if entry.monthly_cost is None or entry.state is State.DESTROYED:
        return None
    return cost_scope(entry.request.environment, entry.request.cost_center)


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
