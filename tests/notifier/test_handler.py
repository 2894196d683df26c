"""The real WriteBackFunction on moto (queues, bus, secrets) writing to the ITSM sandbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from notifier.handlers import write_back
from selfservice.local.itsm_sandbox import Fault, ItsmSandbox
from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
from selfservice_contracts import failures
from selfservice_contracts.events import AnyEvent, WriteBackFailed
from selfservice_runtime.observability import Metric
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import (
    create_dedupe_table,
    create_write_back_queues,
    drain,
    mocked_aws,
    observe_bus,
)
from tests.environment import use_function_environment
from tests.lambda_context import FakeContext, traced_invocation
from tests.notifier.test_write_back import sample
from tests.telemetry import PutEventsSpy, Telemetry

REGION = "us-east-1"


@dataclass
class Stack:
    sandbox: ItsmSandbox
    queue_url: str
    dlq_url: str
    observer_url: str

    def body(self, event: AnyEvent) -> str:
        return json.dumps(eventbridge_delivery(event, event_bus_name="bus"))

    def published(self) -> list[AnyEvent]:
        return [parse_sqs_body(m["Body"]) for m in drain(self.observer_url)]


def _records(stack: Stack, bodies: list[str], receives: int = 1) -> dict[str, Any]:
    """An SQS event as Lambda builds it (messages really sent, so receipts are real)."""
    sqs = boto3.client("sqs", region_name=REGION)
    for body in bodies:
        sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=body, MessageGroupId="ticket-updates"
        )
    messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    return _as_batch(messages, receives)


def _as_batch(messages: Sequence[Mapping[str, Any]], receives: int) -> dict[str, Any]:
    return sqs_event(
        [m["Body"] for m in messages],
        queue="writeback.fifo",
        receive_count=receives,
        message_ids=[m["MessageId"] for m in messages],
        receipt_handles=[m["ReceiptHandle"] for m in messages],
    )


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mocked_aws(monkeypatch), ItsmSandbox() as sandbox:
        queue, dlq = create_write_back_queues(boto3.client("sqs", region_name=REGION))
        observer = observe_bus("bus", {"source": ["selfservice.notifier"]}, rule="r")
        create_dedupe_table(boto3.client("dynamodb", region_name=REGION), "idem")
        document = {
            "servicenow": {"api_url": sandbox.url},
            "jira": {"api_url": sandbox.url},
            "retries": {
                "attempts": 2,
                "base_seconds": 0,
                "cap_seconds": 0,
                "queue_base_seconds": 0,
                "queue_cap_seconds": 0,
            },
        }
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name="/notifier/config", Type="String", Value=json.dumps(document)
        )
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.create_secret(
            Name="sn",
            SecretString=json.dumps({"username": "selfservice", "password": "sandbox-password"}),
        )
        secrets.create_secret(
            Name="jira",
            SecretString=json.dumps(
                {"username": "selfservice@acme.example", "password": "sandbox-token"}
            ),
        )
        use_function_environment(
            monkeypatch,
            "WriteBackFunction",
            {
                "POWERTOOLS_LOG_LEVEL": "WARNING",  # the LogLevel parameter: a quiet run
                "EVENT_BUS_NAME": "bus",
                "IDEMPOTENCY_TABLE_NAME": "idem",
                "NOTIFIER_CONFIG_PARAMETER": "/notifier/config",
                "SERVICENOW_CREDENTIALS_SECRET_ID": "sn",
                "JIRA_CREDENTIALS_SECRET_ID": "jira",
                "WRITE_BACK_DLQ_URL": dlq,
            },
        )
        write_back.config.cache_clear()
        write_back.runtime.cache_clear()
        yield Stack(sandbox, queue, dlq, observer)
        write_back.config.cache_clear()
        write_back.runtime.cache_clear()


STARTED = sample("selfservice.provisioning.started.v1")
SUCCEEDED = sample("selfservice.provisioning.succeeded.v1")
APPROVAL = sample("selfservice.request.approval-required.v1")


def test_a_tickets_later_updates_wait_behind_its_failed_one(stack: Stack) -> None:
    stack.sandbox.fail_next(
        "servicenow", Fault(503, {"Retry-After": "0"}), Fault(503, {"Retry-After": "0"})
    )
    event = _records(stack, [stack.body(STARTED), stack.body(SUCCEEDED), stack.body(APPROVAL)])
    response = write_back.lambda_handler(event, FakeContext())
    ids = [r["messageId"] for r in event["Records"]]
    assert response == {
        "batchItemFailures": [{"itemIdentifier": ids[0]}, {"itemIdentifier": ids[1]}]
    }
    assert stack.sandbox.state.journal == []  # the ServiceNow ticket got nothing out of order
    assert len(stack.sandbox.state.jira_comments["ITSM-42"]) == 1  # the other ticket went on
    assert [e.type for e in stack.published()] == ["selfservice.ticket.updated.v1"]


def test_a_plan_reaches_the_servicenow_ticket_as_tables(stack: Stack) -> None:
    planned = sample("selfservice.provisioning.planned.v1")
    event = _records(stack, [stack.body(planned)])
    assert write_back.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    (note,) = [row["value"] for row in stack.sandbox.state.journal]
    assert note.startswith("[selfservice] Plan and cost\n")
    assert "[code]<table" in note
    assert "<th>Add</th><th>Change</th><th>Replace</th><th>Destroy</th>" in note
    assert f"(selfservice event {planned.source}#{planned.id})" in note


def test_a_long_retry_after_becomes_the_messages_visibility(stack: Stack) -> None:
    stack.sandbox.fail_next("servicenow", Fault(429, {"Retry-After": "90"}))
    event = _records(stack, [stack.body(STARTED)])
    write_back.lambda_handler(event, FakeContext())
    sqs = boto3.client("sqs", region_name=REGION)
    assert sqs.receive_message(QueueUrl=stack.queue_url).get("Messages") is None  # hidden ~91 s


def test_a_tickets_later_update_comes_back_with_the_failed_one_not_the_queue_timeout(
    stack: Stack,
) -> None:
    """Found by the fault suite: the later update kept the queue's visibility timeout (12
    minutes in the template) and, in flight, held the one FIFO group — every ticket."""
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.set_queue_attributes(QueueUrl=stack.queue_url, Attributes={"VisibilityTimeout": "720"})
    stack.sandbox.down = True
    event = _records(stack, [stack.body(STARTED), stack.body(SUCCEEDED)])  # one ticket
    response = write_back.lambda_handler(event, FakeContext())
    assert len(response["batchItemFailures"]) == 2
    stack.sandbox.down = False

    def back() -> list[str] | None:
        messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)
        bodies = [m["Body"] for m in messages.get("Messages", [])]
        return bodies or None

    deadline = time.monotonic() + 10
    bodies: list[str] = []
    while len(bodies) < 2 and time.monotonic() < deadline:
        bodies += back() or []
        time.sleep(0.2)
    assert [json.loads(b)["detail-type"] for b in bodies] == [STARTED.type, SUCCEEDED.type]


def test_a_permanent_refusal_is_parked_in_the_dlq_and_reported(stack: Stack) -> None:
    stack.sandbox.fail_next("servicenow", Fault(404))
    event = _records(stack, [stack.body(STARTED)])
    assert write_back.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    sqs = boto3.client("sqs", region_name=REGION)
    (parked,) = sqs.receive_message(QueueUrl=stack.dlq_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert parked["Body"] == event["Records"][0]["body"]
    # Why it is parked travels with it: what `selfservice dlq list` shows.
    why = {name: value["StringValue"] for name, value in parked["MessageAttributes"].items()}
    assert why[failures.ERROR_TYPE] == "PermanentWriteBackError"
    assert "404" in why[failures.ERROR]
    assert why[failures.SOURCE_QUEUE] == "writeback.fifo"
    assert why[failures.FAILED_AT].endswith("+00:00")
    (failed,) = stack.published()
    assert isinstance(failed.data, WriteBackFailed)
    assert failed.data.status_code == 404


def _broken_contract(stack: Stack) -> str:
    body = json.loads(stack.body(STARTED))
    del body["detail"]["data"]["ticket"]
    return json.dumps(body)


@pytest.mark.parametrize("broken", ["not an event", "breaks its contract"])
def test_a_message_that_cannot_be_parsed_is_parked_at_once_and_holds_nothing_up(
    stack: Stack, broken: str
) -> None:
    """Retried, it would fail every receive and hold the one FIFO group (every ticket's
    updates) for the queue's visibility timeout, eight times, with every DLQ empty."""
    unreadable = "{not json" if broken == "not an event" else _broken_contract(stack)
    event = _records(stack, [unreadable, stack.body(SUCCEEDED)])
    assert write_back.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(stack.sandbox.state.journal) == 1  # the update behind it was written
    sqs = boto3.client("sqs", region_name=REGION)
    (parked,) = sqs.receive_message(QueueUrl=stack.dlq_url, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert parked["Body"] == unreadable
    why = {name: value["StringValue"] for name, value in parked["MessageAttributes"].items()}
    assert why[failures.ERROR_TYPE] == "ContractError"
    assert why[failures.SOURCE_QUEUE] == "writeback.fifo"
    assert why[failures.FAILED_AT].endswith("+00:00")


def test_a_redelivered_event_is_not_written_twice(stack: Stack) -> None:
    body = stack.body(STARTED)
    write_back.lambda_handler(_records(stack, [body]), FakeContext())
    write_back.lambda_handler(_records(stack, [body], receives=2), FakeContext())
    assert len(stack.sandbox.state.journal) == 1


def test_an_outage_delays_updates_but_loses_none_and_keeps_each_tickets_order(stack: Stack) -> None:
    # Five lifecycle events for three tickets, in order.
    tickets = {
        "sn": [STARTED, SUCCEEDED],
        "jira": [APPROVAL],
    }
    other = sample("selfservice.request.rejected.v1")  # a third ticket (RITM0010077)
    failed = sample("selfservice.provisioning.failed.v1")  # RITM0010042 again, after succeeded
    order = [STARTED, APPROVAL, other, SUCCEEDED, failed]
    sqs = boto3.client("sqs", region_name=REGION)
    for event in order:
        sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=stack.body(event), MessageGroupId="ticket-updates"
        )
    stack.sandbox.down = True
    receives = 0

    def poll() -> None:
        nonlocal receives
        receives += 1
        messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return
        event = _as_batch(messages, receives)
        response = write_back.lambda_handler(event, FakeContext())
        failed_ids = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            sqs.delete_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in done],
            )

    for _ in range(3):  # the ITSM is down: nothing is written, nothing is lost
        poll()
    assert stack.sandbox.state.journal == []
    counts = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    # Deferred messages are in flight until their retry time, then visible again.
    assert (
        int(counts["ApproximateNumberOfMessages"])
        + int(counts["ApproximateNumberOfMessagesNotVisible"])
        == 5
    )
    stack.sandbox.down = False
    deadline = time.monotonic() + 20
    while len(stack.sandbox.state.journal) < 4 and time.monotonic() < deadline:
        poll()
        time.sleep(0.2)
    for _ in range(3):  # whatever comes after must not be written twice
        poll()
    notes = [row["value"] for row in stack.sandbox.state.journal]
    by_ticket: dict[str, list[str]] = {}
    for row in stack.sandbox.state.journal:
        by_ticket.setdefault(row["element_id"], []).append(row["value"].splitlines()[0])
    assert by_ticket["9d385017c611228701d22104cc95c371"] == [
        "[selfservice] Provisioning started",
        "[selfservice] Done",
        "[selfservice] Provisioning failed",
    ]
    assert by_ticket["f1c2d3e4a5b60718293a4b5c6d7e8f01"] == [
        "[selfservice] Your request was not accepted"
    ]
    assert len(stack.sandbox.state.jira_comments["ITSM-42"]) == 1
    assert len(notes) == 4
    assert tickets  # three tickets: two ServiceNow, one Jira
    assert len([e for e in stack.published() if e.type == "selfservice.ticket.updated.v1"]) == 5


