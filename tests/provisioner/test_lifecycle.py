"""The transition table, row by row."""

from __future__ import annotations

import pytest

from provisioner.domain.lifecycle import (
    Decision,
    Refusal,
    State,
    decide_build_outcome,
    decide_request,
    decide_start_refused,
)
from selfservice_contracts.request import Action

S = State
C, U, D = Action.CREATE, Action.UPDATE, Action.DESTROY


@pytest.mark.parametrize(
    ("current", "kind", "action", "transitions", "build"),
    [
        (None, "received", C, (S.RECEIVED, S.QUEUED), C),
        # An approval is of a plan: the request is planned at once (plan_only below).
        (None, "approval_required", C, (S.RECEIVED, S.QUEUED), C),
        (None, "approved", C, (S.RECEIVED, S.QUEUED), C),
        (S.AWAITING_APPROVAL, "approved", C, (S.APPROVED, S.QUEUED), C),
        (S.AWAITING_APPROVAL, "received", D, (S.DESTROYED,), None),
        (S.SUCCEEDED, "received", U, (S.QUEUED,), U),
        (S.SUCCEEDED, "approval_required", U, (S.QUEUED,), U),
        (S.SUCCEEDED, "approval_required", D, (S.QUEUED,), D),
        (S.SUCCEEDED, "approved", U, (S.QUEUED,), U),
        (S.SUCCEEDED, "received", D, (S.QUEUED,), D),
        (S.FAILED, "received", U, (S.QUEUED,), U),
        (S.FAILED, "received", D, (S.QUEUED,), D),
        # A refused plan is terminal like a failure: an update or a destroy moves it on.
        (S.REJECTED, "received", U, (S.QUEUED,), U),
        (S.REJECTED, "received", D, (S.QUEUED,), D),
        (S.REJECTED, "approval_required", U, (S.QUEUED,), U),
    ],
)
def test_allowed_request_transitions(
    current: State | None,
    kind: str,
    action: Action,
    transitions: tuple[State, ...],
    build: Action | None,
) -> None:
    decision = decide_request(current, kind, action)  # type: ignore[arg-type]
    # An approval with no plan held for it approved no plan: it is planned, and waits.
    plan_only = kind == "approval_required" or (
        kind == "approved" and current is not S.AWAITING_APPROVAL
    )
    assert decision == Decision(transitions, build=build, plan_only=plan_only)


@pytest.mark.parametrize(
    ("current", "kind", "action", "reason"),
    [
        (None, "received", D, "nothing to destroy"),
        (S.SUCCEEDED, "received", C, "already succeeded"),  # a replayed "received"
        (S.FAILED, "approved", C, "already failed"),
        (S.PROVISIONING, "approved", C, "already under way"),  # a second "approved"
        (S.QUEUED, "approved", C, "already under way"),
        (S.UPDATING, "received", U, "already under way"),
        (S.DESTROYED, "received", C, "destroyed"),
        (S.AWAITING_APPROVAL, "approval_required", C, "only an approval"),
        (S.AWAITING_APPROVAL, "received", C, "only an approval"),
        (S.REJECTED, "received", C, "already rejected"),  # a replayed "received"
        (S.PLANNING, "approved", C, "while its plan is being made"),
        (S.PLANNING, "received", U, "already under way"),
        (S.PLANNING, "approval_required", C, "already under way"),
    ],
)
def test_refused_request_transitions(
    current: State | None, kind: str, action: Action, reason: str
) -> None:
    decision = decide_request(current, kind, action)  # type: ignore[arg-type]
    assert isinstance(decision, Refusal)
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("current", "current_action", "kind", "action", "told"),
    [
        # What cannot be done now, asked for: the ticket is told why.
        (None, None, "received", D, True),  # nothing to destroy
        (S.DESTROYED, D, "received", U, True),
        (S.PROVISIONING, C, "received", U, True),  # an update while it is created
        (S.PROVISIONING, C, "approval_required", D, True),
        (S.PLANNING, C, "approved", C, True),  # the approval must be of the plan
        (S.AWAITING_APPROVAL, C, "received", U, True),
        # A repeat of what is under way or done: refused quietly.
        (S.DESTROYED, D, "received", D, False),
        (S.PROVISIONING, C, "received", C, False),  # a redelivered or replayed "received"
        (S.PROVISIONING, C, "approved", C, False),  # a second approval
        (S.QUEUED, U, "approved", U, False),
        (S.AWAITING_APPROVAL, C, "approval_required", C, False),
        (S.SUCCEEDED, C, "received", C, False),  # the ticket's own create, replayed
    ],
)
def test_a_refusal_is_told_on_the_ticket_unless_it_repeats_what_is_asked(
    current: State | None, current_action: Action | None, kind: str, action: Action, told: bool
) -> None:
    decision = decide_request(current, kind, action, current_action=current_action)  # type: ignore[arg-type]
    assert isinstance(decision, Refusal)
    assert decision.told is told


