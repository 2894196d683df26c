"""Each moto gap the local runtime fixes is demonstrated here, with and without the fix."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.events.utils import EventTemplateParser

from selfservice.local import moto_gaps


@pytest.fixture
def unpatched() -> Iterator[None]:
    original = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    yield
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = original
    moto_gaps._applied = False
    moto_gaps.apply()


def _delivered_event() -> dict[str, object]:
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["selfservice.intake"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "q", "Arn": arn}])
        events.put_events(
            Entries=[{"Source": "selfservice.intake", "DetailType": "t", "Detail": "{}"}]
        )
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        body: dict[str, object] = json.loads(message["Body"])
        return body


@pytest.mark.usefixtures("unpatched")
def test_targets_receive_the_account_field_only_with_the_fix() -> None:
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE.replace('"account": "<account>", ', "")
    )
    moto_gaps._applied = False
    assert "account" not in _delivered_event()  # the gap, as moto ships it
    moto_gaps.apply()
    assert _delivered_event()["account"] == "123456789012"