def test_a_parked_write_back_is_delivered_once_by_a_redrive(stack: Stack) -> None:
    stack.sandbox.fail_next("servicenow", Fault(404))  # e.g. a wrong table ACL, fixed later
    event = _records(stack, [stack.body(STARTED)])
    write_back.lambda_handler(event, FakeContext())
    assert stack.sandbox.state.journal == []
    sqs = boto3.client("sqs", region_name=REGION)
    (parked,) = sqs.receive_message(QueueUrl=stack.dlq_url)["Messages"]
    # The redrive (selfservice dlq redrive / SQS message move) puts it back on the queue.
    sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody=parked["Body"], MessageGroupId="ticket-updates"
    )
    sqs.delete_message(QueueUrl=stack.dlq_url, ReceiptHandle=parked["ReceiptHandle"])
    redriven = _records(stack, [], receives=1)
    assert write_back.lambda_handler(redriven, FakeContext()) == {"batchItemFailures": []}
    assert len(stack.sandbox.state.journal) == 1
    assert [e.type for e in stack.published()] == [
        "selfservice.ticket.write-back-failed.v1",
        "selfservice.ticket.updated.v1",
    ]


# -- observability ---------------------------------------------------------------------


def _deliver(stack: Stack, body: str, receives: int = 1) -> dict[str, Any]:
    """One record through the handler; the message is then removed from the queue."""
    event = _records(stack, [body], receives)
    write_back.lambda_handler(event, FakeContext())
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.delete_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(event["Records"])
        ],
    )
    return event


