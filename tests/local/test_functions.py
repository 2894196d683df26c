"""Functions run from their template specs: worker processes, the HTTP front, SQS pollers."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intake.domain.auth import sign_standard_webhook
from selfservice.local.deploy import Deployment, deploy_platform
from selfservice.local.event_sources import ScheduledRunner, SqsPoller, schedule_interval
from selfservice.local.functions import FunctionWorker, InvocationError, LogShipper
from selfservice.local.http_front import HttpFront
from selfservice.local.moto_server import EmbeddedAws
from selfservice.templates import load_platform
from selfservice_contracts.failures import RECORD_FAILED
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import endpoint_client
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EmbeddedAws, Deployment, Path]]:
    logs = tmp_path_factory.mktemp("functions")
    with EmbeddedAws() as aws:
        deployment = deploy_platform(
            load_platform(ROOT / "template.yaml"), endpoint_url=aws.endpoint
        )
        yield aws, deployment, logs


def _base_env(aws: EmbeddedAws) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": os.environ["PATH"],
    }


def test_a_signed_webhook_over_http_reaches_the_provisioner_queue(
    runtime: tuple[EmbeddedAws, Deployment, Path],
) -> None:
    aws, deployment, logs = runtime
    spec, env = deployment.function("WebhookFunction")
    endpoint_client("ssm", aws.endpoint).put_parameter(
        Name=env["INTAKE_CONFIG_PARAMETER"],
        Type="String",
        Overwrite=True,
        Value=(ROOT / "config/intake.example.json").read_text(),
    )
    secret = json.loads(
        endpoint_client("secretsmanager", aws.endpoint).get_secret_value(
            SecretId=env["SERVICENOW_HMAC_SECRET_ID"]
        )["SecretString"]
    )["current"]
    worker = FunctionWorker(spec, {**env, **_base_env(aws)}, logs / "webhook.log")
    routes = [
        (e["Properties"]["Method"], e["Properties"]["Path"], worker)
        for e in spec.events.values()
        if e["Type"] == "HttpApi"
    ]
    front = HttpFront(routes).start()
    try:
        body = (ROOT / "tests/fixtures/servicenow-ritm-ec2-inserted.json").read_bytes()
        timestamp = int(time.time())
        request = urllib.request.Request(
            f"{front.url}/webhooks/servicenow",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "webhook-id": "msg_local",
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign_standard_webhook(secret, "msg_local", timestamp, body),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            reply = json.loads(response.read())
        assert reply["status"] == "received"
        assert worker.invocations == 1  # what the burst bench reports per function
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{front.url}/webhooks/servicenow",
                    data=body,
                    method="POST",
                    headers={"Content-Type": "application/json"},
                ),
                timeout=30,
            )
        assert unsigned.value.code == 401
    finally:
        front.stop()
        worker.stop()
    provisioner = next(s for s in deployment.stacks() if s.name == "selfservice-Provisioner")
    messages = endpoint_client("sqs", aws.endpoint).receive_message(
        QueueUrl=provisioner.refs["RequestQueue"], MaxNumberOfMessages=10, WaitTimeSeconds=2
    )["Messages"]
    (event,) = [parse_sqs_body(m["Body"]) for m in messages]
    assert event.type == "selfservice.request.received.v1"
    assert event.data.request_id == reply["request_id"]


def test_a_poller_deletes_what_succeeded_and_leaves_what_failed(
    runtime: tuple[EmbeddedAws, Deployment, Path],
) -> None:
    aws, deployment, logs = runtime
    spec, env = deployment.function("BuildEventsFunction")
    sqs = endpoint_client("sqs", aws.endpoint)
    provisioner = next(s for s in deployment.stacks() if s.name == "selfservice-Provisioner")
    url = provisioner.refs["BuildEventsQueue"]
    ours = json.loads((ROOT / "tests/fixtures/codebuild-state-change-succeeded.json").read_text())
    foreign = json.loads(json.dumps(ours))
    foreign["detail"]["additional-information"]["environment"]["environment-variables"] = []
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(foreign))  # not our build: acknowledged
    sqs.send_message(QueueUrl=url, MessageBody="{not json")  # broken: fails, stays for the DLQ
    worker = FunctionWorker(spec, {**env, **_base_env(aws)}, logs / "build-events.log")
    try:
        poller = SqsPoller(sqs, url, provisioner.attrs["BuildEventsQueue"]["QueueName"], worker)
        assert poller.poll_once() == 2
    finally:
        worker.stop()
    remaining = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert remaining["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


class _Recorder:
    """A function that records the batch sizes it was given and succeeds."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches.append(len(event["Records"]))
        return {"batchItemFailures": []}


