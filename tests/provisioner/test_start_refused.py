"""Issue 15's last gap: CodeBuild refusing StartBuild for good is told on the ticket.

The request moves ``queued → failed``, ``provisioning.failed`` says ``NOT_STARTED`` with
AWS's error code and message, the record is done (nothing raised, so SQS does not retry a
call that cannot succeed), and a serial product's slot goes to the next request. A
transient error still raises (``test_service.py``: the retry resumes the same build).
"""

from __future__ import annotations

import pytest

from provisioner.domain.ledger import LedgerEntry, Transition
from provisioner.domain.lifecycle import State
from provisioner.domain.ports import BuildRefused, BuildResult
from selfservice_contracts.events import ProvisioningFailed, ProvisioningStarted
from selfservice_contracts.request import Action, TicketRef, TicketSystem
from selfservice_runtime.observability import Metric
from tests.provisioner.fakes import World, received, request, world

DENIED = BuildRefused(
    "AccessDeniedException",
    "User: arn:aws:sts::123456789012:assumed-role/"
    "selfservice-Provisioner-RequestConsumerFunctionRole/"
    "selfservice-Provisioner-RequestConsumerFunction is not authorized to perform: "
    "codebuild:StartBuild on resource: "
    "arn:aws:codebuild:us-east-1:123456789012:project/selfservice-provision because no "
    "identity-based policy allows the codebuild:StartBuild action",
)


def _counted(w: World) -> list[Metric]:
    counted: list[Metric] = []
    w.service.count = counted.append
    return counted


def _failed(w: World) -> list[ProvisioningFailed]:
    return [e.data for e in w.bus.events if isinstance(e.data, ProvisioningFailed)]


def _jira(key: str) -> TicketRef:
    return TicketRef(
        system=TicketSystem.JIRA,
        key=key,
        internal_id=key.rsplit("-", 1)[1],
        url=f"https://acme.atlassian.net/browse/{key}",
    )


def test_an_access_denied_start_fails_the_request_and_tells_the_ticket() -> None:
    w = world()
    counted = _counted(w)
    told: list[tuple[str, BuildRefused]] = []
    w.service.report_not_started = lambda request_id, refused: told.append((request_id, refused))
    w.builds.refuse_next.append(DENIED)
    req = request()

    assert w.service.on_request(received(req)) == "not_started"  # nothing raised: done

    assert w.builds.started == []
    (event,) = w.bus.events
    failed = event.data
    assert isinstance(failed, ProvisioningFailed)
    assert failed.build_status == "NOT_STARTED"
    assert failed.phase is None
    assert failed.build_id is None
    assert failed.error_tail == []
    assert failed.reason.startswith("CodeBuild refused to start the build: AccessDeniedException: ")
    assert "not authorized to perform: codebuild:StartBuild on resource: " in failed.reason
    assert "project/selfservice-provision" in failed.reason
    assert (failed.ticket, failed.action, failed.attempt) == (req.ticket, Action.CREATE, 1)
    entry = w.ledger.entries[req.request_id]
    assert entry.state is State.FAILED
    assert entry.build_id is None
    history = w.ledger.history(req.request_id)
    assert [(t.from_state, t.to_state) for t in history] == [
        (None, State.RECEIVED),
        (State.RECEIVED, State.QUEUED),
        (State.QUEUED, State.FAILED),
    ]
    assert history[-1].cause == "StartBuild refused: AccessDeniedException"
    assert history[-1].detail["status"] == "NOT_STARTED"
    assert history[-1].detail["error_code"] == "AccessDeniedException"
    assert Metric.BUILDS_FAILED in counted
    assert Metric.BUILDS_STARTED not in counted
    assert told == [(req.request_id, DENIED)]


def test_a_redelivered_event_after_the_refusal_tells_the_ticket_nothing_again() -> None:
    w = world()
    w.builds.refuse_next.append(DENIED)
    req = request()
    w.service.on_request(received(req, "e1"))
    assert w.service.on_request(received(req, "e1")) == "refused"  # the ledger is ahead
    assert len(_failed(w)) == 1
    assert len(w.builds.refused) == 1


