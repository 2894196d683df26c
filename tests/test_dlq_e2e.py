"""Issue 8's DLQ acceptance on the local runtime: a poison message lands in a DLQ, `dlq
list` shows it with its error, and `dlq redrive` delivers it once the fault is fixed.

The platform runs as `selfservice up` runs it (moto, the real handlers as worker
processes, SQS pollers, the ITSM sandbox); the CLI talks to it like to AWS, through
`--endpoint-url`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from selfservice.cli import main
from selfservice.local.platform import LocalPlatform
from selfservice_contracts.envelope import build_event, to_eventbridge_entry
from tests.notifier.test_writeback import sample

pytestmark = pytest.mark.e2e

T = TypeVar("T")


@pytest.fixture(scope="module")
def platform(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    with LocalPlatform(root, tmp_path_factory.mktemp("dlq"), say=lambda _: None) as running:
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
        return code, capsys.readouterr().out

    return run


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = 40) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _listed(run: Callable[..., tuple[int, str]], queue_suffix: str) -> dict[str, Any]:
    code, out = run("list", "--json")
    assert code == 0
    queues: list[dict[str, Any]] = json.loads(out)["dead_letter_queues"]
    (queue,) = [q for q in queues if q["name"].endswith(queue_suffix)]
    return queue


def _set_servicenow_password(platform: LocalPlatform, password: str) -> None:
    platform.client("secretsmanager").put_secret_value(
        SecretId=platform.stack("Notifier").refs["ServiceNowCredentialsSecret"],
        SecretString=json.dumps({"username": "selfservice", "password": password}),
    )


def test_a_refused_write_back_is_listed_with_its_error_and_delivered_by_a_redrive(
    platform: LocalPlatform, dlq: Callable[..., tuple[int, str]]
) -> None:
    # The fault: the ServiceNow password was rotated in the ITSM but not in the secret.
    _set_servicenow_password(platform, "rotated-elsewhere")
    started = sample("selfservice.provisioning.started.v1")
    event = build_event(started.data, event_id=str(uuid.uuid4()))
    bus = platform.stack("Notifier").parameters["EventBusName"]
    platform.client("events").put_events(Entries=[to_eventbridge_entry(event, event_bus_name=bus)])

    # The notifier is refused (401, and 401 again after re-reading the secret) and parks
    # the message in its DLQ at once, with the error.
    def parked() -> dict[str, Any] | None:
        messages = _listed(dlq, "WriteBackDLQ.fifo")["messages"]
        return messages[0] if messages else None

    message = _eventually(parked, "the write-back to be parked")
    assert message["event_type"] == "selfservice.provisioning.started.v1"
    assert message["event_id"] == event.id
    assert message["ticket"] == "servicenow:RITM0010042"
    assert message["reason"]["text"].startswith("PermanentWriteBackError: ")
    assert "credentials rejected after a refresh" in message["reason"]["text"]
    assert message["reason"]["origin"].startswith("parked by its consumer at ")
    assert platform.itsm.state.journal == []
    code, text = dlq("list")
    assert "why: PermanentWriteBackError: servicenow:RITM0010042" in text

    # The fix, then the redrive: the ticket gets its update, once; the DLQ is empty.
    _set_servicenow_password(platform, "sandbox-password")
    code, out = dlq("redrive", "--queue", "WriteBackDLQ")
    assert code == 0, out
    assert "moved 1, failed 0" in out

    def written() -> list[dict[str, str]] | None:
        rows = [row for row in platform.itsm.state.journal if event.id in row["value"]]
        return rows or None

    rows = _eventually(written, "the ticket update")
    assert sorted(row["element"] for row in rows) == ["comments", "work_notes"]  # journal: both
    assert all(row["value"].startswith("[selfservice] Provisioning started") for row in rows)
    assert _listed(dlq, "WriteBackDLQ.fifo")["depth"] == 0


def test_a_message_sqs_gives_up_on_is_listed_with_the_error_its_consumer_logged(
    platform: LocalPlatform, dlq: Callable[..., tuple[int, str]]
) -> None:
    sqs = platform.client("sqs")
    queue = platform.stack("Provisioner").refs["RequestQueue"]
    # Lambda would take maxReceiveCount (5) visibility timeouts of 6 minutes; 1 s here.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    time.sleep(2.5)  # a receive already waiting (1 s long polls) took the old timeout
    poison = sqs.send_message(QueueUrl=queue, MessageBody='{"not": "an event"}')["MessageId"]

    def explained() -> dict[str, Any] | None:
        for message in _listed(dlq, "RequestDLQ")["messages"]:
            if message["message_id"] == poison and message["reason"]:
                return dict(message)
        return None

    message = _eventually(explained, "SQS to move the poison message and its reason")
    assert message["reason"]["text"].startswith("ContractError: not an EventBridge event")
    assert "/RequestConsumerLogs" in message["reason"]["origin"]  # the function's log group
    assert "receive 5" in message["reason"]["origin"]  # its last receive before the move
    code, out = dlq("redrive", "--queue", "RequestDLQ", "--dry-run")
    assert code == 0
    assert f"would move {poison} → selfservice-Provisioner-RequestQueue" in out
    assert _listed(dlq, "RequestDLQ")["depth"] == 1  # a dry run moves nothing
