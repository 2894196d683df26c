"""The local runtime's figures: EventBridge → SQS delivery, orchestration overhead, demo time.

- **Delivery rate**: PutEvents (batches of 10, one client, as the platform publishes)
  to a bus on the embedded AWS with a rule targeting an SQS queue, until every event is
  in the queue.
- **Orchestration overhead per ticket, Terraform excluded**: signed ServiceNow webhooks
  through the real platform (every function, the local CodeBuild running the real
  buildspec), timed at both ends of the build: webhook sent → ``StartBuild`` received
  by the local CodeBuild, and build state change put on the bus → the ticket's
  "succeeded" work note received by the ITSM sandbox.
- **``make demo`` wall time**: the real command, dependencies already installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench.burst import completion_times
from bench.common import ROOT, median
from selfservice.develop.demo import Webhooks
from selfservice.local.iam.policies import rule_delivery_policy
from selfservice.local.moto_server import EmbeddedAws
from selfservice.local.platform import LocalPlatform

DELIVERY_EVENTS = 1000
TICKETS = 5
QUIET_SECONDS = 3.0


@dataclass(frozen=True)
class LocalFigures:
    """What :func:`measure` reports."""

    events_per_second: float
    webhook_to_start_build_ms: list[float]
    build_to_ticket_ms: list[float]
    demo_seconds: float

    @property
    def webhook_to_start_build_median_ms(self) -> float:
        """Median of the first leg."""
        return median(self.webhook_to_start_build_ms)

    @property
    def build_to_ticket_median_ms(self) -> float:
        """Median of the second leg."""
        return median(self.build_to_ticket_ms)


def delivery_rate() -> float:
    """Events per second from PutEvents to the SQS target, through the HTTP moto server."""
    with EmbeddedAws() as aws:
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the embedded AWS's root user
            region_name="us-east-1",
        )
        events = session.client("events", endpoint_url=aws.endpoint)
        sqs = session.client("sqs", endpoint_url=aws.endpoint)
        events.create_event_bus(Name="bench")
        url = sqs.create_queue(QueueName="bench")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rule = events.put_rule(
            Name="bench", EventBusName="bench", EventPattern=json.dumps({"source": ["bench"]})
        )["RuleArn"]
        events.put_targets(Rule="bench", EventBusName="bench", Targets=[{"Id": "q", "Arn": arn}])
        # EventBridge delivers only what the queue's policy allows (IAM is enforced).
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": rule_delivery_policy(arn, rule)}
        )
        entries: list[Any] = [
            {
                "Source": "bench",
                "DetailType": "t",
                "Detail": json.dumps({"n": n}),
                "EventBusName": "bench",
            }
            for n in range(DELIVERY_EVENTS)
        ]
        started = time.perf_counter()
        for chunk in range(0, DELIVERY_EVENTS, 10):
            events.put_events(Entries=entries[chunk : chunk + 10])
        deadline = started + 120
        while True:
            if time.perf_counter() > deadline:
                raise RuntimeError("the events never all reached the queue (its policy?)")
            count = int(
                sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            if count >= DELIVERY_EVENTS:
                break
            time.sleep(0.01)
        return DELIVERY_EVENTS / (time.perf_counter() - started)


def _webhook(platform: LocalPlatform, number: int) -> tuple[str, float]:
    body: dict[str, Any] = json.loads((ROOT / "demo/servicenow-ec2-request.json").read_text())
    ticket = f"RITM{9000000 + number:07d}"
    body.update(number=ticket, sys_id=f"{number:032x}")
    raw = json.dumps(body).encode()
    webhooks = Webhooks.of(platform)
    sent = time.time()
    status, reply = webhooks.send("servicenow", raw, f"bench-{number}")
    if status != 202:
        raise RuntimeError(f"webhook refused: {status} {reply}")
    return f"servicenow:{ticket}", sent


def orchestration() -> tuple[list[float], list[float]]:
    """Both legs, per ticket, in milliseconds (tickets one after another)."""
    first, second = [], []
    with (
        tempfile.TemporaryDirectory(prefix="bench-local-") as workdir,
        LocalPlatform(ROOT, Path(workdir), say=lambda _: None) as platform,
    ):
        assert platform.codebuild is not None
        client = platform.codebuild.client
        for number in range(TICKETS):
            # Each ticket arrives on a quiet platform (the previous ticket's last
            # write-backs, log shipping and deletes done), as one ticket at a time would.
            time.sleep(QUIET_SECONDS)
            ticket, sent = _webhook(platform, number)
            deadline = time.monotonic() + 600
            # Watch only what is in this process (the sandbox's journal, the local
            # CodeBuild's records): polling the embedded AWS would load the very server
            # whose latency is measured.
            sys_id = f"{number:032x}"
            while not (done := completion_times(list(platform.itsm.state.journal), {sys_id})):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{ticket} not written back")
                time.sleep(0.01)
            build = client.runs[-1].build_id
            first.append((client.requested_at[build] - sent) * 1000)
            second.append((done[sys_id] - client.reported_at[build]) * 1000)
    return first, second


def demo_seconds() -> float:
    """Wall time of `selfservice demo` (what `make demo` runs once set up)."""
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "selfservice.cli", "demo", "--root", str(ROOT)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def measure() -> LocalFigures:
    """Every local-runtime figure."""
    rate = delivery_rate()
    first, second = orchestration()
    return LocalFigures(rate, first, second, demo_seconds())