def test_a_retry_after_a_lost_ledger_write_republishes_the_same_event() -> None:
    """The failed event is published before the ledger write; if the write is lost, SQS
    redelivers, StartBuild is refused again and the event carries the same id (the
    notifier deduplicates on it)."""
    w = world()
    w.builds.refuse_next.extend([DENIED, DENIED])
    req = request()
    save = w.ledger.save
    lost: list[State] = []

    def lose_the_failed_write(
        before: LedgerEntry | None, after: LedgerEntry, transitions: list[Transition]
    ) -> None:
        if after.state is State.FAILED and not lost:
            lost.append(after.state)
            raise ConnectionError("DynamoDB went away")
        save(before, after, transitions)

    w.ledger.save = lose_the_failed_write  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):  # the record fails: SQS redelivers it
        w.service.on_request(received(req, "e1"))
    assert w.ledger.entries[req.request_id].state is State.QUEUED
    assert w.service.on_request(received(req, "e1")) == "not_started"
    first, second = w.bus.events
    assert first.id == second.id
    assert w.ledger.entries[req.request_id].state is State.FAILED


def test_an_update_after_a_refused_start_starts_a_new_attempt() -> None:
    w = world()
    w.builds.refuse_next.append(DENIED)
    w.service.on_request(received(request()))
    update = request(action=Action.UPDATE, instance_type="t3.small")
    assert w.service.on_request(received(update, "u")) == "started"
    assert w.builds.started[-1].attempt == 2
    assert w.ledger.entries[update.request_id].state is State.UPDATING


def test_a_refused_serial_build_frees_the_slot_for_the_next_request() -> None:
    w = world()
    holder, refused, waiting = (
        request(product="aws-account", ticket=_jira(key)) for key in ("ITSM-1", "ITSM-2", "ITSM-3")
    )
    assert w.service.on_request(received(holder, "a")) == "started"
    assert w.service.on_request(received(refused, "b")) == "waiting"
    assert w.service.on_request(received(waiting, "c")) == "waiting"

    # The holder's build ends; the slot goes to the second request, whose StartBuild is
    # refused: it fails, and the slot goes on to the third, which starts.
    w.builds.refuse_next.append(DENIED)
    build = w.builds.started[0]
    build_id = w.builds.ids[(holder.request_id, "create", 1)]
    result = BuildResult(build_id, "SUCCEEDED", holder.request_id, 1)
    assert w.service.on_build_result(result) == "recorded"

    assert [b.request.request_id for b in w.builds.refused] == [refused.request_id]
    assert w.ledger.entries[refused.request_id].state is State.FAILED
    assert not w.ledger.entries[refused.request_id].waiting_for_slot
    assert [b.request.request_id for b in w.builds.started] == [
        build.request.request_id,
        waiting.request_id,
    ]
    assert w.ledger.entries[waiting.request_id].state is State.PROVISIONING
    assert w.slots.holders["aws-account"] == waiting.request_id
    (failed,) = _failed(w)
    assert failed.request_id == refused.request_id
    assert failed.build_status == "NOT_STARTED"
    started = [e.data for e in w.bus.events if isinstance(e.data, ProvisioningStarted)]
    assert [s.request_id for s in started] == [holder.request_id, waiting.request_id]


def test_a_refused_serial_build_with_nobody_waiting_leaves_the_slot_free() -> None:
    w = world()
    w.builds.refuse_next.append(DENIED)
    first = request(product="aws-account", ticket=_jira("ITSM-1"))
    assert w.service.on_request(received(first, "a")) == "not_started"
    assert "aws-account" not in w.slots.holders
    second = request(product="aws-account", ticket=_jira("ITSM-2"))
    assert w.service.on_request(received(second, "b")) == "started"  # not "waiting"
