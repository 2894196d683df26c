"""The provisioner's three handlers on moto, as Lambda calls them: what they tell operators.

The ledger table is created from its definition in ``sam/provisioner.yaml`` (keys and
the in-flight index), CodeBuild is moto's; the handlers build their own adapters from
the environment. Each outcome is counted under its metric once, each record's log lines
carry its request id, every published event carries the invocation's X-Ray trace
header, and the stuck-ticket check finds exactly the requests in flight for too long.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from provisioner.adapters.ledger_dynamodb import DynamoDBLedger
from provisioner.domain.ledger import LedgerEntry
from provisioner.domain.lifecycle import State
from provisioner.handlers import build_events, request_consumer, stuck_tickets
from provisioner.runtime import build_runtime, in_flight_index
from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
from selfservice_contracts.events import AnyEvent, ProvisioningStarted
from selfservice_contracts.request import TicketRef, TicketSystem
from selfservice_runtime.observability import Metric
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import create_dedupe_table, create_ledger_table, drain, mocked_aws, observe_bus
from tests.conftest import ROOT
from tests.environment import use_function_environment
from tests.lambda_context import TRACE_HEADER, FakeContext, traced_invocation
from tests.provisioner.fakes import received, request
from tests.telemetry import PutEventsSpy, Telemetry

REGION = "us-east-1"
BUS = "selfservice-bus"
PROJECT = "selfservice-provision"
LEDGER = "selfservice-ledger"
TRACE = TRACE_HEADER
BUILD_CHANGE = json.loads(
    (ROOT / "tests/fixtures/codebuild-state-change-succeeded.json").read_text()
)


def _ticket(key: str) -> TicketRef:
    return TicketRef(
        system=TicketSystem.SERVICENOW,
        key=key,
        internal_id=hashlib.md5(key.encode()).hexdigest(),  # noqa: S324 - a made-up sys_id
        url=f"https://acme.service-now.com/sc_req_item.do?sysparm_query=number={key}",
    )


@dataclass
class Stack:
    observer_url: str

    def published(self) -> list[AnyEvent]:
        return [parse_sqs_body(m["Body"]) for m in drain(self.observer_url)]

    @property
    def ledger(self) -> DynamoDBLedger:
        return DynamoDBLedger(boto3.client("dynamodb", region_name=REGION), LEDGER)


def _reset() -> None:
    for module in (request_consumer, build_events, stuck_tickets):
        module.config.cache_clear()
    in_flight_index.cache_clear()
    build_runtime.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mocked_aws(monkeypatch):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(dynamodb, LEDGER)
        create_dedupe_table(dynamodb, "selfservice-idempotency")
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="selfservice-artifacts")
        # The plan guardrails every build's review input carries (the template's default).
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name="local-provisionerconfig", Type="String", Value='{"version": 1}'
        )
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="provision", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        boto3.client("codebuild", region_name=REGION).create_project(
            name=PROJECT,
            source={"type": "S3", "location": "selfservice-artifacts/bundles/provisioner.zip"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "ARM_CONTAINER",
                "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            serviceRole=role,
        )
        observer = observe_bus(BUS, {"source": ["selfservice.provisioner"]})
        resources = {
            "EVENT_BUS_NAME": BUS,
            "LEDGER_TABLE_NAME": LEDGER,
            "IDEMPOTENCY_TABLE_NAME": "selfservice-idempotency",
            "ARTIFACTS_BUCKET_NAME": "selfservice-artifacts",
            "CODEBUILD_PROJECT_NAME": PROJECT,
        }
        # The request consumer's (the build-events handler's is the same) and the check's.
        use_function_environment(monkeypatch, "RequestConsumerFunction", resources)
        use_function_environment(monkeypatch, "StuckTicketsFunction", resources)
        _reset()
        yield Stack(observer)
        _reset()


def _deliver(*events: AnyEvent) -> dict[str, Any]:
    bodies = [json.dumps(eventbridge_delivery(event, event_bus_name=BUS)) for event in events]
    return dict(request_consumer.lambda_handler(sqs_event(bodies), FakeContext()))


def _build_change(request_id: str, build_id: str, status: str) -> dict[str, Any]:
    change: dict[str, Any] = copy.deepcopy(BUILD_CHANGE)
    change["id"] = f"{build_id}-{status}"
    arn = f"arn:aws:codebuild:{REGION}:123456789012:build/{build_id}"
    change["resources"] = [arn]
    detail = change["detail"]
    detail.update({"build-status": status, "build-id": arn, "project-name": PROJECT})
    detail["additional-information"]["environment"]["environment-variables"] = [
        {"name": "REQUEST_ID", "type": "PLAINTEXT", "value": request_id},
        {"name": "ATTEMPT", "type": "PLAINTEXT", "value": "1"},
    ]
    return change


def _finish(*changes: dict[str, Any]) -> dict[str, Any]:
    event = sqs_event([json.dumps(change) for change in changes])
    return dict(build_events.lambda_handler(event, FakeContext()))


def _started(stack: Stack) -> dict[str, str]:
    """request id → build id of the builds started so far."""
    return {
        e.data.request_id: e.data.build_id
        for e in stack.published()
        if isinstance(e.data, ProvisioningStarted)
    }


def test_builds_are_counted_once_by_outcome(stack: Stack, telemetry: Telemetry) -> None:
    first, second = request(ticket=_ticket("RITM0020001")), request(ticket=_ticket("RITM0020002"))
    assert _deliver(received(first, "e-1"), received(second, "e-2")) == {"batchItemFailures": []}
    _deliver(received(first, "e-1"))  # the same event again (SQS at-least-once): no count
    _deliver(received(first, "e-3"))  # another event for a request already building: refused
    builds = _started(stack)
    _finish(
        _build_change(first.request_id, builds[first.request_id], "SUCCEEDED"),
        _build_change(second.request_id, builds[second.request_id], "TIMED_OUT"),
    )
    _finish(_build_change(first.request_id, builds[first.request_id], "SUCCEEDED"))  # replayed
    assert telemetry.counts() == {
        Metric.BUILDS_STARTED: 2,
        Metric.TRANSITIONS_REFUSED: 1,
        Metric.BUILDS_SUCCEEDED: 1,
        Metric.BUILDS_FAILED: 1,
    }


def test_each_records_log_lines_carry_its_own_request_id(
    stack: Stack, telemetry: Telemetry
) -> None:
    first, second = request(ticket=_ticket("RITM0020003")), request(ticket=_ticket("RITM0020004"))
    _deliver(received(first, "e-4"), received(second, "e-5"))
    handled = telemetry.logs("request event handled")
    assert [(line["correlation_id"], line["ticket"]) for line in handled] == [
        (first.request_id, str(first.ticket)),
        (second.request_id, str(second.ticket)),
    ]
    builds = _started(stack)
    _finish(
        _build_change(second.request_id, builds[second.request_id], "FAILED"),
        {**BUILD_CHANGE, "detail": {**BUILD_CHANGE["detail"], "build-status": "IN_PROGRESS"}},
    )
    (outcome,) = telemetry.logs("build outcome handled")
    assert outcome["correlation_id"] == second.request_id
    (ignored,) = telemetry.logs("build event ignored")
    assert "correlation_id" not in ignored  # not our build: the last record's id is gone


def test_lifecycle_events_carry_the_invocations_trace_header(
    stack: Stack, put_events: PutEventsSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    traced_invocation(monkeypatch)
    req = request(ticket=_ticket("RITM0020005"))
    _deliver(received(req, "e-6"))
    builds = _started(stack)
    _finish(_build_change(req.request_id, builds[req.request_id], "SUCCEEDED"))
    assert [e.type for e in stack.published()] == ["selfservice.provisioning.succeeded.v1"]
    assert [entry["DetailType"] for entry in put_events.entries] == [
        "selfservice.provisioning.started.v1",
        "selfservice.provisioning.succeeded.v1",
    ]
    assert {entry.get("TraceHeader") for entry in put_events.entries} == {TRACE}


# -- stuck tickets -----------------------------------------------------------------------


def _entry(key: str, state: State, age: timedelta, **changes: Any) -> LedgerEntry:
    req = request(ticket=_ticket(key))
    return LedgerEntry(
        request_id=req.request_id,
        product=req.product,
        instance=str(req.ticket),
        state=state,
        version=1,
        action=req.action,
        attempt=1,
        request=req,
        updated_at=datetime.now(UTC) - age,
        build_id=f"{PROJECT}:{key.lower()}",
        log_url=f"https://logs.example/{key}",
        **changes,
    )


def _check() -> dict[str, Any]:
    event = json.loads((ROOT / "events/StuckTicketsFunction.json").read_text())
    return dict(stuck_tickets.lambda_handler(event, FakeContext()))


def test_the_stuck_ticket_check_reports_requests_in_flight_past_the_threshold(
    stack: Stack, telemetry: Telemetry
) -> None:
    hours = timedelta(hours=1)
    entries = {
        "building for 3 h": _entry("RITM0030001", State.PROVISIONING, 3 * hours),
        "queued for 4 h": _entry("RITM0030002", State.QUEUED, 4 * hours),
        "destroying for 6 h": _entry("RITM0030003", State.DESTROYING, 6 * hours),
        "building for 1 h": _entry("RITM0030004", State.UPDATING, hours),
        "done for a day": _entry("RITM0030005", State.SUCCEEDED, 24 * hours),
        "awaiting approval": _entry("RITM0030006", State.AWAITING_APPROVAL, 24 * hours),
        "waiting for the slot": _entry(
            "RITM0030007", State.QUEUED, 5 * hours, waiting_for_slot=True
        ),
    }
    for entry in entries.values():
        stack.ledger.save(None, entry, [])
    expected = [entries[name].request_id for name in ("destroying for 6 h", "queued for 4 h")]
    expected.append(entries["building for 3 h"].request_id)
    assert _check() == {"stuck": 3, "request_ids": expected}  # oldest first
    assert telemetry.counts() == {Metric.TICKETS_STUCK: 3}
    stuck = telemetry.logs("ticket stuck")
    assert [line["correlation_id"] for line in stuck] == expected
    assert stuck[0]["state"] == "destroying"
    assert stuck[0]["age_minutes"] == 360
    assert stuck[0]["log_url"] == "https://logs.example/RITM0030003"
    assert stuck[0]["ticket"] == "servicenow:RITM0030003"
    (done,) = telemetry.logs("stuck-ticket check done")
    assert "correlation_id" not in done
    assert done["execution_id"] == "5e4bbd06-0c4a-4c8b-9d3e-8f1a2b3c4d5e"


def test_the_check_reports_zero_and_a_finished_build_leaves_the_index(
    stack: Stack, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request(ticket=_ticket("RITM0030008"))
    _deliver(received(req, "e-7"))
    entry = stack.ledger.get(req.request_id)
    assert entry is not None
    assert entry.state is State.PROVISIONING
    # Three hours later (the entry aged in place), it is stuck ...
    stack.ledger.save(
        entry,
        replace(entry, version=entry.version + 1, updated_at=entry.updated_at - timedelta(hours=3)),
        [],
    )
    assert _check()["request_ids"] == [req.request_id]
    # ... until its build's outcome arrives: then it leaves the index.
    builds = _started(stack)
    _finish(_build_change(req.request_id, builds[req.request_id], "SUCCEEDED"))
    assert _check() == {"stuck": 0, "request_ids": []}
    gauge = [m for m in telemetry.metrics() if m.name == Metric.TICKETS_STUCK]
    assert [m.value for m in gauge] == [1.0, 0.0]  # zero is reported, not left missing