def test_each_write_back_outcome_is_counted_once(stack: Stack, telemetry: Telemetry) -> None:
    written = _deliver(stack, stack.body(STARTED))
    for record in written["Records"]:  # Lambda hands the same message in again
        record["attributes"]["ApproximateReceiveCount"] = "2"
    write_back.lambda_handler(written, FakeContext())  # replayed: written once, counted once
    stack.sandbox.fail_next("jira", Fault(429, {"Retry-After": "90"}))
    _deliver(stack, stack.body(APPROVAL))  # rate limited: deferred
    stack.sandbox.fail_next("servicenow", Fault(404))
    _deliver(stack, stack.body(SUCCEEDED))  # refused: failed, parked
    stack.sandbox.fail_next("servicenow", Fault(503), Fault(503))
    _deliver(stack, stack.body(sample("selfservice.request.rejected.v1")), receives=8)
    assert telemetry.counts() == {
        Metric.WRITE_BACKS_SUCCEEDED: 1,
        Metric.WRITE_BACKS_DEFERRED: 1,
        Metric.WRITE_BACKS_FAILED: 2,  # the refusal and the last receive of a transient failure
    }
    (deferred,) = telemetry.logs("write-back deferred")
    assert deferred["wait_seconds"] == 90
    assert len(telemetry.logs("write-back not done; retries exhausted, the DLQ takes it")) == 1


def test_each_records_log_lines_carry_its_own_request_id(
    stack: Stack, telemetry: Telemetry
) -> None:
    write_back.lambda_handler(
        _records(stack, [stack.body(STARTED), stack.body(APPROVAL)]), FakeContext()
    )
    lines = telemetry.logs("written back")
    assert [(line["correlation_id"], line["ticket"]) for line in lines] == [
        (STARTED.requestid, STARTED.subject),
        (APPROVAL.requestid, APPROVAL.subject),
    ]
    assert STARTED.requestid != APPROVAL.requestid
    write_back.logger.info("after the batch")
    (after,) = telemetry.logs("after the batch")
    assert "correlation_id" not in after  # a record's id never outlives the record
    assert "ticket" not in after


def test_ticket_updated_events_carry_the_invocations_trace_header(
    stack: Stack, put_events: PutEventsSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = traced_invocation(monkeypatch)
    write_back.lambda_handler(_records(stack, [stack.body(STARTED)]), FakeContext())
    assert [entry.get("TraceHeader") for entry in put_events.entries] == [trace]
    assert [e.type for e in stack.published()] == ["selfservice.ticket.updated.v1"]
