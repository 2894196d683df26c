"""`selfservice replay` on the embedded AWS: the window, the filters, audit vs reprocess.

The platform is deployed from the templates (no function runs), so every delivery a
replay makes is still sitting where EventBridge put it: in the audit trail, or in a
consumer's queue.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from selfservice import cli
from selfservice.local.deploy import Deployment, deploy_platform
from selfservice.local.moto_server import EmbeddedAws
from selfservice.operator.replay import in_window, plan_replay, run_replay
from selfservice.operator.resources import PlatformResources, resolve, trail_events
from selfservice.operator.status import ticket_status
from selfservice.templates import load_platform
from selfservice_contracts.events import AnyEvent, ProvisioningPlanned
from selfservice_runtime.parsing import parse_eventbridge_event
from selfservice_runtime.publisher import EventBridgePublisher
from tests.conftest import ROOT

NOW = datetime.now(UTC).replace(microsecond=0)
RECEIVED = "selfservice.request.received.v1"
STARTED = "selfservice.provisioning.started.v1"


def _sample(event_type: str, n: int, at: datetime) -> AnyEvent:
    raw = json.loads((ROOT / "events/catalog" / f"{event_type}.json").read_text())
    event = parse_eventbridge_event(raw)
    return event.model_copy(update={"id": f"{event_type}-{n}", "time": at})


@dataclass
class Platform:
    aws: EmbeddedAws
    deployment: Deployment
    resources: PlatformResources
    sqs: Any
    published: dict[str, datetime]

    def queue(self, stack: str, logical: str) -> str:
        return str(
            next(s for s in self.deployment.stacks() if s.name.endswith(stack)).refs[logical]
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        bodies = []
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with EmbeddedAws() as aws:
            deployment = deploy_platform(
                load_platform(ROOT / "template.yaml"), endpoint_url=aws.endpoint
            )
            args = argparse.Namespace(
                stack="selfservice", region="us-east-1", profile=None, endpoint_url=aws.endpoint
            )
            resources = resolve(args)
            publisher = EventBridgePublisher(resources.client("events"), resources.bus_name)
            # Hours ago: 4 requests received and 4 builds started, one of each per hour.
            published = {}
            for hour in range(4, 0, -1):
                at = NOW - timedelta(hours=hour)
                for kind in (RECEIVED, STARTED):
                    event = _sample(kind, hour, at)
                    publisher.publish([event])
                    published[event.id] = at
            sqs = resources.client("sqs")
            platform = Platform(aws, deployment, resources, sqs, published)
            live = platform.drain(platform.queue("Provisioner", "RequestQueue"))
            assert len(live) == 4  # the live deliveries reached the consumer
            platform.drain(platform.queue("Notifier", "WriteBackQueue"))
            yield platform


def _window_ids(platform: Platform, start: datetime, end: datetime, *types: str) -> list[str]:
    return sorted(
        event_id
        for event_id, at in platform.published.items()
        if start <= at < end and (not types or event_id.rsplit("-", 1)[0] in types)
    )


def test_the_platform_is_discovered_from_the_templates_names(platform: Platform) -> None:
    resources = platform.resources
    assert resources.bus_name == "selfservice-bus"
    assert resources.archive_arn is not None
    assert resources.audit_log_group == "/selfservice/audit-trail"
    assert resources.ledger_table == "selfservice-Provisioner-LedgerTable"
    live = [e for e in trail_events(resources) if "replay-name" not in e]
    assert sorted(e["detail"]["id"] for e in live) == sorted(platform.published)


def test_an_audit_replay_delivers_exactly_its_window_to_the_trail_and_provisions_nothing(
    platform: Platform,
) -> None:
    start, end = NOW - timedelta(hours=3, minutes=30), NOW - timedelta(hours=1, minutes=30)
    plan = plan_replay(platform.resources, start, end)
    expected = _window_ids(platform, start, end)
    assert len(expected) == 4
    assert sorted(e["detail"]["id"] for e in in_window(platform.resources, plan)) == expected
    report = run_replay(platform.resources, plan, say=lambda _: None, settle_seconds=0)
    assert report.state == "COMPLETED"
    assert report.event_ids == expected
    assert report.by_type == {RECEIVED: 2, STARTED: 2}
    for stack, queue in (("Provisioner", "RequestQueue"), ("Notifier", "WriteBackQueue")):
        assert platform.drain(platform.queue(stack, queue)) == [], queue
    rules = platform.resources.client("events").list_rules(EventBusName="selfservice-bus")["Rules"]
    assert not [r for r in rules if r["Name"].startswith("replay-")]  # its own rule is gone


def test_an_audit_replay_can_be_narrowed_to_types(platform: Platform) -> None:
    start, end = NOW - timedelta(hours=5), NOW
    plan = plan_replay(platform.resources, start, end, types=(STARTED,))
    report = run_replay(platform.resources, plan, say=lambda _: None, settle_seconds=0)
    assert report.event_ids == _window_ids(platform, start, end, STARTED)
    assert set(report.by_type) == {STARTED}


def test_reprocessing_delivers_the_window_to_the_consumers_too(platform: Platform) -> None:
    start, end = NOW - timedelta(hours=2, minutes=30), NOW
    plan = plan_replay(platform.resources, start, end, reprocess=True)
    assert len(plan.reprocess_rules) == 2
    report = run_replay(platform.resources, plan, say=lambda _: None, settle_seconds=0)
    assert report.event_ids == _window_ids(platform, start, end)
    requests = platform.drain(platform.queue("Provisioner", "RequestQueue"))
    writebacks = platform.drain(platform.queue("Notifier", "WriteBackQueue"))
    assert sorted(b["detail"]["id"] for b in requests) == _window_ids(
        platform, start, end, RECEIVED
    )
    assert sorted(b["detail"]["id"] for b in writebacks) == _window_ids(
        platform, start, end, STARTED
    )
    assert {b["replay-name"] for b in requests + writebacks} == {plan.name}


def test_bad_requests_are_refused_before_anything_starts(platform: Platform) -> None:
    with pytest.raises(ValueError, match="before"):
        plan_replay(platform.resources, NOW, NOW - timedelta(hours=1))
    with pytest.raises(ValueError, match="whole window"):
        plan_replay(
            platform.resources, NOW - timedelta(hours=1), NOW, types=(RECEIVED,), reprocess=True
        )
    with pytest.raises(ValueError, match="zone"):
        plan_replay(platform.resources, datetime(2026, 1, 1), datetime(2026, 1, 2))


TICKET = "servicenow:RITM0010042"
"""The ticket of every sample event."""


def test_status_shows_replayed_events_marked_as_replays(platform: Platform) -> None:
    start, end = NOW - timedelta(hours=1, minutes=30), NOW
    plan = plan_replay(platform.resources, start, end, types=(RECEIVED,))
    run_replay(platform.resources, plan, say=lambda _: None, settle_seconds=0)
    (replayed_id,) = _window_ids(platform, start, end, RECEIVED)
    steps = ticket_status(platform.resources, TICKET).timeline
    live = [s for s in steps if "replay" not in s.detail]
    assert sorted(str(s.detail["event_id"]) for s in live) == sorted(platform.published)
    replays = [s for s in steps if s.detail.get("replay") == plan.name]
    assert [(s.what, s.detail["event_id"]) for s in replays] == [
        ("request.received [replayed]", replayed_id)
    ]


def test_status_and_replay_take_the_region_from_aws_region(
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As `selfservice up` prints them: only --endpoint-url, the region in the env file."""
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    endpoint = ["--endpoint-url", platform.aws.endpoint]
    window = ["--start", (NOW - timedelta(hours=5)).isoformat(), "--end", NOW.isoformat()]
    status = ["status", TICKET, *endpoint]
    replay = ["replay", *window, "--dry-run", *endpoint]
    assert cli.main(status) == 2  # no region anywhere: said, not a NoRegionError traceback
    assert "no AWS region: pass --region or set AWS_REGION" in capsys.readouterr().err
    assert cli.main(replay) == 2
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert cli.main(status) == 0
    assert TICKET in capsys.readouterr().out
    assert cli.main(replay) == 0


def test_status_shows_the_tickets_latest_plan_as_the_ticket_was_shown_it(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = _sample("selfservice.provisioning.planned.v1", 1, datetime.now(UTC))
    assert isinstance(planned.data, ProvisioningPlanned)
    EventBridgePublisher(platform.resources.client("events"), platform.resources.bus_name).publish(
        [planned]
    )
    platform.published[planned.id] = planned.time  # later than every replay window's end
    platform.drain(platform.queue("Notifier", "WriteBackQueue"))
    status = ticket_status(platform.resources, TICKET)
    assert list(status.plans) == [planned.data.request_id]
    assert (
        cli.main(
            ["status", TICKET, "--endpoint-url", platform.aws.endpoint, "--region", "us-east-1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"  plan {planned.data.plan_sha256}, hold" in out
    assert "Estimated cost: 86.70 USD/month" in out
    assert "Waiting for approval of plan" in out
