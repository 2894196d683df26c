"""The sample invocation events say what AWS would deliver to the function, per its template.

``sam local invoke -e events/<LogicalId>.json`` is a deployer's first try: a sample that
AWS could never send (a FIFO queue's record without its FIFO attributes), or a webhook
whose signature is a placeholder (a 401), teaches the wrong thing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from types import ModuleType
from typing import Any

import pytest

from intake.domain.auth import verify_standard_webhook
from intake.domain.errors import AuthenticationError
from selfservice.templates import load_template
from tests.conftest import ROOT
from tests.module_loader import module_from_file


def _sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event


def _signing_tool() -> ModuleType:
    return module_from_file("sign_webhook_event", ROOT / "tools/sign_webhook_event.py")


def test_the_write_back_sample_is_a_record_of_the_templates_fifo_queue() -> None:
    """Found by testing as a user: no FIFO attributes and a queue ARN without .fifo."""
    template = load_template(ROOT / "sam/notifier.yaml")
    resources = template.resources()
    (source,) = resources["WriteBackFunction"]["Properties"]["Events"].values()
    queue_id = source["Properties"]["Queue"]["Fn::GetAtt"][0]
    queue = resources[queue_id]["Properties"]
    assert queue["FifoQueue"] is True
    groups = {
        target["SqsParameters"]["MessageGroupId"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"].get("Targets", [])
        if target.get("Arn") == {"Fn::GetAtt": [queue_id, "Arn"]}
    }
    (record,) = _sample("WriteBackFunction")["Records"]
    assert record["eventSourceARN"].endswith(".fifo")
    assert queue_id in record["eventSourceARN"]
    attributes = record["attributes"]
    assert {attributes["MessageGroupId"]} == groups
    assert attributes["SequenceNumber"].isdigit()
    if queue.get("ContentBasedDeduplication"):
        body = record["body"].encode()
        assert attributes["MessageDeduplicationId"] == hashlib.sha256(body).hexdigest()
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324


def test_the_webhook_sample_is_signed_with_the_documented_test_secret() -> None:
    """Found by testing as a user: a placeholder signature (every local invoke was a 401)."""
    tool = _signing_tool()
    event = _sample("WebhookFunction")
    headers = event["headers"]
    body = event["body"].encode()
    if event.get("isBase64Encoded"):
        body = base64.b64decode(event["body"])
    at = int(headers["webhook-timestamp"])
    assert (
        verify_standard_webhook(headers, body, [tool.SAMPLE_SECRET], now=at)
        == (headers["webhook-id"])
    )
    with pytest.raises(AuthenticationError):
        verify_standard_webhook(headers, body, ["another-secret"], now=at)
    # The sample's timestamp goes stale after 5 minutes: the tool signs it again, now.
    fresh = tool.signed(event, tool.SAMPLE_SECRET, at + 86_400)
    assert verify_standard_webhook(fresh["headers"], body, [tool.SAMPLE_SECRET], now=at + 86_400)
    assert tool.signed(event, tool.SAMPLE_SECRET, at) == event
    # And the documentation says so where a deployer looks.
    readme = (ROOT / "README.md").read_text()
    assert tool.SAMPLE_SECRET in readme
    assert "tools/sign_webhook_event.py" in readme
