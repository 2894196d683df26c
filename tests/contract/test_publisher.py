"""Publishing: chunks of 10, only failed entries retried, and nothing dropped silently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from selfservice_contracts.events import EVENT_CATALOG, AnyEvent
from selfservice_runtime.parsing import parse_eventbridge_event, parse_sqs_body
from selfservice_runtime.publisher import (
    EventBridgePublisher,
    InMemoryPublisher,
    PublishError,
)


@pytest.fixture
def samples(root: Path) -> list[AnyEvent]:
    return [
        parse_eventbridge_event((root / "events/catalog" / spec.schema_file).read_text())
        for spec in EVENT_CATALOG
    ]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _many(samples: list[AnyEvent], count: int) -> list[AnyEvent]:
    return [samples[i % len(samples)].model_copy(update={"id": f"evt-{i}"}) for i in range(count)]


@pytest.mark.usefixtures("aws")
def test_events_reach_a_rule_target_in_chunks(samples: list[AnyEvent]) -> None:
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name="selfservice-bus")
    queue_url = sqs.create_queue(QueueName="all")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="all",
        EventBusName="selfservice-bus",
        EventPattern=json.dumps({"source": [{"prefix": "selfservice."}]}),
    )
    events.put_targets(
        Rule="all", EventBusName="selfservice-bus", Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    calls: list[int] = []
    original = events.put_events

    def counting_put_events(**kwargs: Any) -> Any:
        calls.append(len(kwargs["Entries"]))
        return original(**kwargs)

    events.put_events = counting_put_events  # type: ignore[method-assign]
    published = _many(samples, 23)
    EventBridgePublisher(events, "selfservice-bus").publish(published)

    assert calls == [10, 10, 3]
    received = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        received += [parse_sqs_body(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    assert sorted(e.id for e in received) == sorted(e.id for e in published)


class FlakyEvents:
    """PutEvents that fails chosen entries (by event id) a number of times each."""

    def __init__(self, failures: dict[str, int]) -> None:
        self.failures = failures
        self.sent: list[list[str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        ids = [json.loads(entry["Detail"])["id"] for entry in Entries]
        self.sent.append(ids)
        results: list[dict[str, str]] = []
        for event_id in ids:
            if self.failures.get(event_id, 0) > 0:
                self.failures[event_id] -= 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": f"eb-{event_id}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_only_failed_entries_are_retried(samples: list[AnyEvent]) -> None:
    client = FlakyEvents({"evt-2": 1})
    sleeps: list[float] = []
    publisher = EventBridgePublisher(client, "bus", sleep=sleeps.append)  # type: ignore[arg-type]
    publisher.publish(_many(samples, 4))
    assert client.sent == [["evt-0", "evt-1", "evt-2", "evt-3"], ["evt-2"]]
    assert sleeps == [0.2]


def test_entries_that_keep_failing_raise_with_their_ids(samples: list[AnyEvent]) -> None:
    client = FlakyEvents({"evt-1": 99, "evt-12": 99})
    publisher = EventBridgePublisher(client, "bus", attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(PublishError) as caught:
        publisher.publish(_many(samples, 13))
    assert caught.value.failed == [
        ("evt-1", "ThrottlingException"),
        ("evt-12", "ThrottlingException"),
    ]
    assert client.sent.count(["evt-1"]) == 2  # first try in the chunk + two retries
    assert "2 event(s) not published" in str(caught.value)


def test_the_fake_keeps_events_in_order(samples: list[AnyEvent]) -> None:
    fake = InMemoryPublisher()
    fake.publish(samples[:3])
    fake.publish(samples[3:5])
    assert fake.events == samples[:5]
