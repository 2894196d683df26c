"""Fault injection in the builds: Terraform failing mid-apply, and a CodeBuild build
failing before Terraform runs — what the ticket shows, where the messages are, and that
nothing was lost. Then the audit view of the same story (`selfservice status`) and a
reprocessing replay of all of it, which changes nothing (idempotent consumers).

Runs the real platform (every function, real Terraform in the local CodeBuild); the
first build is made to fail for real (Terraform rejects an injected argument), and a
later one fails in PRE_BUILD (its input is missing from S3).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from selfservice.cli import main
from selfservice.develop.demo import Webhooks, _ledger
from selfservice.local.build_runner import BuildRun
from selfservice.local.platform import LocalPlatform
from selfservice.operator.replay import plan_replay, run_replay
from selfservice.operator.resources import PlatformResources, resolve, trail_events
from selfservice.operator.status import ticket_status
from tests.fault.support import (
    dead_letters,
    eventually,
    servicenow_note_texts,
    servicenow_notes,
    settled,
)

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

TICKET = "servicenow:RITM0010042"
MODIFY_ITEM = "Modify AWS EC2 Instance"


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    eventually(lambda: True if condition() else None, what, timeout=timeout, interval=0.5)


def _deliver(platform: LocalPlatform, body: dict[str, Any], message_id: str) -> None:
    status, reply = Webhooks.of(platform).send("servicenow", json.dumps(body).encode(), message_id)
    assert status == 202, reply


def _written_back(resources: PlatformResources) -> int:
    return len(_updates(resources))


@pytest.fixture(scope="module")
def story(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalPlatform, PlatformResources, datetime]]:
    began = datetime.now(UTC) - timedelta(seconds=5)
    with (
        pytest.MonkeyPatch.context() as env,
        LocalPlatform(root, tmp_path_factory.mktemp("audit"), say=lambda _: None) as platform,
    ):
        # The operator tools use the standard credential chain: the embedded AWS takes any.
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        assert platform.codebuild is not None
        platform.codebuild.client.inject_fault()  # the first build fails in Terraform
        create = json.loads((root / "demo/servicenow-ec2-request.json").read_text())
        _deliver(platform, create, "msg_audit_create")
        _wait_for(lambda: _ledger(platform).get(TICKET) == "failed", "the failed build")
        modify = json.loads(json.dumps(create))
        modify.update(number="RITM0010050", sys_id="9d385017c611228701d22104cc95c999")
        modify["cat_item"] = {"sys_id": "5c2f0a3b4f7b4200086eeed18110c999", "name": MODIFY_ITEM}
        modify["variables"].update(
            instance_type="t3.small", original_request="9d385017c611228701d22104cc95c371"
        )
        modify["display_values"] = {"original_request": "RITM0010042"}
        _deliver(platform, modify, "msg_audit_modify")
        _wait_for(lambda: _ledger(platform).get(TICKET) == "succeeded", "the retry")
        resources = resolve(
            argparse.Namespace(
                stack="selfservice",
                region="us-east-1",
                profile=None,
                endpoint_url=platform.embedded.endpoint,
            )
        )
        # started, failed, started, succeeded: four updates on the tickets
        _wait_for(lambda: _written_back(resources) >= 4, "the write-backs", timeout=60)
        yield platform, resources, began


def test_status_shows_the_complete_history_with_the_failed_build_and_its_retry(
    story: tuple[LocalPlatform, PlatformResources, datetime], capsys: pytest.CaptureFixture[str]
) -> None:
    platform, resources, _ = story
    status = ticket_status(resources, TICKET)
    (instance,) = status.instances
    assert (instance["product"], instance["state"], instance["action"]) == (
        "ec2-app",
        "succeeded",
        "update",
    )
    assert instance["attempt"] == 2
    assert instance["outputs"]["instance_ids"]
    ledger = [s.what for s in status.timeline if s.source == "ledger"]
    assert ledger == [
        "ec2-app: ∅ → received",
        "ec2-app: received → queued",
        "ec2-app: queued → provisioning",
        "ec2-app: provisioning → failed",
        "ec2-app: failed → queued",
        "ec2-app: queued → updating",
        "ec2-app: updating → succeeded",
    ]
    events = [s for s in status.timeline if s.source != "ledger"]
    kinds = [s.what for s in events]
    for kind in (
        "request.received",
        "provisioning.started",
        "provisioning.failed",
        "provisioning.succeeded",
    ):
        assert kind in kinds, kinds
    failed = next(s for s in events if s.what == "provisioning.failed")
    assert failed.detail["build_status"] == "FAILED"
    assert failed.detail["phase"] == "BUILD"
    replies = [str(s.detail.get("in_reply_to")) for s in events if s.what == "ticket.updated"]
    assert replies.count("provisioning.started") == 2
    assert {"provisioning.failed", "provisioning.succeeded"} <= set(replies)
    builds = {s.detail["build_id"] for s in events if s.what == "provisioning.started"}
    assert len(builds) == 2  # the failed build and its retry

    assert main(["status", TICKET, "--endpoint-url", platform.embedded.endpoint]) == 0
    shown = capsys.readouterr().out
    assert "ec2-app      succeeded    action update, attempt 2" in shown
    assert "provisioning → failed" in shown
    assert "provisioning.failed" in shown
    assert "ticket=servicenow:RITM0010050" in shown  # the modify item acted on this instance


def _updates(resources: PlatformResources) -> list[tuple[str, str]]:
    """(ticket, type of the event written back) of every write-back on the bus."""
    return [
        (e["detail"]["subject"], e["detail"]["data"]["in_reply_to"]["type"])
        for e in trail_events(resources)
        if e.get("detail-type") == "selfservice.ticket.updated.v1" and "replay-name" not in e
    ]


def _seconds(run: BuildRun) -> float:
    return round((run.ended_at - run.started_at).total_seconds(), 1)


def test_terraform_failing_mid_apply_is_told_on_the_ticket_and_the_update_completes(
    story: tuple[LocalPlatform, PlatformResources, datetime],
    record_property: Callable[[str, object], None],
) -> None:
    platform, resources, _ = story
    assert platform.codebuild is not None
    first, retry = platform.codebuild.client.runs[:2]
    assert (first.status, first.failed_phase) == ("FAILED", "BUILD")
    assert any("terraform apply" in line for line in first.log)  # it failed applying
    assert retry.status == "SUCCEEDED"
    # What the tickets show: the plan the build reviewed and failed to apply, the failure
    # with the phase and the build log, then the modify item's run to completion.
    failed = servicenow_note_texts(platform, "9d385017c611228701d22104cc95c371")
    assert [note.splitlines()[0] for note in failed] == [
        "[selfservice] Provisioning started",
        "[selfservice] Plan and cost",
        "[selfservice] Provisioning failed",
    ]
    assert "Applying exactly this plan now." in failed[1]
    assert "the BUILD phase failed" in failed[2]
    assert "Build log: " in failed[2]
    # The retry plans and applies in one build: its plan, then the outcome (issue 18).
    assert servicenow_notes(platform, "9d385017c611228701d22104cc95c999") == [
        "[selfservice] Provisioning started",
        "[selfservice] Plan and cost",
        "[selfservice] Done",
    ]
    # Where the messages are: every build outcome consumed, every update written; the
    # queues are empty and nothing was parked.
    assert set(dead_letters(settled(platform)).values()) == {0}
    story_tickets = {TICKET, "servicenow:RITM0010050"}
    assert sorted(u for u in _updates(resources) if u[0] in story_tickets) == sorted(
        [
            (TICKET, "selfservice.provisioning.started.v1"),
            (TICKET, "selfservice.provisioning.planned.v1"),
            (TICKET, "selfservice.provisioning.failed.v1"),
            ("servicenow:RITM0010050", "selfservice.provisioning.started.v1"),
            ("servicenow:RITM0010050", "selfservice.provisioning.planned.v1"),
            ("servicenow:RITM0010050", "selfservice.provisioning.succeeded.v1"),
        ]
    )
    record_property("failed_build_seconds", _seconds(first))
    record_property("retry_build_seconds", _seconds(retry))


def test_a_build_that_fails_before_terraform_runs_is_told_on_the_ticket(
    story: tuple[LocalPlatform, PlatformResources, datetime],
    root: Path,
    record_property: Callable[[str, object], None],
) -> None:
    platform, resources, _ = story
    assert platform.codebuild is not None
    builds = len(platform.codebuild.client.runs)
    # The build's input is gone from S3 (a lifecycle rule, a denied bucket policy…).
    bucket = platform.stack("Provisioner").refs["ArtifactsBucket"]
    platform.codebuild.client.inject_fault({"TFVARS_S3_URI": f"s3://{bucket}/tfvars/missing.json"})
    request = json.loads((root / "demo/servicenow-ec2-request.json").read_text())
    request.update(number="RITM0010061", sys_id="d1" * 16)
    _deliver(platform, request, "msg_fault_codebuild")
    _wait_for(
        lambda: _ledger(platform).get("servicenow:RITM0010061") == "failed",
        "the failed build",
        timeout=120,
    )
    run = platform.codebuild.client.runs[builds]
    assert (run.status, run.failed_phase) == ("FAILED", "PRE_BUILD")
    ran = [line for line in run.log if line.startswith("[Container] Running command")]
    assert any("s3copy.py" in line for line in ran)  # the command that failed
    assert not [line for line in ran if line.startswith("[Container] Running command terraform")]
    assert len(platform.codebuild.client.runs) == builds + 1  # nothing ran it again
    _wait_for(
        lambda: len(servicenow_notes(platform, "d1" * 16)) == 2,
        "the failure on the ticket",
    )
    notes = servicenow_note_texts(platform, "d1" * 16)
    assert notes[0].startswith("[selfservice] Provisioning started")
    assert notes[1].startswith("[selfservice] Provisioning failed")
    assert "the PRE_BUILD phase failed" in notes[1]
    assert set(dead_letters(settled(platform)).values()) == {0}
    assert [u for u in _updates(resources) if u[0] == "servicenow:RITM0010061"] == [
        ("servicenow:RITM0010061", "selfservice.provisioning.started.v1"),
        ("servicenow:RITM0010061", "selfservice.provisioning.failed.v1"),
    ]
    record_property("failed_build_seconds", _seconds(run))


def test_a_reprocessing_replay_of_everything_changes_nothing(
    story: tuple[LocalPlatform, PlatformResources, datetime],
) -> None:
    platform, resources, began = story
    assert platform.codebuild is not None
    builds = len(platform.codebuild.client.runs)
    before = ticket_status(resources, TICKET)
    journal = len(platform.itsm.state.journal)
    plan = plan_replay(resources, began, datetime.now(UTC) + timedelta(seconds=1), reprocess=True)
    report = run_replay(resources, plan, say=lambda _: None, settle_seconds=0)
    assert report.state == "COMPLETED"
    assert sum(report.by_type.values()) >= 8
    # Let the consumers take the replayed events off their queues.
    sqs = platform.client("sqs")
    queues = [
        platform.stack("Provisioner").refs["RequestQueue"],
        platform.stack("Notifier").refs["WriteBackQueue"],
    ]

    def drained() -> bool:
        attributes = [
            sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
            for q in queues
        ]
        return all(
            a["ApproximateNumberOfMessages"] == "0"
            and a["ApproximateNumberOfMessagesNotVisible"] == "0"
            for a in attributes
        )

    _wait_for(drained, "the consumers to handle the replay", timeout=120)
    time.sleep(2)
    assert len(platform.codebuild.client.runs) == builds  # nothing built again
    assert len(platform.itsm.state.journal) == journal  # nothing written to the ticket again
    after = ticket_status(resources, TICKET)
    assert after.instances == before.instances
    # The live record is unchanged; the replay shows beside it, each delivery marked.
    live = [s for s in after.timeline if "replay" not in s.detail]
    assert [s.what for s in live] == [s.what for s in before.timeline]
    replayed = [s for s in after.timeline if "replay" in s.detail]
    assert replayed
    assert {s.detail["replay"] for s in replayed} == {plan.name}
    assert all(s.what.endswith(" [replayed]") for s in replayed)
    assert {s.detail["event_id"] for s in replayed} <= {
        s.detail.get("event_id") for s in before.timeline
    }


def test_a_deploy_role_the_build_may_not_assume_is_told_on_the_ticket(
    story: tuple[LocalPlatform, PlatformResources, datetime], root: Path
) -> None:
    """IAM refusing Terraform (here: a deploy role outside the build role's
    ``AssumeProductRoles`` grant) fails the build, and the ticket says who was refused what."""
    platform, _, _ = story
    assert platform.codebuild is not None
    builds = len(platform.codebuild.client.runs)
    platform.codebuild.client.inject_fault({"PRODUCT_ROLE_PREFIX": "not-a-product-role-"})
    request = json.loads((root / "demo/servicenow-ec2-request.json").read_text())
    request.update(number="RITM0010062", sys_id="d2" * 16)
    _deliver(platform, request, "msg_fault_deploy_role")
    _wait_for(
        lambda: _ledger(platform).get("servicenow:RITM0010062") == "failed",
        "the refused build",
        timeout=180,
    )
    run = platform.codebuild.client.runs[builds]
    assert (run.status, run.failed_phase) == ("FAILED", "BUILD")
    log = _unwrapped(run.log)  # Terraform wraps its diagnostics in a box, 80 columns wide
    assert "AccessDenied" in log
    assert "sts:AssumeRole" in log
    _wait_for(
        lambda: len(servicenow_notes(platform, "d2" * 16)) == 2,
        "the failure on the ticket",
    )
    notes = servicenow_note_texts(platform, "d2" * 16)
    assert notes[1].startswith("[selfservice] Provisioning failed")
    assert "AccessDenied" in _unwrapped(notes[1].splitlines())


def _unwrapped(lines: list[str]) -> str:
    return "".join(line.strip().strip("│╷╵").strip() for line in lines)