def test_the_event_that_queued_a_build_may_resume_it() -> None:
    assert decide_request(S.QUEUED, "received", C, resuming=True) == Decision((S.QUEUED,), C)
    assert isinstance(decide_request(S.QUEUED, "received", C, resuming=False), Refusal)


@pytest.mark.parametrize(
    ("current", "outcome", "final"),
    [
        (S.PROVISIONING, "SUCCEEDED", S.SUCCEEDED),
        (S.UPDATING, "SUCCEEDED", S.SUCCEEDED),
        (S.DESTROYING, "SUCCEEDED", S.DESTROYED),
        (S.PROVISIONING, "FAILED", S.FAILED),
        (S.DESTROYING, "STOPPED", S.FAILED),
        (S.UPDATING, "TIMED_OUT", S.FAILED),
        (S.PLANNING, "FAILED", S.FAILED),
    ],
)
def test_build_outcomes(current: State, outcome: str, final: State) -> None:
    decision = decide_build_outcome(current, "b-1", "b-1", outcome)  # type: ignore[arg-type]
    assert isinstance(decision, Decision)
    assert decision.final is final


def test_stale_and_repeated_build_outcomes_are_refused() -> None:
    stale = decide_build_outcome(S.PROVISIONING, "b-2", "b-1", "SUCCEEDED")
    assert isinstance(stale, Refusal)
    assert "not the current build" in stale.reason
    repeated = decide_build_outcome(S.SUCCEEDED, "b-1", "b-1", "SUCCEEDED")
    assert isinstance(repeated, Refusal)
    assert "already recorded" in repeated.reason
    assert isinstance(decide_build_outcome(None, None, "b-1", "FAILED"), Refusal)


def test_a_request_the_itsm_held_moves_on_when_the_itsm_approves_it() -> None:
    """One rule with intake: a dev item held by the ITSM arrives approved as ``received``."""
    assert decide_request(S.AWAITING_APPROVAL, "received", C, itsm_approved=True) == Decision(
        (S.APPROVED, S.QUEUED), build=C
    )
    refused = decide_request(S.AWAITING_APPROVAL, "received", C, itsm_approved=False)
    assert isinstance(refused, Refusal)
    assert "only an approval moves it on" in refused.reason
    assert isinstance(
        decide_request(S.AWAITING_APPROVAL, "approval_required", C, itsm_approved=True), Refusal
    )


@pytest.mark.parametrize(
    ("current", "verdict", "final"),
    [
        # One build planned, reviewed and applied (no approval needed), or left no
        # record (a build from before plan review): applied.
        (S.PROVISIONING, "applied", S.SUCCEEDED),
        (S.PROVISIONING, None, S.SUCCEEDED),
        (S.DESTROYING, "applied", S.DESTROYED),
        # The review held the plan (over budget, require_approval): nothing applied.
        (S.PROVISIONING, "held", S.AWAITING_APPROVAL),
        (S.UPDATING, "held", S.AWAITING_APPROVAL),
        # A plan-only build's plan waits for the approval, whatever the review said.
        (S.PLANNING, "held", S.AWAITING_APPROVAL),
        (S.PLANNING, "applied", S.AWAITING_APPROVAL),
        (S.PLANNING, None, S.AWAITING_APPROVAL),
        # Refused: a failed plan policy or a reject budget; nothing applied.
        (S.PROVISIONING, "refused", S.REJECTED),
        (S.PLANNING, "refused", S.REJECTED),
        (S.DESTROYING, "refused", S.REJECTED),
    ],
)
def test_a_succeeded_build_ends_as_its_review_says(
    current: State, verdict: str | None, final: State
) -> None:
    decision = decide_build_outcome(current, "b-1", "b-1", "SUCCEEDED", verdict)  # type: ignore[arg-type]
    assert decision == Decision((final,))


