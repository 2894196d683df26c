"""The embedded AWS as tests reach it, one helper per need.

moto in process (:func:`mocked_aws`), a server's endpoint (:func:`endpoint_client`),
and the few resources many tests build the same way: a queue observing the bus, the
deduplication table, the write-back queues.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from selfservice.local.iam.policies import rule_delivery_policy
from selfservice.templates import load_template

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""The embedded AWS's root user (moto checks nothing in process)."""


def use_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Placeholder credentials in the environment: botocore signs, nothing reaches AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@contextmanager
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in process, with :func:`use_test_credentials`."""
    use_test_credentials(monkeypatch)
    with mock_aws():
        yield


def endpoint_client(
    service: str,
    endpoint: str,
    *,
    credentials: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> Any:
    """A client of ``service`` at ``endpoint`` (the embedded AWS, a local front), signed
    with ``credentials`` (boto3's keyword names) or the root user's."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        config=config,
        **(TEST_CREDENTIALS if credentials is None else credentials),
    )


def observe_bus(
    bus: str,
    pattern: Mapping[str, Any],
    *,
    queue: str = "observer",
    rule: str = "all",
    create_bus: bool = True,
    delivery_policy: bool = False,
    enabled: bool = True,
) -> str:
    """A queue behind a rule on ``bus`` for the events matching ``pattern``; its URL.

    ``delivery_policy``: the queue's policy lets the rule deliver, as AWS requires (and
    the embedded AWS with IAM enforced). ``enabled=False``: the rule is disabled.
    """
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    if create_bus:
        events.create_event_bus(Name=bus)
    queue_url: str = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(
        Name=rule,
        EventBusName=bus,
        EventPattern=json.dumps(pattern),
        State="ENABLED" if enabled else "DISABLED",
    )["RuleArn"]
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    if delivery_policy:
        sqs.set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": rule_delivery_policy(arn, rule_arn)}
        )
    return queue_url


def drain(queue_url: str, sqs: Any = None) -> list[dict[str, Any]]:
    """Every message on the queue (its attributes too), received and deleted."""
    sqs = sqs or boto3.client("sqs", region_name=REGION)
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    return messages


def create_dedupe_table(dynamodb: Any, name: str) -> None:
    """A deduplication (idempotency) table as the templates define it (key ``id``)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def create_write_back_queues(sqs: Any) -> tuple[str, str]:
    """The notifier's FIFO write-back queue and its DLQ (URLs); the queue's messages come
    back at once (visibility timeout 0) so a test sees each retry."""
    dlq: str = sqs.create_queue(
        QueueName="writeback-dlq.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    queue: str = sqs.create_queue(
        QueueName="writeback.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "VisibilityTimeout": "0",
        },
    )["QueueUrl"]
    return queue, dlq


def create_ledger_table(dynamodb: Any, name: str) -> None:
    """The provisioner's ledger table with the keys and indexes sam/provisioner.yaml gives it."""
    properties = load_template(ROOT / "sam/provisioner.yaml").resources()["LedgerTable"][
        "Properties"
    ]
    dynamodb.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )


MOTO_IMAGE = "ami-1e749f67"
"""One of moto's built-in Linux (Ubuntu) images."""


def run_instance(ec2: Any, tags: Mapping[str, str]) -> str:
    """One running EC2 instance with ``tags``; its id."""
    reservation = ec2.run_instances(
        ImageId=MOTO_IMAGE,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
        if tags
        else [],
    )
    return str(reservation["Instances"][0]["InstanceId"])
