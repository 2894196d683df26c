"""The request lifecycle: a guarded state machine, as a pure function.

States (one ledger item per ticket instance and product)::

    received ─┬─▶ awaiting_approval ─▶ approved ─┐
              ├──────────────────────▶ approved ─┤
              └──────────────────────────────────┴─▶ queued ─▶ provisioning ─▶ succeeded | failed
    queued ─(StartBuild refused for good)─▶ failed                  (no build ran)
    succeeded | failed ─(update)─▶ queued ─▶ updating ─▶ succeeded | failed
    succeeded | failed ─(destroy)─▶ queued ─▶ destroying ─▶ destroyed | failed
    received | awaiting_approval ─(destroy)─▶ destroyed          (nothing was built)

Every input either yields the transitions to apply (and whether to start a build) or
a refusal naming why; nothing is ever applied silently. Duplicates and out-of-order
events — a replayed ``received`` after ``succeeded``, a second ``approved``, a build
outcome for a build that is not the current one — are refusals, so they can never
start a second build or report a second outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from selfservice_contracts.request import Action

__all__ = [
    "BUILDING",
    "BuildOutcome",
    "Decision",
    "Refusal",
    "RequestKind",
    "State",
    "decide_build_outcome",
    "decide_request",
    "decide_start_refused",
]


class State(StrEnum):
    """Where a ticket's product instance stands."""

    RECEIVED = "received"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    UPDATING = "updating"
    DESTROYING = "destroying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DESTROYED = "destroyed"


BUILDING = {State.PROVISIONING, State.UPDATING, State.DESTROYING}
_BUILD_STATE = {
    Action.CREATE: State.PROVISIONING,
    Action.UPDATE: State.UPDATING,
    Action.DESTROY: State.DESTROYING,
}

RequestKind = Literal["received", "approval_required", "approved"]
BuildOutcome = Literal["SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", "FAULT"]


@dataclass(frozen=True)
class Decision:
    """Transitions to record, in order; ``build`` says which build to start, if any."""

    transitions: tuple[State, ...]
    build: Action | None = None

    @property
    def final(self) -> State:
        """The state the ledger ends in."""
        return self.transitions[-1]


@dataclass(frozen=True)
class Refusal:
    """An input that must not change anything, and why (logged, counted)."""

    reason: str


def building_state(action: Action) -> State:
    """The state a started build puts the ledger in."""
    return _BUILD_STATE[action]


def decide_request(  # noqa: PLR0911, PLR0912 - one branch per row of the transition table
    current: State | None,
    kind: RequestKind,
    action: Action,
    *,
    resuming: bool = False,
    itsm_approved: bool = False,
) -> Decision | Refusal:
    """What a request event does to the ledger.

    ``resuming`` is true when the event is the very one that queued the request and is
    being retried (its first attempt queued it but could not start the build).
    ``itsm_approved`` is true when the event's request says the ITSM approved it.

    Only an approval moves a request awaiting approval on — the one rule intake follows
    too: an ``approved`` event (the policy needed the approval), or a ``received`` one
    whose request the ITSM approved (the ITSM held it, the policy needs nothing more:
    a dev item that arrived with its approval requested, then approved).
    """
    if current is State.QUEUED and resuming:
        return Decision((State.QUEUED,), build=action)
    if current is None:
        if action is Action.DESTROY:
            return Refusal("nothing to destroy: this ticket has no instance")
        if kind == "approval_required":
            return Decision((State.RECEIVED, State.AWAITING_APPROVAL))
        if kind == "approved":
            return Decision((State.RECEIVED, State.APPROVED, State.QUEUED), build=action)
        return Decision((State.RECEIVED, State.QUEUED), build=action)
    if current is State.DESTROYED:
        return Refusal("the instance is destroyed; open a new request")
    if current in BUILDING or current in (State.RECEIVED, State.APPROVED, State.QUEUED):
        return Refusal(f"a build is already under way ({current.value})")
    if current is State.AWAITING_APPROVAL:
        if action is Action.DESTROY:
            return Decision((State.DESTROYED,))
        if kind == "approved" or (kind == "received" and itsm_approved):
            return Decision((State.APPROVED, State.QUEUED), build=action)
        return Refusal(f"{kind} while awaiting approval: only an approval moves it on")
    # succeeded or failed: an instance exists (possibly partly, after a failure).
    if action is Action.CREATE:
        return Refusal(f"a create for an instance that already {current.value}")
    if kind == "approval_required":
        return Decision((State.AWAITING_APPROVAL,))
    if kind == "approved":
        return Decision((State.APPROVED, State.QUEUED), build=action)
    return Decision((State.QUEUED,), build=action)


def decide_build_outcome(
    current: State | None,
    current_build: str | None,
    build_id: str,
    outcome: BuildOutcome,
) -> Decision | Refusal:
    """What a terminal CodeBuild state does to the ledger."""
    if current is None:
        return Refusal("no request is waiting for this build")
    if build_id != current_build:
        return Refusal(f"build {build_id} is not the current build of this request")
    if current not in BUILDING:
        return Refusal(f"the outcome of {build_id} was already recorded ({current.value})")
    if outcome == "SUCCEEDED":
        return Decision((State.DESTROYED,) if current is State.DESTROYING else (State.SUCCEEDED,))
    return Decision((State.FAILED,))


def decide_start_refused(current: State | None) -> Decision | Refusal:
    """What CodeBuild refusing a queued request's build for good does to the ledger."""
    if current is not State.QUEUED:
        state = current.value if current else "no entry"
        return Refusal(f"only a queued request has a build to start ({state})")
    return Decision((State.FAILED,))