def test_a_stale_approved_plan_is_planned_again_and_nothing_is_applied() -> None:
    decision = decide_build_outcome(
        S.UPDATING,
        "b-1",
        "b-1",
        "SUCCEEDED",
        "stale",
        action=U,
        stale_because="the state changed since the plan was made",
    )
    assert decision == Decision(
        (S.QUEUED,),
        build=U,
        plan_only=True,
        replan_because="the state changed since the plan was made",
    )
    # A failed build is a failure whatever its record would have said.
    assert decide_build_outcome(S.UPDATING, "b-1", "b-1", "FAILED", "stale") == Decision(
        (S.FAILED,)
    )


HELD = "a" * 64


def test_the_approval_of_a_held_plan_applies_that_plan() -> None:
    approved = Decision((S.APPROVED, S.QUEUED), build=C, apply_held=True)
    assert decide_request(S.AWAITING_APPROVAL, "approved", C, held_sha256=HELD) == approved
    # The ITSM passed back the hash it showed: the same plan.
    assert (
        decide_request(S.AWAITING_APPROVAL, "approved", C, held_sha256=HELD, approved_sha256=HELD)
        == approved
    )
    # A dev item the ITSM held, approved there: the same rule.
    assert (
        decide_request(S.AWAITING_APPROVAL, "received", C, itsm_approved=True, held_sha256=HELD)
        == approved
    )
    # Held before plan review existed: the approval plans and applies in one build.
    assert decide_request(S.AWAITING_APPROVAL, "approved", C) == Decision(
        (S.APPROVED, S.QUEUED), build=C
    )


def test_an_approval_of_another_plan_applies_nothing_and_plans_again() -> None:
    decision = decide_request(
        S.AWAITING_APPROVAL, "approved", U, held_sha256=HELD, approved_sha256="b" * 64
    )
    assert isinstance(decision, Decision)
    assert (decision.transitions, decision.build, decision.plan_only, decision.apply_held) == (
        (S.QUEUED,),
        U,
        True,
        False,
    )
    assert decision.replan_because == (
        "the approval was given for plan bbbbbbbbbbbb…, not the plan held for it (aaaaaaaaaaaa…)"
    )


def test_only_a_queued_request_has_a_start_to_refuse() -> None:
    assert decide_start_refused(State.QUEUED) == Decision((State.FAILED,))
    for state in [None, *(s for s in State if s is not State.QUEUED)]:
        assert isinstance(decide_start_refused(state), Refusal), state


def test_a_destroy_while_an_update_or_destroy_awaits_approval_destroys_what_exists() -> None:
    """Awaiting a create, nothing was built; awaiting an update, the instance exists."""
    assert decide_request(S.AWAITING_APPROVAL, "received", D) == Decision((S.DESTROYED,))
    built = {"instance_built": True, "held_sha256": HELD}
    assert decide_request(S.AWAITING_APPROVAL, "received", D, **built) == Decision(  # type: ignore[arg-type]
        (S.QUEUED,), build=D
    )
    assert decide_request(S.AWAITING_APPROVAL, "approval_required", D, **built) == Decision(  # type: ignore[arg-type]
        (S.QUEUED,), build=D, plan_only=True
    )
    # The approval of a held destroy plan applies it.
    assert decide_request(S.AWAITING_APPROVAL, "approved", D, **built) == Decision(  # type: ignore[arg-type]
        (S.APPROVED, S.QUEUED), build=D, apply_held=True
    )
