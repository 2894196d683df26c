"""``selfservice dlq``: discovery, listing with the reason, and a redrive that loses nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from selfservice.cli import main
from selfservice.local.lambda_events import eventbridge_delivery
from selfservice.operator.dlq import DeadLetterQueue, DeadLetters, DlqError
from selfservice_contracts import failures
from tests.aws import use_test_credentials
from tests.notifier.test_write_back import sample

REGION = "us-east-1"
STARTED = sample("selfservice.provisioning.started.v1")


@dataclass
class Stack:
    """Queues shaped like the platform's: a standard and a FIFO pair, an EventBridge DLQ."""

    sqs: Any
    logs: Any
    request_queue: str
    request_dlq: str
    writeback_queue: str
    writeback_dlq: str
    delivery_dlq: str

    def tools(self, sqs: Any = None) -> DeadLetters:
        return DeadLetters(sqs or self.sqs, boto3.client("events", region_name=REGION), self.logs)

    def dlq(self, part: str, sqs: Any = None) -> DeadLetterQueue:
        tools = self.tools(sqs)
        return tools.select(tools.discover(), part)

    def bodies(self, url: str) -> list[dict[str, Any]]:
        """Consume everything in a queue (attributes included)."""
        out: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", []):
            out += batch
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return out

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def _arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    use_test_credentials(monkeypatch)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs: Any = boto3.client("sqs", region_name=REGION)  # attribute names as plain strings
        request_dlq = sqs.create_queue(QueueName="selfservice-Provisioner-RequestDLQ")["QueueUrl"]
        request_queue = sqs.create_queue(
            QueueName="selfservice-Provisioner-RequestQueue",
            Attributes={
                "VisibilityTimeout": "0",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": _arn(sqs, request_dlq), "maxReceiveCount": 2}
                ),
            },
        )["QueueUrl"]
        fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        writeback_dlq = sqs.create_queue(
            QueueName="selfservice-Notifier-WriteBackDLQ.fifo", Attributes=fifo
        )["QueueUrl"]
        writeback_queue = sqs.create_queue(
            QueueName="selfservice-Notifier-WriteBackQueue.fifo",
            Attributes={
                **fifo,
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": _arn(sqs, writeback_dlq), "maxReceiveCount": 8}
                ),
            },
        )["QueueUrl"]
        delivery_dlq = sqs.create_queue(QueueName="selfservice-Notifier-DeliveryDLQ")["QueueUrl"]
        sqs.create_queue(QueueName="someone-elses-DLQ")
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name="selfservice-bus")
        events.put_rule(
            Name="selfservice-Notifier-LifecycleRule",
            EventBusName="selfservice-bus",
            EventPattern=json.dumps({"source": ["selfservice.provisioner"]}),
        )
        events.put_targets(
            Rule="selfservice-Notifier-LifecycleRule",
            EventBusName="selfservice-bus",
            Targets=[
                {
                    "Id": "notifier-lifecycle",
                    "Arn": _arn(sqs, writeback_queue),
                    "SqsParameters": {"MessageGroupId": "ticket-updates"},
                    "DeadLetterConfig": {"Arn": _arn(sqs, delivery_dlq)},
                }
            ],
        )
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName="/aws/selfservice-Provisioner/RequestConsumerLogs")
        logs.create_log_group(logGroupName="/aws/other-app/Logs")
        yield Stack(
            sqs,
            logs,
            request_queue,
            request_dlq,
            writeback_queue,
            writeback_dlq,
            delivery_dlq,
        )


def _fail_until_moved(stack: Stack, body: str) -> str:
    """A message the consumer fails twice: SQS moves it to the DLQ (maxReceiveCount 2)."""
    message_id: str = stack.sqs.send_message(QueueUrl=stack.request_queue, MessageBody=body)[
        "MessageId"
    ]
    for _ in range(2):
        assert stack.sqs.receive_message(QueueUrl=stack.request_queue)["Messages"]
    assert "Messages" not in stack.sqs.receive_message(QueueUrl=stack.request_queue)
    return message_id


