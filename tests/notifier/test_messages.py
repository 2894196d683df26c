"""Rendered ticket messages for every written-back event type, checked as text.

Golden files live in tests/notifier/golden/<type>.txt. After an intended wording change,
regenerate them with ``SELFSERVICE_UPDATE_GOLDEN=1 pytest tests/notifier/test_messages.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from notifier.domain.messages import render
from notifier.settings import NotifierSettings
from selfservice_contracts.events import EVENT_CATALOG, ProvisioningPlannedEvent, Service
from selfservice_contracts.plan import CheckResult, PlanVerdict, PolicyResult
from selfservice_runtime.parsing import parse_eventbridge_event
from tests.conftest import ROOT

GOLDEN = Path(__file__).parent / "golden"
WRITTEN_BACK = [spec for spec in EVENT_CATALOG if Service.NOTIFIER in spec.consumers]


def test_every_event_the_notifier_consumes_has_a_message() -> None:
    assert {spec.type for spec in WRITTEN_BACK} == {
        "selfservice.request.rejected.v1",
        "selfservice.request.approval-required.v1",
        "selfservice.request.approved.v1",
        "selfservice.provisioning.started.v1",
        "selfservice.provisioning.planned.v1",
        "selfservice.provisioning.refused.v1",
        "selfservice.provisioning.succeeded.v1",
        "selfservice.provisioning.failed.v1",
    }


@pytest.mark.parametrize("spec", WRITTEN_BACK, ids=lambda spec: spec.type)
def test_the_message_matches_its_golden_file(spec: object) -> None:
    event_type = spec.type  # type: ignore[attr-defined]
    event = parse_eventbridge_event((ROOT / "events/catalog" / f"{event_type}.json").read_text())
    message = render(event)
    assert message is not None
    golden = GOLDEN / f"{event_type}.txt"
    if os.environ.get("SELFSERVICE_UPDATE_GOLDEN") == "1":
        golden.write_text(message.text + "\n")
    assert message.text + "\n" == golden.read_text()


def test_events_that_are_not_written_back_render_nothing() -> None:
    event = parse_eventbridge_event(
        (ROOT / "events/catalog/selfservice.ticket.updated.v1.json").read_text()
    )
    assert render(event) is None


def test_the_example_notifier_configuration_is_valid() -> None:
    settings = NotifierSettings.model_validate_json(
        (ROOT / "config/notifier.example.json").read_text()
    )
    assert settings.servicenow.states["selfservice.provisioning.succeeded.v1"] == "3"
    assert set(settings.jira.transitions) <= {spec.type for spec in WRITTEN_BACK}
    assert (
        NotifierSettings.model_validate({}).servicenow.journal == "work_notes"
    )  # the stack default


def _planned(**changes: Any) -> ProvisioningPlannedEvent:
    sample = parse_eventbridge_event(
        (ROOT / "events/catalog/selfservice.provisioning.planned.v1.json").read_text()
    )
    assert isinstance(sample, ProvisioningPlannedEvent)
    return sample.model_copy(update={"data": sample.data.model_copy(update=changes)})


def test_a_refused_plan_names_each_failed_check_and_the_budget_figures() -> None:
    data = _planned().data
    policy = PolicyResult(
        environment="prod",
        checks=[
            CheckResult(check="no_public_ssh", passed=True),
            CheckResult(
                check="allowed_instance_types",
                passed=False,
                reasons=["aws_launch_template.this uses instance type m6i.4xlarge, not allowed"],
            ),
        ],
    )
    assert data.budget is not None
    budget = data.budget.model_copy(
        update={"within": False, "reason": "estimated 900.00 USD/month is over 500.00"}
    )
    message = render(
        _planned(policy=policy, budget=budget, needs_approval=False, verdict=PlanVerdict.APPLY)
    )
    assert message is not None
    text = message.text
    assert "Plan policies: 1 of 2 checks failed." in text
    # The failed check and its reason are a row of the policy table (issue 18).
    assert (
        "  allowed_instance_types  aws_launch_template.this uses instance type m6i.4xlarge, "
        "not allowed" in text
    )
    assert "estimated 900.00 USD/month is over 500.00" in text
    assert "Applying exactly this plan now." in text


def test_a_refused_plan_says_nothing_is_applied_and_why() -> None:
    reasons = ["aws_instance.this has a public IP address", "budget: 900.00 over 500.00"]
    message = render(_planned(verdict=PlanVerdict.REFUSE, needs_approval=False, reasons=reasons))
    assert message is not None
    text = message.text
    assert "Refused: nothing is applied, because:" in text
    assert "  - aws_instance.this has a public IP address" in text
    assert "  - budget: 900.00 over 500.00" in text
    assert "Waiting for approval" not in text
    assert "Applying exactly" not in text


def test_a_plan_applied_at_once_lists_no_reasons() -> None:
    message = render(
        _planned(verdict=PlanVerdict.APPLY, needs_approval=False, reasons=["leftover"])
    )
    assert message is not None
    assert "Applying exactly this plan now." in message.text
    assert "leftover" not in message.text


def test_a_replanned_plan_says_why_the_approved_one_was_not_applied() -> None:
    message = render(_planned(replanned_because="the state changed since it was planned"))
    assert message is not None
    lines = message.text.splitlines()
    stale = (
        "  - The approved plan was not applied: the state changed since it was planned. "
        "This new plan replaces it."
    )
    assert stale in lines
    # Said before the plan itself, so the approver reads why they are asked again first.
    assert lines.index(stale) < next(i for i, line in enumerate(lines) if "Estimated cost" in line)
    assert "Waiting for approval of plan" in message.text


def _event(event_type: str, **changes: Any) -> Any:
    sample = parse_eventbridge_event((ROOT / f"events/catalog/{event_type}.json").read_text())
    return sample.model_copy(update={"data": sample.data.model_copy(update=changes)})


def test_the_started_and_done_messages_name_the_plan_applied() -> None:
    sha = "ab" * 32
    started = render(_event("selfservice.provisioning.started.v1", approved_plan_sha256=sha))
    done = render(_event("selfservice.provisioning.succeeded.v1", plan_sha256=sha))
    assert started is not None
    assert done is not None
    assert f"applying the approved plan {sha[:12]}." in started.text
    assert f"(plan {sha[:12]})." in done.text
    plain = render(_event("selfservice.provisioning.started.v1"))
    assert plain is not None
    assert "approved plan" not in plain.text
    assert "planning only" not in plain.text


def test_a_plan_only_build_says_nothing_is_applied_before_the_approval() -> None:
    planning = render(_event("selfservice.provisioning.started.v1", plan_only=True))
    assert planning is not None
    assert "started (attempt 1), planning only: nothing is applied before the approval." in (
        planning.text
    )


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        ("PLAN_REFUSED", "meets the policies and the budget"),
        ("NOT_STARTED", "the build could not start"),
        ("FAILED", "change the request to retry"),
    ],
)
def test_what_to_do_after_a_failure_depends_on_how_it_failed(status: str, advice: str) -> None:
    message = render(_event("selfservice.provisioning.failed.v1", build_status=status))
    assert message is not None
    assert message.text.splitlines()[-1].startswith("What to do:")
    assert advice in message.text.splitlines()[-1]
