"""Fault injection on the local runtime: what happens to the messages between the ITSMs,
intake, the bus, the queues and the write-back when something on their way fails.

Each case says what the ticket shows, where the message is, and proves nothing was lost:
every accepted delivery ends in exactly the write-back its outcome calls for, the
consumers' queues drain, and the DLQs hold exactly what the case expects. The platform
runs as `selfservice up` runs it (moto, the real handlers as worker processes, SQS
pollers, the ITSM sandbox); the operator CLI talks to it like to AWS (`--endpoint-url`).
The cases share one platform; the restart of the embedded AWS comes last.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from selfservice.cli import main
from selfservice.develop.demo import _ledger
from selfservice.local.itsm_sandbox import Fault
from selfservice.local.platform import LocalPlatform
from selfservice_contracts.envelope import build_event, to_eventbridge_entry
from tests.fault.support import (
    UPDATED,
    WRITE_BACK_FAILED,
    Sender,
    dead_letters,
    eventually,
    jira_comments,
    jira_request,
    publish_lifecycle,
    queue_depths,
    reported,
    servicenow_note_texts,
    servicenow_notes,
    servicenow_request,
    servicenow_ticket,
    settled,
)
from tests.notifier.test_write_back import sample

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

WAITING = "[selfservice] Waiting for approval"
APPROVAL_STORY = [WAITING, "[selfservice] Provisioning started", "[selfservice] Plan and cost"]
"""What a ticket needing approval is told: it waits; its plan is made; the plan and its cost
(issue 18: planned first, nothing applied before the approval)."""
STARTED = "selfservice.provisioning.started.v1"
SUCCEEDED = "selfservice.provisioning.succeeded.v1"


@pytest.fixture(scope="module")
def platform(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with LocalPlatform(root, tmp_path_factory.mktemp("faults"), say=lambda _: None) as running:
        yield running


@pytest.fixture
def dlq(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """Run `selfservice dlq …` against the local runtime; (exit code, stdout)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["dlq", *args, "--endpoint-url", platform.embedded.endpoint])
        captured = capsys.readouterr()
        return code, captured.out + ("" if code == 0 else captured.err)

    return run


def _listed(run: Callable[..., tuple[int, str]], queue_suffix: str) -> dict[str, Any]:
    code, out = run("list", "--json")
    assert code == 0
    queues: list[dict[str, Any]] = json.loads(out)["dead_letter_queues"]
    (queue,) = [q for q in queues if q["name"].endswith(queue_suffix)]
    return queue


def _set_notifier_password(platform: LocalPlatform, password: str) -> None:
    platform.client("secretsmanager").put_secret_value(
        SecretId=platform.stack("Notifier").refs["ServiceNowCredentialsSecret"],
        SecretString=json.dumps({"username": "selfservice", "password": password}),
    )


# -- the ITSM unavailable for a while ------------------------------------------------