def _log_failure(stack: Stack, message_id: str, error: str, *, at: int, stream: str = "s") -> None:
    group = "/aws/selfservice-Provisioner/RequestConsumerLogs"
    streams = stack.logs.describe_log_streams(logGroupName=group)["logStreams"]
    if stream not in {s["logStreamName"] for s in streams}:
        stack.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    line = {
        "level": "WARNING",
        "message": failures.RECORD_FAILED,
        "message_id": message_id,
        "queue": "selfservice-Provisioner-RequestQueue",
        "receive_count": at,
        "error_type": "ContractError",
        "error": error,
    }
    stack.logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": _now_ms() - 10_000 + at, "message": json.dumps(line)},
            {"timestamp": _now_ms(), "message": "START RequestId: not json"},
        ],
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- discovery ---------------------------------------------------------------------------


def test_discovery_maps_each_dlq_to_its_source_queue_or_its_eventbridge_rule(stack: Stack) -> None:
    dlqs = {d.queue.name: d for d in stack.tools().discover()}
    assert set(dlqs) == {
        "selfservice-Provisioner-RequestDLQ",
        "selfservice-Notifier-WriteBackDLQ.fifo",
        "selfservice-Notifier-DeliveryDLQ",
    }  # queues that are nobody's DLQ, and other stacks' queues, are not listed
    request = dlqs["selfservice-Provisioner-RequestDLQ"]
    assert [s.name for s in request.sources] == ["selfservice-Provisioner-RequestQueue"]
    assert request.redrivable
    assert dlqs["selfservice-Notifier-WriteBackDLQ.fifo"].queue.fifo
    delivery = dlqs["selfservice-Notifier-DeliveryDLQ"]
    assert delivery.rules == ("selfservice-Notifier-LifecycleRule",)
    assert not delivery.redrivable
    assert "cannot be redriven" in delivery.describe()


def test_a_dlq_is_chosen_by_name_url_or_a_unique_part_of_its_name(stack: Stack) -> None:
    tools = stack.tools()
    dlqs = tools.discover()
    assert tools.select(dlqs, "requestdlq").queue.url == stack.request_dlq
    assert tools.select(dlqs, stack.writeback_dlq).queue.name.endswith("WriteBackDLQ.fifo")
    with pytest.raises(DlqError, match="matches several"):
        tools.select(dlqs, "Notifier")
    with pytest.raises(DlqError, match="names no DLQ"):
        tools.select(dlqs, "nope")


# -- list --------------------------------------------------------------------------------


def test_peeking_leaves_every_message_in_the_dlq_and_visible(stack: Stack) -> None:
    for index in range(3):
        stack.sqs.send_message(QueueUrl=stack.request_dlq, MessageBody=f"m{index}")
    tools = stack.tools()
    dlq = stack.dlq("RequestDLQ")
    first = tools.peek(dlq, 10)
    assert sorted(m["Body"] for m in first) == ["m0", "m1", "m2"]
    assert len(tools.peek(dlq, 2)) == 2  # --max
    assert sorted(m["Body"] for m in stack.bodies(stack.request_dlq)) == ["m0", "m1", "m2"]


def test_a_message_sqs_moved_is_explained_by_the_consumers_last_failure_line(stack: Stack) -> None:
    body = json.dumps({"detail-type": "x", "detail": {"type": "selfservice.nope.v1", "id": "e-1"}})
    moved = _fail_until_moved(stack, body)
    other = _fail_until_moved(stack, "{broken")
    _log_failure(stack, moved, "first failure", at=1)
    _log_failure(stack, moved, "the last failure", at=2, stream="other-worker")
    tools = stack.tools()
    dlq = stack.dlq("RequestDLQ")
    parked = {p.message_id: p for p in tools.explain(dlq, tools.peek(dlq, 10))}
    reason = parked[moved].reason
    assert reason is not None
    assert reason.text == "ContractError: the last failure"
    assert "RequestConsumerLogs" in reason.origin
    assert parked[moved].event_type == "selfservice.nope.v1"  # read loosely: not a valid event
    assert parked[moved].event_id == "e-1"
    assert parked[moved].contract_error
    assert parked[other].reason is None  # nothing recorded: said so, not invented


