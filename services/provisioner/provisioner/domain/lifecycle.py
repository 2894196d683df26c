"""The request lifecycle: a guarded state machine, as a pure function.

States (one ledger item per ticket instance and product)::

    received ─┬─(approval required)─▶ queued ─▶ planning ─▶ awaiting_approval ─▶ approved ─┐
              ├──────────────────────────────────────────────────────────────▶ approved ─┤
              └──────────────────────────────────────────────────────────────────────────┴─▶
        queued ─▶ provisioning ─▶ succeeded | failed | rejected | awaiting_approval (held)
                              └─(approved plan stale)─▶ queued ─▶ planning (re-plan)
    queued ─(StartBuild refused for good)─▶ failed                  (no build ran)
    planning ─▶ awaiting_approval (plan held) | rejected (plan refused) | failed
    succeeded | failed | rejected ─(update)─▶ queued ─▶ updating ─▶ succeeded | failed | …
    succeeded | failed | rejected ─(destroy)─▶ queued ─▶ destroying ─▶ destroyed | failed | …
    received | awaiting_approval ─(destroy)─▶ destroyed          (nothing was built)

Every build plans first and its review step judges the plan (``BuildVerdict``): applied
in the same build, held for an approval of its hash, refused (``rejected``: nothing
applied), or — for an approved plan — stale (nothing applied; planned again). A request
that needs an approval gets a plan-only build at once (``planning``); its approval then
applies exactly the held plan.

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
    "BuildVerdict",
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
    PLANNING = "planning"
    """A plan-only build runs: its plan will wait for an approval."""
    REJECTED = "rejected"
    """The plan was refused (a plan policy, a ``reject`` budget); nothing was applied."""


BUILDING = {State.PROVISIONING, State.UPDATING, State.DESTROYING, State.PLANNING}
_BUILD_STATE = {
    Action.CREATE: State.PROVISIONING,
    Action.UPDATE: State.UPDATING,
    Action.DESTROY: State.DESTROYING,
}

RequestKind = Literal["received", "approval_required", "approved"]
BuildOutcome = Literal["SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", "FAULT"]
BuildVerdict = Literal["applied", "held", "refused", "stale"]
"""What a succeeded build's record says became of its plan (None: no record, applied)."""


@dataclass(frozen=True)
class Decision:
    """Transitions to record, in order; ``build`` says which build to start, if any."""

    transitions: tuple[State, ...]
    build: Action | None = None
    plan_only: bool = False
    """The build plans and stops: its plan waits for an approval."""
    apply_held: bool = False
    """The build applies the held (now approved) plan and nothing else."""
    replan_because: str | None = None
    """Why a plan is made again (the ticket is told with the new plan)."""

    @property
    def final(self) -> State:
        """The state the ledger ends in."""
        return self.transitions[-1]


@dataclass(frozen=True)
class Refusal:
    """An input that must not change anything, and why (logged, counted)."""

    reason: str
    told: bool = False
    """The ticket is told (``provisioning.refused``): it asked for what cannot be done now.
    Not told: what only repeats what is under way (a second approval, a redelivery)."""


def building_state(action: Action) -> State:
    """The state a started build puts the ledger in."""
    return _BUILD_STATE[action]


def _approve(action: Action, held_sha256: str | None, approved_sha256: str | None) -> Decision:
    """An approval of a request awaiting it: apply the held plan, if it is the one approved."""
    if held_sha256 is None:  # held before plans were (an entry older than plan review)
        return Decision((State.APPROVED, State.QUEUED), build=action)
    if approved_sha256 is not None and approved_sha256 != held_sha256:
        return Decision(
            (State.QUEUED,),
            build=action,
            plan_only=True,
            replan_because=(
                f"the approval was given for plan {approved_sha256[:12]}…, "
                f"not the plan held for it ({held_sha256[:12]}…)"
            ),
        )
    return Decision((State.APPROVED, State.QUEUED), build=action, apply_held=True)