def test_an_itsm_outage_delays_the_write_backs_and_loses_none(
    platform: LocalPlatform, record_property: Callable[[str, object], None]
) -> None:
    sandbox = platform.itsm
    parked_before = dead_letters(queue_depths(platform))
    refused_before = sandbox.refused
    assert platform.eventbridge is not None
    since = len(platform.eventbridge.entries)
    sandbox.down = True  # ServiceNow and Jira drop every connection
    down_at = time.monotonic()
    # A build that ended while the ITSM was down: two updates of one ticket, in order.
    built = servicenow_ticket("RITM0020002", "a2" * 16)
    publish_lifecycle(platform, built, STARTED, SUCCEEDED)
    servicenow = Sender(
        platform, "servicenow", servicenow_request("RITM0020001", "a1" * 16), "msg_fault_itsm_1"
    )
    jira = Sender(platform, "jira", jira_request("ITSM-101", "10601"), "fault-itsm-2")
    assert servicenow.deliver().status == 202
    assert jira.deliver().status == 202

    eventually(
        lambda: True if sandbox.refused - refused_before >= 6 else None,
        "the notifier to be refused a few times",
    )
    assert servicenow_notes(platform, "a1" * 16) == []
    assert servicenow_notes(platform, "a2" * 16) == []
    assert jira_comments(platform, "ITSM-101") == []
    # It comes back answering 503 (with Retry-After) for a while, then recovers.
    sandbox.fail_next("servicenow", *[Fault(503, {"Retry-After": "1"}) for _ in range(2)])
    sandbox.fail_next("jira", Fault(503, {"Retry-After": "1"}))
    sandbox.down = False
    up_at = time.monotonic()
    refused = sandbox.refused - refused_before

    def written() -> bool | None:
        done = (
            len(servicenow_notes(platform, "a1" * 16)) == len(APPROVAL_STORY)
            and len(jira_comments(platform, "ITSM-101")) == len(APPROVAL_STORY)
            and len(servicenow_notes(platform, "a2" * 16)) == 2
        )
        return True if done else None

    eventually(written, "every write-back after the outage", timeout=90)
    recovered_in = time.monotonic() - up_at

    # What the tickets show: each update once, in order.
    assert servicenow_notes(platform, "a1" * 16) == APPROVAL_STORY
    assert jira_comments(platform, "ITSM-101") == APPROVAL_STORY
    assert servicenow_notes(platform, "a2" * 16) == [
        "[selfservice] Provisioning started",
        "[selfservice] Done",
    ]
    assert not sandbox.faults["servicenow"]  # the 503s were answered (and retried)
    assert not sandbox.faults["jira"]
    # Where the messages are: delivered; nothing waits, nothing was parked; each of the
    # eight updates reported written once, none as failed.
    assert dead_letters(settled(platform)) == parked_before
    updates = reported(platform, since, UPDATED)
    assert len(updates) == len(set(updates)) == 2 * len(APPROVAL_STORY) + 2
    assert reported(platform, since, WRITE_BACK_FAILED) == []
    for name, value in {
        "outage_seconds": round(up_at - down_at, 1),
        "connections_refused": refused,
        "recovered_seconds": round(recovered_in, 1),
    }.items():
        record_property(name, value)


# -- PutEvents failing entries, then the bus staying unavailable ----------------------


def test_put_events_failures_are_retried_and_a_bus_that_stays_down_is_a_503(
    platform: LocalPlatform, record_property: Callable[[str, object], None]
) -> None:
    front = platform.eventbridge
    assert front is not None
    parked_before = dead_letters(queue_depths(platform))

    # Two of intake's entries fail (HTTP 200, FailedEntryCount 1): retried inside the call.
    front.fail_entries(2, source="selfservice.intake", code="ThrottlingException")
    first = Sender(
        platform, "servicenow", servicenow_request("RITM0020011", "b1" * 16), "msg_fault_bus_1"
    )
    seen = len(front.entries)
    assert first.deliver().status == 202
    assert first.statuses == [202]
    (first_id,) = {e.event_id for e in front.entries[seen:] if e.source == "selfservice.intake"}
    assert first_id is not None
    assert front.outcomes(first_id) == ["ThrottlingException", "ThrottlingException", None]

    # The bus refuses every attempt of one invocation: 503 + Retry-After, nothing on the bus.
    front.fail_entries(3 + 1, source="selfservice.intake")  # and the first of the retry's
    second = Sender(
        platform, "servicenow", servicenow_request("RITM0020012", "b2" * 16), "msg_fault_bus_2"
    )
    seen = len(front.entries)
    refused = second.attempt()
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    (second_id,) = {e.event_id for e in front.entries[seen:] if e.source == "selfservice.intake"}
    assert second_id is not None
    assert front.outcomes(second_id) == ["InternalFailure"] * 3  # none reached the bus
    assert second.deliver().status == 202  # the ITSM's retry
    assert second.statuses == [503, 202]
    assert front.outcomes(second_id) == ["InternalFailure"] * 4 + [None]  # on the bus once
    assert front.pending_failures == 0

    def written() -> bool | None:
        done = all(
            len(servicenow_notes(platform, key * 16)) == len(APPROVAL_STORY) for key in ("b1", "b2")
        )
        return True if done else None

    eventually(written, "both tickets' write-backs", timeout=120)
    assert servicenow_notes(platform, "b1" * 16) == APPROVAL_STORY
    assert servicenow_notes(platform, "b2" * 16) == APPROVAL_STORY
    assert dead_letters(settled(platform)) == parked_before
    ledger = eventually(
        lambda: (
            (
                (held := _ledger(platform)).get("servicenow:RITM0020012") == "awaiting_approval"
                and held
            )
            or None
        ),
        "both plans held",
    )
    assert ledger["servicenow:RITM0020011"] == ledger["servicenow:RITM0020012"]
    assert ledger["servicenow:RITM0020012"] == "awaiting_approval"
    record_property("entries_failed", 6)