def test_parked_and_undeliverable_messages_are_explained_by_their_attributes(stack: Stack) -> None:
    body = json.dumps(eventbridge_delivery(STARTED, event_bus_name="selfservice-bus"))
    stack.sqs.send_message(
        QueueUrl=stack.writeback_dlq,
        MessageBody=body,
        MessageGroupId="ticket-updates",
        MessageAttributes=failures.failure_attributes(
            RuntimeError("servicenow:RITM0010042: HTTP 401 after refreshing the credentials"),
            source_queue="selfservice-Notifier-WriteBackQueue.fifo",
        ),
    )
    stack.sqs.send_message(
        QueueUrl=stack.delivery_dlq,
        MessageBody=body,
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "NO_PERMISSIONS"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "queue policy denies"},
            "TARGET_ARN": {
                "DataType": "String",
                "StringValue": "arn:aws:sqs:us-east-1:123456789012:selfservice-q.fifo",
            },
        },
    )
    tools = stack.tools()
    writeback = stack.dlq("WriteBackDLQ")
    (parked,) = tools.explain(writeback, tools.peek(writeback, 10))
    assert parked.reason is not None
    assert parked.reason.text.startswith("RuntimeError: servicenow:RITM0010042: HTTP 401")
    assert parked.reason.origin.startswith("parked by its consumer at ")
    assert parked.event_type == "selfservice.provisioning.started.v1"
    assert parked.ticket == "servicenow:RITM0010042"
    assert parked.request_id == STARTED.data.request_id  # type: ignore[union-attr]
    assert parked.group_id == "ticket-updates"
    assert parked.contract_error is None
    delivery = stack.dlq("DeliveryDLQ")
    (undelivered,) = tools.explain(delivery, tools.peek(delivery, 10))
    assert undelivered.reason is not None
    assert undelivered.reason.text == "NO_PERMISSIONS: queue policy denies"
    assert undelivered.reason.origin.endswith("selfservice-q.fifo")


# -- redrive -----------------------------------------------------------------------------


def test_a_redrive_puts_messages_back_with_their_own_attributes_only(stack: Stack) -> None:
    moved = _fail_until_moved(stack, "poison, fixed since")
    stack.sqs.send_message(
        QueueUrl=stack.request_dlq,
        MessageBody="parked by hand",
        MessageAttributes={
            "trace": {"DataType": "String", "StringValue": "keep me"},
            **failures.failure_attributes(ValueError("x"), source_queue="q"),
        },
    )
    progress: list[str] = []
    result = stack.tools().redrive(stack.dlq("RequestDLQ"), progress=progress.append)
    assert result.ok
    assert moved in result.moved
    assert len(result.moved) == 2
    assert progress
    assert stack.depth(stack.request_dlq) == 0
    back = {m["Body"]: m for m in stack.bodies(stack.request_queue)}
    assert set(back) == {"poison, fixed since", "parked by hand"}
    assert back["parked by hand"]["MessageAttributes"] == {
        "trace": {"DataType": "String", "StringValue": "keep me"}
    }


def test_a_fifo_redrive_keeps_group_and_order_and_is_not_deduplicated_away(stack: Stack) -> None:
    for index in range(12):
        stack.sqs.send_message(
            QueueUrl=stack.writeback_dlq,
            MessageBody=f"update {index:02}",
            MessageGroupId="ticket-updates",
        )
    # The same bodies are in the source queue already (say, sent again since): content-based
    # deduplication would drop a resend whose id were the body's hash. (SQS remembers ids
    # five minutes even after a delete; moto only while the message is in the queue.)
    for index in range(12):
        stack.sqs.send_message(
            QueueUrl=stack.writeback_queue,
            MessageBody=f"update {index:02}",
            MessageGroupId="ticket-updates",
        )
    result = stack.tools().redrive(stack.dlq("WriteBackDLQ"))
    assert len(result.moved) == 12
    back = stack.bodies(stack.writeback_queue)
    assert [m["Body"] for m in back] == [f"update {i:02}" for i in range(12)] * 2
    assert {m["Attributes"]["MessageGroupId"] for m in back} == {"ticket-updates"}


