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
        (None, "approval_required", C, (S.RECEIVED, S.AWAITING_APPROVAL), None),
        (None, "approved", C, (S.RECEIVED, S.APPROVED, S.QUEUED), C),
        (S.AWAITING_APPROVAL, "approved", C, (S.APPROVED, S.QUEUED), C),
        (S.AWAITING_APPROVAL, "received", D, (S.DESTROYED,), None),
        (S.SUCCEEDED, "received", U, (S.QUEUED,), U),
        (S.SUCCEEDED, "approval_required", U, (S.AWAITING_APPROVAL,), None),
        (S.SUCCEEDED, "approved", U, (S.APPROVED, S.QUEUED), U),
        (S.SUCCEEDED, "received", D, (S.QUEUED,), D),
        (S.FAILED, "received", U, (S.QUEUED,), U),
        (S.FAILED, "received", D, (S.QUEUED,), D),
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
    assert decision == Decision(transitions, build=build)


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
    ],
)
def test_refused_request_transitions(
    current: State | None, kind: str, action: Action, reason: str
) -> None:
    decision = decide_request(current, kind, action)  # type: ignore[arg-type]
    assert isinstance(decision, Refusal)
    assert reason in decision.reason


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


def test_only_a_queued_request_has_a_start_to_refuse() -> None:
    assert decide_start_refused(State.QUEUED) == Decision((State.FAILED,))
    for state in [None, *(s for s in State if s is not State.QUEUED)]:
        assert isinstance(decide_start_refused(state), Refusal), state