# -- poison messages -----------------------------------------------------------------


@pytest.fixture
def rotated_in_servicenow(platform: LocalPlatform) -> Iterator[str]:
    """The integration user's password changed in ServiceNow, not in the notifier's secret.

    Afterwards both hold the password the platform was seeded with again.
    """
    platform.itsm.set_password("servicenow", "selfservice", "rotated-in-servicenow")
    yield "rotated-in-servicenow"
    platform.itsm.set_password("servicenow", "selfservice", "sandbox-password")
    _set_notifier_password(platform, "sandbox-password")


def test_a_refused_write_back_is_listed_with_its_error_and_delivered_by_a_redrive(
    platform: LocalPlatform,
    dlq: Callable[..., tuple[int, str]],
    rotated_in_servicenow: str,
    record_property: Callable[[str, object], None],
) -> None:
    parked_before = dead_letters(queue_depths(platform))
    began = time.monotonic()
    started = sample(STARTED)
    event = build_event(started.data, event_id=str(uuid.uuid4()))
    bus = platform.stack("Notifier").parameters["EventBusName"]
    platform.client("events").put_events(Entries=[to_eventbridge_entry(event, event_bus_name=bus)])

    # The notifier is refused (401, and 401 again after re-reading the secret) and parks
    # the message in its DLQ at once, with the error.
    def parked() -> dict[str, Any] | None:
        messages = _listed(dlq, "WriteBackDLQ.fifo")["messages"]
        return messages[0] if messages else None

    message = eventually(parked, "the write-back to be parked", timeout=40)
    record_property("parked_after_seconds", round(time.monotonic() - began, 1))
    assert message["event_type"] == STARTED
    assert message["event_id"] == event.id
    assert message["ticket"] == "servicenow:RITM0010042"
    assert message["reason"]["text"].startswith("PermanentWriteBackError: ")
    assert "credentials rejected after a refresh" in message["reason"]["text"]
    assert message["reason"]["origin"].startswith("parked by its consumer at ")
    assert [row for row in platform.itsm.state.journal if event.id in row["value"]] == []
    code, text = dlq("list")
    assert "why: PermanentWriteBackError: servicenow:RITM0010042" in text
    assert dead_letters(queue_depths(platform)) == {
        **parked_before,
        "Notifier/WriteBackDLQ": parked_before["Notifier/WriteBackDLQ"] + 1,
    }

    # The fix, then the redrive: the ticket gets its update, once; the DLQ is empty.
    _set_notifier_password(platform, rotated_in_servicenow)
    redriven = time.monotonic()
    code, out = dlq("redrive", "--queue", "WriteBackDLQ")
    assert code == 0, out
    assert "moved 1, failed 0" in out

    def written() -> list[dict[str, str]] | None:
        rows = [row for row in platform.itsm.state.journal if event.id in row["value"]]
        return rows or None

    rows = eventually(written, "the ticket update", timeout=40)
    record_property("written_after_redrive_seconds", round(time.monotonic() - redriven, 1))
    assert sorted(row["element"] for row in rows) == ["comments", "work_notes"]  # journal: both
    assert all(row["value"].startswith("[selfservice] Provisioning started") for row in rows)
    assert _listed(dlq, "WriteBackDLQ.fifo")["depth"] == 0
    assert dead_letters(settled(platform)) == parked_before