@pytest.mark.parametrize("window", [0.0, 1.5])
def test_the_batching_window_gathers_a_batch_like_lambda(
    runtime: tuple[EmbeddedAws, Deployment, Path], window: float
) -> None:
    aws, _, _ = runtime
    sqs = endpoint_client("sqs", aws.endpoint)
    url = sqs.create_queue(QueueName=f"window-{int(window * 10)}")["QueueUrl"]
    recorder = _Recorder()
    poller = SqsPoller(sqs, url, "window", recorder, batching_window_seconds=window)  # type: ignore[arg-type]
    sqs.send_message(QueueUrl=url, MessageBody="first")

    def later() -> None:
        time.sleep(0.5)
        sqs.send_message(QueueUrl=url, MessageBody="second")
        sqs.send_message(QueueUrl=url, MessageBody="third")

    sender = threading.Thread(target=later)
    sender.start()
    while sum(recorder.batches) < 3:
        poller.poll_once()
    sender.join()
    # No window: the first message goes alone. A window: the three arrive as one batch.
    assert recorder.batches[0] == (3 if window else 1)


def test_what_a_function_logs_reaches_its_log_group_and_its_local_file(
    runtime: tuple[EmbeddedAws, Deployment, Path],
) -> None:
    """As in Lambda: one stream per execution environment in the template's log group."""
    aws, deployment, logs = runtime
    spec, env = deployment.function("RequestConsumerFunction")
    provisioner = next(s for s in deployment.stacks() if s.name == "selfservice-Provisioner")
    group = provisioner.refs["RequestConsumerLogs"]  # LoggingConfig.LogGroup
    sqs, cloudwatch = endpoint_client("sqs", aws.endpoint), endpoint_client("logs", aws.endpoint)
    url = provisioner.refs["RequestQueue"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="not an event")["MessageId"]
    shipper = LogShipper(endpoint_client("logs", aws.endpoint), group, interval=0.1)
    worker = FunctionWorker(spec, {**env, **_base_env(aws)}, logs / "consumer.log", shipper)
    try:
        poller = SqsPoller(sqs, url, provisioner.attrs["RequestQueue"]["QueueName"], worker)
        assert poller.poll_once() == 1
    finally:
        worker.stop()  # ships what is left
    (stream,) = cloudwatch.describe_log_streams(logGroupName=group)["logStreams"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", stream["logStreamName"])
    events = cloudwatch.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
    lines = [json.loads(e["message"]) for e in events["events"] if e["message"].startswith("{")]
    (failed,) = [line for line in lines if line.get("message") == RECORD_FAILED]
    assert failed["message_id"] == sent
    assert failed["error_type"] == "ContractError"
    assert "not an EventBridge event" in failed["error"]
    assert sent in (logs / "consumer.log").read_text()  # the local file keeps everything too
    assert shipper.dropped == 0


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(5 minutes)", 300),
        ("rate(1 minute)", 60),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 12 * * ? *)", None),
        ("at(2026-11-20T09:00:00)", None),
    ],
)
def test_rate_schedules_are_played_and_others_named(expression: str, seconds: int | None) -> None:
    assert schedule_interval(expression) == seconds


class Counting:
    """An Invocable that records what it was sent and fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[Any] = []
        self.fail = fail

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if self.fail:
            raise InvocationError("boom")
        return {"ok": True}


def test_a_schedule_sends_its_input_with_schedulers_context_filled_in() -> None:
    worker = Counting()
    runner = ScheduledRunner(
        worker,
        0.01,
        kind="ScheduleV2",
        input='{"check": "x", "at": "<aws.scheduler.scheduled-time>", '
        '"id": "<aws.scheduler.execution-id>"}',
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while runner.invocations < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop_event.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    first = worker.events[0]
    assert first["check"] == "x"
    assert first["at"].endswith("Z")
    assert "<" not in first["id"]
    assert (
        ScheduledRunner(Counting(), 60, kind="Schedule").event(datetime(2026, 11, 20, tzinfo=UTC))[
            "detail-type"
        ]
        == "Scheduled Event"
    )


def test_a_failed_scheduled_run_is_counted_and_the_next_one_still_comes() -> None:
    runner = ScheduledRunner(Counting(fail=True), 60)
    assert runner.tick() is None
    assert runner.tick() is None
    assert (runner.invocations, runner.failures) == (2, 2)


def test_the_stuck_ticket_check_runs_on_its_schedule_against_the_deployed_ledger(
    runtime: tuple[EmbeddedAws, Deployment, Path],
) -> None:
    aws, deployment, logs = runtime
    spec, env = deployment.function("StuckTicketsFunction")
    (schedule,) = spec.events.values()
    worker = FunctionWorker(spec, {**env, **_base_env(aws)}, logs / "stuck.log")
    try:
        runner = ScheduledRunner(
            worker,
            schedule_interval(schedule["Properties"]["ScheduleExpression"]) or 0,
            kind=schedule["Type"],
            input=schedule["Properties"]["Input"],
        )
        # Queries the ledger's in-flight index: it exists in the deployed table.
        assert runner.tick() == {"stuck": 0, "request_ids": []}
    finally:
        worker.stop()
    assert runner.failures == 0