def decide_request(  # noqa: PLR0911, PLR0912 - one branch per row of the transition table
    current: State | None,
    kind: RequestKind,
    action: Action,
    *,
    resuming: bool = False,
    itsm_approved: bool = False,
    held_sha256: str | None = None,
    approved_sha256: str | None = None,
    instance_built: bool = False,
    current_action: Action | None = None,
) -> Decision | Refusal:
    """What a request event does to the ledger.

    ``resuming`` is true when the event is the very one that queued the request and is
    being retried (its first attempt queued it but could not start the build).
    ``itsm_approved`` is true when the event's request says the ITSM approved it.
    ``held_sha256`` is the plan awaiting approval (None: none is held), and
    ``approved_sha256`` the plan an approval names, when the ITSM passes it back.
    ``instance_built`` says an instance exists while the request awaits an approval (an
    update or a destroy waits): a destroy then has something to destroy.
    ``current_action`` is the entry's (None: no entry): a refusal of a request asking for
    something else than what is under way or done is told on the ticket; a repeat of it
    (a duplicate webhook, a replay, a second approval) is not.

    A request that needs an approval is planned at once (a plan-only build) and waits
    with its plan; the approval applies exactly that plan — or, if it names another,
    plans again. An approval with no plan held (its ``approval_required`` event was never
    seen) approved no plan: the request is planned and waits for the approval of that plan.

    Only an approval moves a request awaiting approval on — the one rule intake follows
    too: an ``approved`` event (the policy needed the approval), or a ``received`` one
    whose request the ITSM approved (the ITSM held it, the policy needs nothing more:
    a dev item that arrived with its approval requested, then approved).
    """
    if current is State.QUEUED and resuming:
        return Decision((State.QUEUED,), build=action)
    if current is None:
        if action is Action.DESTROY:
            return Refusal("nothing to destroy: this ticket has no instance", told=True)
        if kind == "approval_required":
            return Decision((State.RECEIVED, State.QUEUED), build=action, plan_only=True)
        if kind == "approved":  # its approval-required event not seen: no plan was shown
            return Decision((State.RECEIVED, State.QUEUED), build=action, plan_only=True)
        return Decision((State.RECEIVED, State.QUEUED), build=action)
    repeat = action is current_action
    if current is State.DESTROYED:
        return Refusal("the instance is destroyed; open a new request", told=not repeat)
    if current is State.PLANNING and (kind == "approved" or itsm_approved):
        return Refusal(
            "approved while its plan is being made: the approval must be of the plan, "
            "which the ticket is shown once it is ready",
            told=True,
        )
    if current in BUILDING or current in (State.RECEIVED, State.APPROVED, State.QUEUED):
        told = kind != "approved" and not repeat  # e.g. an update while it is created
        return Refusal(f"a build is already under way ({current.value})", told=told)
    if current is State.AWAITING_APPROVAL:
        if action is Action.DESTROY and not instance_built:
            return Decision((State.DESTROYED,))
        if kind == "approved" or (kind == "received" and itsm_approved):
            return _approve(action, held_sha256, approved_sha256)
        if action is Action.DESTROY:  # an update waits, the instance exists: destroy it
            return Decision((State.QUEUED,), build=action, plan_only=kind == "approval_required")
        return Refusal(
            f"{kind} while awaiting approval: only an approval moves it on", told=not repeat
        )
    # succeeded, failed or rejected: an instance exists (possibly partly, or not at all
    # after a refused create: a destroy then plans to destroy nothing).
    if action is Action.CREATE:
        # The instance is the ticket's: a create for it again repeats the ticket's own.
        return Refusal(f"a create for an instance that already {current.value}")
    if kind in ("approval_required", "approved"):  # approved: of no plan shown, so plan
        return Decision((State.QUEUED,), build=action, plan_only=True)
    return Decision((State.QUEUED,), build=action)


def decide_build_outcome(  # noqa: PLR0911 - one branch per row of the transition table
    current: State | None,
    current_build: str | None,
    build_id: str,
    outcome: BuildOutcome,
    verdict: BuildVerdict | None = None,
    *,
    action: Action = Action.CREATE,
    stale_because: str | None = None,
) -> Decision | Refusal:
    """What a terminal CodeBuild state does to the ledger.

    ``verdict`` is what the build's record says became of its plan (None: the build left
    no record, as before plan review: it applied). ``action`` is the request's, for the
    re-plan of a stale approved plan, and ``stale_because`` why it is stale.
    """
    if current is None:
        return Refusal("no request is waiting for this build")
    if build_id != current_build:
        return Refusal(f"build {build_id} is not the current build of this request")
    if current not in BUILDING:
        return Refusal(f"the outcome of {build_id} was already recorded ({current.value})")
    if outcome != "SUCCEEDED":
        return Decision((State.FAILED,))
    if verdict == "refused":
        return Decision((State.REJECTED,))
    if current is State.PLANNING or verdict == "held":
        return Decision((State.AWAITING_APPROVAL,))
    if verdict == "stale":
        return Decision(
            (State.QUEUED,),
            build=action,
            plan_only=True,
            replan_because=stale_because or "the approved plan is stale",
        )
    return Decision((State.DESTROYED,) if current is State.DESTROYING else (State.SUCCEEDED,))


def decide_start_refused(current: State | None) -> Decision | Refusal:
    """What CodeBuild refusing a queued request's build for good does to the ledger."""
    if current is not State.QUEUED:
        state = current.value if current else "no entry"
        return Refusal(f"only a queued request has a build to start ({state})")
    return Decision((State.FAILED,))