def test_a_message_sqs_gives_up_on_is_listed_with_the_error_its_consumer_logged(
    platform: LocalPlatform,
    dlq: Callable[..., tuple[int, str]],
    record_property: Callable[[str, object], None],
) -> None:
    parked_before = dead_letters(queue_depths(platform))
    sqs = platform.client("sqs")
    queue = platform.stack("Provisioner").refs["RequestQueue"]
    deployed = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])
    # Lambda would take maxReceiveCount (5) visibility timeouts of 6 minutes; 1 s here,
    # for this test only: a request that starts a (plan) build takes longer than 1 s.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    try:
        _poison_is_parked_with_its_reason(platform, dlq, record_property, parked_before)
    finally:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes=deployed["Attributes"])


def _poison_is_parked_with_its_reason(
    platform: LocalPlatform,
    dlq: Callable[..., tuple[int, str]],
    record_property: Callable[[str, object], None],
    parked_before: dict[str, int],
) -> None:
    sqs = platform.client("sqs")
    queue = platform.stack("Provisioner").refs["RequestQueue"]
    time.sleep(2.5)  # a receive already waiting (1 s long polls) took the old timeout
    poison = sqs.send_message(QueueUrl=queue, MessageBody='{"not": "an event"}')["MessageId"]
    sent = time.monotonic()

    def explained() -> dict[str, Any] | None:
        for message in _listed(dlq, "RequestDLQ")["messages"]:
            if message["message_id"] == poison and message["reason"]:
                return dict(message)
        return None

    message = eventually(explained, "SQS to move the poison message and its reason", timeout=40)
    record_property("listed_with_reason_after_seconds", round(time.monotonic() - sent, 1))
    assert message["reason"]["text"].startswith("ContractError: not an EventBridge event")
    assert "/RequestConsumerLogs" in message["reason"]["origin"]  # the function's log group
    assert "receive 5" in message["reason"]["origin"]  # its last receive before the move
    code, out = dlq("redrive", "--queue", "RequestDLQ", "--dry-run")
    assert code == 0
    assert f"would move {poison} → selfservice-Provisioner-RequestQueue" in out
    # A body that breaks the contract has nothing to fix on our side: it stays parked,
    # alone, for the producer's owner to see — and no consumer's queue holds anything.
    assert dead_letters(settled(platform)) == {
        **parked_before,
        "Provisioner/RequestDLQ": parked_before["Provisioner/RequestDLQ"] + 1,
    }
    assert [m["message_id"] for m in _listed(dlq, "RequestDLQ")["messages"]] == [poison]


# -- a request the provisioner cannot act on -----------------------------------------


def test_a_decommission_of_a_ticket_with_no_instance_is_told_why_and_changes_nothing(
    platform: LocalPlatform,
) -> None:
    parked_before = dead_letters(queue_depths(platform))
    sys_id = "d1" * 16
    body = servicenow_request("RITM0020031", sys_id, approval="approved")
    body.update(event="sc_req_item.cancelled", state="4")  # cancelled before anything was built
    body["variables"].update(environment="dev", instance_type="t3.micro")
    assert Sender(platform, "servicenow", body, "msg_fault_refused_1").deliver().status == 202

    notes = eventually(
        lambda: servicenow_notes(platform, sys_id) or None, "the ticket to be told", timeout=60
    )
    assert notes == ["[selfservice] Request not acted on"]
    (note,) = servicenow_note_texts(platform, sys_id)
    assert "did not act on this destroy of ec2-app: nothing to destroy" in note
    assert "Nothing was changed." in note
    # Nothing was recorded or built for it, and nothing waits or was parked.
    assert "servicenow:RITM0020031" not in _ledger(platform)
    assert dead_letters(settled(platform)) == parked_before


# -- the embedded AWS restarting under the pipeline (last: it empties the embedded AWS) --