def test_max_and_dry_run_bound_what_moves(stack: Stack) -> None:
    for index in range(5):
        stack.sqs.send_message(QueueUrl=stack.request_dlq, MessageBody=f"m{index}")
    tools = stack.tools()
    dry = tools.redrive(stack.dlq("RequestDLQ"), dry_run=True)
    assert len(dry.would_move) == 5
    assert {target for _, target in dry.would_move} == {"selfservice-Provisioner-RequestQueue"}
    assert stack.depth(stack.request_dlq) == 5
    assert stack.depth(stack.request_queue) == 0
    assert len(tools.redrive(stack.dlq("RequestDLQ"), limit=2).moved) == 2
    assert stack.depth(stack.request_dlq) == 3


class _Failing:
    """An SQS client whose named operation fails (an outage, a missing permission)."""

    def __init__(self, real: Any, operation: str) -> None:
        self._real = real
        self._operation = operation

    def __getattr__(self, name: str) -> Any:
        if name == self._operation:

            def fail(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, name)

            return fail
        return getattr(self._real, name)


def test_a_failed_send_leaves_the_message_in_the_dlq_visible(stack: Stack) -> None:
    stack.sqs.send_message(QueueUrl=stack.request_dlq, MessageBody="precious")
    failing = _Failing(stack.sqs, "send_message_batch")
    result = stack.tools(failing).redrive(stack.dlq("RequestDLQ", failing))
    assert not result.ok
    assert result.moved == []
    assert "AccessDenied" in result.failed[0][1]
    assert stack.depth(stack.request_queue) == 0
    assert [m["Body"] for m in stack.bodies(stack.request_dlq)] == ["precious"]  # visible now


def test_a_failed_delete_keeps_the_message_rather_than_risk_losing_it(stack: Stack) -> None:
    stack.sqs.send_message(QueueUrl=stack.request_dlq, MessageBody="precious")
    failing = _Failing(stack.sqs, "delete_message_batch")
    result = stack.tools(failing).redrive(stack.dlq("RequestDLQ", failing))
    assert not result.ok
    assert len(result.not_deleted) == 1
    assert [m["Body"] for m in stack.bodies(stack.request_queue)] == ["precious"]
    assert stack.depth(stack.request_dlq) == 1  # a duplicate, never a loss


def test_a_dlq_without_a_source_queue_is_refused(stack: Stack) -> None:
    stack.sqs.send_message(QueueUrl=stack.delivery_dlq, MessageBody="undeliverable")
    with pytest.raises(DlqError, match="no source queue"):
        stack.tools().redrive(stack.dlq("DeliveryDLQ"))
    assert stack.depth(stack.delivery_dlq) == 1


# -- command line ------------------------------------------------------------------------


