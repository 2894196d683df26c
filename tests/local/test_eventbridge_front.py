"""The functions' EventBridge endpoint: a pass-through that fails PutEvents entries on request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from selfservice.local.eventbridge_front import EventBridgeFront
from selfservice.local.iam.policies import rule_delivery_policy
from selfservice.local.moto_server import EmbeddedAws, free_port
from selfservice_runtime.publisher import EventBridgePublisher, PublishError
from tests.aws import endpoint_client
from tests.contract.test_publisher import _many
from tests.notifier.test_write_back import sample

BUS = "front-bus"


@dataclass
class Wired:
    aws: EmbeddedAws
    front: EventBridgeFront
    queue_url: str

    def client(self, service: str, endpoint: str) -> Any:
        return endpoint_client(service, endpoint, config=Config(retries={"max_attempts": 1}))

    def events(self) -> Any:
        """An EventBridge client that goes through the front."""
        return self.client("events", self.front.url)

    def delivered(self) -> list[str]:
        """Sources of what reached the bus (through the rule to the queue), in order."""
        sqs = self.client("sqs", self.aws.endpoint)
        sources = []
        while batch := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            sources += [json.loads(m["Body"])["source"] for m in batch]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch
                ],
            )
        return sources


@pytest.fixture(scope="module")
def wired() -> Iterator[Wired]:
    with EmbeddedAws() as aws:
        front = EventBridgeFront(aws.endpoint).start()
        try:
            setup = Wired(aws, front, "")
            events = setup.events()  # set up through the front: everything passes through
            sqs = setup.client("sqs", aws.endpoint)
            events.create_event_bus(Name=BUS)
            setup.queue_url = sqs.create_queue(QueueName="observer")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=setup.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            rule = events.put_rule(
                Name="all", EventBusName=BUS, EventPattern='{"source": [{"prefix": ""}]}'
            )["RuleArn"]
            events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
            # As in AWS, the queue's policy lets the rule deliver (IAM is enforced).
            sqs.set_queue_attributes(
                QueueUrl=setup.queue_url, Attributes={"Policy": rule_delivery_policy(arn, rule)}
            )
            yield setup
        finally:
            front.stop()


@pytest.fixture(autouse=True)
def _clean(wired: Wired) -> None:
    wired.delivered()
    wired.front.entries.clear()


def _entry(source: str) -> dict[str, Any]:
    return {"Source": source, "DetailType": "t", "Detail": '{"id": "e"}', "EventBusName": BUS}


def test_scripted_failures_answer_200_with_failed_entries_and_forward_the_rest(
    wired: Wired,
) -> None:
    wired.front.fail_entries(1, source="a", code="ThrottlingException")
    response = wired.events().put_events(Entries=[_entry("a"), _entry("b"), _entry("a")])
    assert response["FailedEntryCount"] == 1
    results = response["Entries"]
    assert results[0]["ErrorCode"] == "ThrottlingException"
    assert "EventId" in results[1]
    assert "EventId" in results[2]  # only the next one of source "a" was failed
    assert wired.delivered() == ["b", "a"]
    assert [(e.source, e.error_code) for e in wired.front.entries] == [
        ("a", "ThrottlingException"),
        ("b", None),
        ("a", None),
    ]
    assert wired.front.pending_failures == 0


def test_the_publisher_retries_the_failed_entries_and_gives_up_after_its_attempts(
    wired: Wired,
) -> None:
    events = _many([sample("selfservice.provisioning.started.v1")], 3)
    publisher = EventBridgePublisher(wired.events(), BUS, sleep=lambda _: None)
    wired.front.fail_entries(2)  # the first two entries of the first call
    publisher.publish(events)
    assert len(wired.delivered()) == 3
    assert wired.front.outcomes("evt-0") == ["InternalFailure", None]
    assert wired.front.outcomes("evt-2") == [None]

    wired.front.fail_entries(3)  # one entry, failing every attempt
    with pytest.raises(PublishError):
        publisher.publish(events[:1])
    assert wired.delivered() == []


def test_without_the_embedded_aws_there_is_no_answer_and_no_failure_is_used(
    wired: Wired,
) -> None:
    down = EventBridgeFront(f"http://127.0.0.1:{free_port()}").start()
    try:
        down.fail_entries(1)
        client = wired.client("events", down.url)
        with pytest.raises(BotoCoreError):  # as if the endpoint were not there
            client.put_events(Entries=[_entry("a"), _entry("b")])
        assert down.pending_failures == 1
        assert down.entries == []
    finally:
        down.stop()