def test_the_embedded_aws_restarting_acknowledges_nothing_it_then_loses(
    platform: LocalPlatform, record_property: Callable[[str, object], None]
) -> None:
    before = Sender(
        platform, "servicenow", servicenow_request("RITM0020021", "c1" * 16), "msg_fault_moto_1"
    )
    assert before.deliver().status == 202
    eventually(
        lambda: len(servicenow_notes(platform, "c1" * 16)) == len(APPROVAL_STORY) or None,
        "the first ticket's write-backs, its plan included",
        timeout=120,
    )

    # Two more tickets arrive (their ITSMs were given the webhook secrets long ago) …
    arriving = [
        Sender(
            platform, "servicenow", servicenow_request("RITM0020022", "c2" * 16), "msg_fault_moto_2"
        ),
        Sender(platform, "jira", jira_request("ITSM-102", "10602"), "fault-moto-3"),
    ]
    assert platform.eventbridge is not None
    since = len(platform.eventbridge.entries)
    # … while the embedded AWS dies, with everything it held in memory.
    platform.embedded.stop()
    down_at = time.monotonic()
    finals: dict[str, Any] = {}
    threads = [
        threading.Thread(target=lambda s=s: finals.update({s.delivery_id: s.deliver()}))
        for s in arriving
    ]
    for thread in threads:
        thread.start()
    eventually(  # each ITSM tried, and retried after Retry-After, while it was down
        lambda: True if all(len(s.answers) >= 2 for s in arriving) else None,
        "every arriving delivery to be answered twice while the embedded AWS is down",
        timeout=30,
    )
    restart_seconds = platform.restart_embedded_aws()
    back_at = time.monotonic()
    for thread in threads:
        thread.join(timeout=120)
    assert {s.delivery_id for s in arriving} == set(finals)

    # While it was down, intake acknowledged nothing: every answer was 503 + Retry-After.
    during = [a for s in arriving for a in s.answers if a.at < back_at - restart_seconds]
    assert len(during) >= 2 * len(arriving)
    assert {a.status for a in during} == {503}
    assert {a.headers.get("Retry-After") for a in during} == {"5"}
    # Each delivery ends accepted once, by the ITSM's retry; nothing after the 202.
    for sender in arriving:
        assert sender.statuses[-1] == 202
        assert 202 not in sender.statuses[:-1]
        assert set(sender.statuses[:-1]) <= {503, None}  # None: no answer mid-restart

    def written() -> bool | None:
        done = len(servicenow_notes(platform, "c2" * 16)) == len(APPROVAL_STORY) and len(
            jira_comments(platform, "ITSM-102")
        ) == len(APPROVAL_STORY)
        return True if done else None

    eventually(written, "the write-backs of the deliveries retried after the restart", timeout=120)
    written_at = time.monotonic()
    # What the tickets show: every ticket that was answered 202 has its update, once.
    assert servicenow_notes(platform, "c1" * 16) == APPROVAL_STORY  # not written again
    assert servicenow_notes(platform, "c2" * 16) == APPROVAL_STORY
    assert jira_comments(platform, "ITSM-102") == APPROVAL_STORY
    # Where the messages are: the new embedded AWS holds the retried requests' state,
    # its queues drain and its DLQs stay empty. (The ledger entry of RITM0020021 went
    # with the old server: moto keeps state in memory only; its ticket had its update.)
    assert set(dead_letters(settled(platform)).values()) == {0}
    # Each ticket's story once, no more.
    assert len(reported(platform, since, UPDATED)) == 2 * len(APPROVAL_STORY)
    assert reported(platform, since, WRITE_BACK_FAILED) == []
    held = {"servicenow:RITM0020022": "awaiting_approval", "jira:ITSM-102": "awaiting_approval"}
    assert eventually(lambda: _ledger(platform) == held or None, "both plans held")
    for name, value in {
        "down_seconds": round(back_at - restart_seconds - down_at, 1),
        "restart_seconds": round(restart_seconds, 1),
        "answers_while_down": len(during),
        "attempts": sum(len(s.answers) for s in arriving),
        "written_seconds_after_restart": round(written_at - back_at, 1),
    }.items():
        record_property(name, value)