def test_the_cli_lists_as_json_and_redrives(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", REGION)  # as `selfservice up`'s operator.env sets it
    moved = _fail_until_moved(stack, "{broken")
    _log_failure(stack, moved, "not an EventBridge event", at=2)
    stack.sqs.send_message(QueueUrl=stack.delivery_dlq, MessageBody="undeliverable")
    assert main(["dlq", "list", "--json"]) == 0
    listing = {d["name"]: d for d in json.loads(capsys.readouterr().out)["dead_letter_queues"]}
    request = listing["selfservice-Provisioner-RequestDLQ"]
    assert request["depth"] == 1
    assert request["redrives_to"] == ["selfservice-Provisioner-RequestQueue"]
    (message,) = request["messages"]
    assert message["message_id"] == moved
    assert message["reason"]["text"] == "ContractError: not an EventBridge event"
    assert listing["selfservice-Notifier-DeliveryDLQ"]["redrivable"] is False

    assert main(["dlq", "list"]) == 0
    text = capsys.readouterr().out
    assert f"  {moved}  sent " in text
    assert "why: ContractError: not an EventBridge event" in text
    assert "selfservice-Notifier-DeliveryDLQ  (1 message; EventBridge target DLQ of" in text

    assert main(["dlq", "redrive", "--queue", "DeliveryDLQ"]) == 2
    assert "no source queue" in capsys.readouterr().err
    assert main(["dlq", "redrive"]) == 0
    out = capsys.readouterr().out
    assert "skipped selfservice-Notifier-DeliveryDLQ" in out
    assert (
        "selfservice-Provisioner-RequestDLQ → selfservice-Provisioner-RequestQueue: moved 1, "
        "failed 0" in out
    )
    assert stack.depth(stack.request_dlq) == 0


# -- source queues ---------------------------------------------------------------------


def _failing_write_back(stack: Stack, message_id: str, *, minutes_ago: list[int]) -> None:
    """The notifier's failure lines for one write-back, ``minutes_ago`` each."""
    group = "/aws/selfservice-Notifier/WriteBackLogs"
    stack.logs.create_log_group(logGroupName=group)
    stack.logs.create_log_stream(logGroupName=group, logStreamName="w")
    line = {
        "message": failures.RECORD_FAILED,
        "message_id": message_id,
        "queue": "selfservice-Notifier-WriteBackQueue.fifo",
        "error_type": "RetryLaterError",
        "error": "servicenow:RITM0010042: 503",
    }
    stack.logs.put_log_events(
        logGroupName=group,
        logStreamName="w",
        logEvents=[
            {
                "timestamp": _now_ms() - minutes * 60_000,
                "message": json.dumps({**line, "receive_count": n}),
            }
            for n, minutes in enumerate(minutes_ago, start=1)
        ],
    )


def test_a_held_fifo_source_queue_is_shown_though_its_dlq_is_empty(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """One write-back retried for 40 minutes holds the queue's one group: every ticket's
    updates wait, and no DLQ holds anything yet."""
    for n in range(3):
        stack.sqs.send_message(
            QueueUrl=stack.writeback_queue,
            MessageBody=stack_body(n),
            MessageGroupId="ticket-updates",
        )
    (held,) = stack.sqs.receive_message(
        QueueUrl=stack.writeback_queue, MaxNumberOfMessages=1, VisibilityTimeout=600
    )["Messages"]
    _failing_write_back(stack, held["MessageId"], minutes_ago=[40, 20, 2])
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [
                    {"Name": "QueueName", "Value": "selfservice-Notifier-WriteBackQueue.fifo"}
                ],
                "Value": 2400,
                "Unit": "Seconds",
            }
        ],
    )
    assert main(["dlq", "list"]) == 0
    text = capsys.readouterr().out
    assert "selfservice-Notifier-WriteBackDLQ.fifo  (empty;" in text
    assert (
        "  source selfservice-Notifier-WriteBackQueue.fifo: 2 waiting, 1 in flight; oldest 40 min"
        " — HELD: its one FIFO group waits behind the in-flight message(s)" in text
    )
    assert f"    failing: {held['MessageId']} since " in text
    assert "RetryLaterError: servicenow:RITM0010042: 503" in text
    assert main(["dlq", "list", "--json", "--held-minutes", "60"]) == 0
    listing = {d["name"]: d for d in json.loads(capsys.readouterr().out)["dead_letter_queues"]}
    (source,) = listing["selfservice-Notifier-WriteBackDLQ.fifo"]["sources"]
    assert source["failing_message_id"] == held["MessageId"]
    assert (source["waiting"], source["in_flight"], source["oldest_age_seconds"]) == (2, 1, 2400)
    assert source["held"] is False  # 40 minutes is not an hour
    assert listing["selfservice-Provisioner-RequestDLQ"]["sources"] == []  # nothing waits there


def test_a_source_queue_with_only_an_old_finished_failure_is_not_held(
    stack: Stack,
) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.writeback_queue, MessageBody=stack_body(0), MessageGroupId="ticket-updates"
    )
    _failing_write_back(stack, "an-earlier-message", minutes_ago=[300, 290])
    (backlog,) = stack.tools().backlogs(stack.dlq("WriteBackDLQ"))
    assert (backlog.waiting, backlog.in_flight, backlog.held) == (1, 0, False)
    assert backlog.last_failure is None


def stack_body(n: int) -> str:
    return json.dumps({"detail-type": STARTED.type, "n": n})
