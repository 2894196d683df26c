"""The plan on the ticket as tables, over reviews of the real recorded plans.

Each case reviews a plan in ``tests/fixtures/plans/`` (real ``terraform show -json``)
as the provisioner does, puts the review in a ``provisioning.planned`` event, and reads
the tables the ServiceNow note, the Jira comment (ADF) and the e-mail are drawn from.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from notifier.domain import plan_table
from notifier.domain.messages import Message, Table, render
from provisioner.domain.plan import PlanReview
from selfservice_contracts.events import ProvisioningPlannedEvent
from selfservice_runtime.parsing import parse_eventbridge_event
from tests.conftest import ROOT
from tests.provisioner.test_plan_review import review_recorded

PLAN_JSON = "s3://selfservice-artifacts-123456789012/plans/req-eb3012c6c7dabfa8/1/plan.json"


def review(name: str, environment: str = "staging", **context: Any) -> PlanReview:
    """The provisioner's review of a recorded plan (``test_plan_review``'s)."""
    return review_recorded(name, environment=environment, **context)


def planned(result: PlanReview) -> ProvisioningPlannedEvent:
    """The catalog's planned event carrying ``result``."""
    sample = parse_eventbridge_event(
        (ROOT / "events/catalog/selfservice.provisioning.planned.v1.json").read_text()
    )
    assert isinstance(sample, ProvisioningPlannedEvent)
    data = sample.data.model_copy(
        update={
            "summary": result.summary,
            "cost": result.cost,
            "policy": result.policy,
            "budget": result.budget,
            "plan_sha256": result.summary.plan_sha256,
        }
    )
    return sample.model_copy(update={"data": data})


def message(name: str, environment: str = "staging", **context: Any) -> Message:
    rendered = render(planned(review(name, environment, **context)))
    assert rendered is not None
    return rendered


def tables(rendered: Message) -> dict[tuple[str, ...], Table]:
    """The message's tables by header."""
    return {table.header: table for table in rendered.tables.values()}


COUNTS = ("Add", "Change", "Replace", "Destroy")
RESOURCES = ("Action", "Resource", "What a reviewer checks")
COST = ("Resource", "Priced as", "Before", "After")
POLICY = ("Failed check", "Reasons")
BUDGET = ("Cost center", "Ceiling", "Committed", "This request", "Total", "Verdict")


def rows_by_resource(table: Table) -> dict[str, tuple[str, ...]]:
    return {row[1]: row for row in table.rows}


def test_a_create_shows_counts_resources_cost_and_budget_in_tables() -> None:
    rendered = message("ec2-app-create")
    found = tables(rendered)
    assert set(found) == {COUNTS, RESOURCES, COST, BUDGET}  # every check passed: no policy table
    assert found[COUNTS].rows == (("37", "0", "0", "0"),)
    resources = rows_by_resource(found[RESOURCES])
    assert resources["aws_launch_template.this"] == (
        "add",
        "aws_launch_template.this",
        "instance_type t3.small; metadata_options.http_tokens required; "
        "block_device_mappings.ebs.volume_size 20; block_device_mappings.ebs.encrypted true",
    )
    assert resources["aws_lb.this[0]"][2] == "load_balancer_type application; internal False"
    # 8 resources carry attributes; the other 29 are one row, by type.
    (others,) = [row for row in found[RESOURCES].rows if row[1].endswith("other resources")]
    assert others[:2] == ("add", "29 other resources")
    assert others[2].startswith("4 x aws_route_table_association, 4 x aws_subnet, ")
    assert others[2].endswith("+12 more types")
    cost = found[COST]
    assert cost.rows[0] == (
        "aws_autoscaling_group.this",
        "2 x t3.small (730 h) + 2 x 20 GB gp3",
        "0.00",
        "33.57",
    )  # the most expensive first
    assert cost.rows[-1] == ("Total", "USD/month", "0.00", "86.70")
    assert found[BUDGET].rows == (("CC-1042", "600.00", "0.00", "86.70", "86.70", "within"),)
    text = rendered.text
    assert "on-demand prices of 2026-12-02, us-east-1" in text  # the price table's date
    assert f"Full plan: {PLAN_JSON}" in text
    assert "Plan policies: all 7 checks passed." in text


def test_an_update_shows_before_and_after_of_what_changes() -> None:
    found = tables(message("ec2-app-update", "prod"))
    assert found[COUNTS].rows == (("0", "4", "0", "0"),)
    resources = rows_by_resource(found[RESOURCES])
    assert resources["aws_launch_template.this"][:2] == ("change", "aws_launch_template.this")
    assert "instance_type t3.small -> m6i.large" in resources["aws_launch_template.this"][2]
    assert "desired_capacity 2 -> 3" in resources["aws_autoscaling_group.this"][2]
    group = [row for row in found[COST].rows if row[0] == "aws_autoscaling_group.this"]
    (before_after,) = [row[2:] for row in group]
    assert Decimal(before_after[1]) > Decimal(before_after[0])


def test_a_replacement_names_the_attribute_that_forces_it() -> None:
    found = tables(message("ec2-app-update-port"))
    assert found[COUNTS].rows == (("0", "5", "1", "0"),)
    row = rows_by_resource(found[RESOURCES])["aws_lb_target_group.this[0]"]
    assert row[0] == "replace"
    assert row[2].endswith("port 8080 -> 8443; protocol HTTP (replaced because of port)")


def test_a_destroy_lists_what_goes_first_and_the_cost_that_stops() -> None:
    found = tables(message("ec2-app-destroy"))
    assert found[COUNTS].rows == (("0", "0", "0", "37"),)
    assert {row[0] for row in found[RESOURCES].rows} == {"destroy"}
    assert (
        "instance_type m6i.large"
        in rows_by_resource(found[RESOURCES])["aws_launch_template.this"][2]
    )
    assert found[COST].rows[-1][0] == "Total"
    assert found[COST].rows[-1][3] == "0.00"
    assert Decimal(found[COST].rows[-1][2]) > 0
    # What stops costing most comes first (not the alphabet's order).
    assert [row[0] for row in found[COST].rows[:3]] == [
        "aws_autoscaling_group.this",
        "aws_nat_gateway.this[0]",
        "aws_lb.this[0]",
    ]


def test_closing_an_account_shows_the_data_bearing_deletion() -> None:
    rendered = message("aws-account-destroy", destroy_confirmed=True)
    found = tables(rendered)
    assert found[COUNTS].rows == (("0", "0", "0", "1"),)
    assert rows_by_resource(found[RESOURCES])["aws_organizations_account.this"][0] == "destroy"
    assert "  - aws_organizations_account.this: " in rendered.text  # the finding, as a bullet


def test_a_failed_policy_is_a_table_of_checks_with_their_reasons() -> None:
    rendered = message("ec2-app-update", "staging")
    found = tables(rendered)
    assert found[POLICY].rows == (
        (
            "allowed_instance_types",
            "aws_launch_template.this uses instance type m6i.large, not allowed here "
            "(allowed: t3.small, t3.medium)",
        ),
    )
    assert "Plan policies: 1 of 7 checks failed." in rendered.text


def test_an_over_budget_request_shows_the_figures_and_the_action() -> None:
    rendered = message("ec2-app-create", committed=Decimal("550.00"))
    (row,) = tables(rendered)[BUDGET].rows
    assert row == ("CC-1042", "600.00", "550.00", "86.70", "636.70", "over: require approval")
    assert "Budget: " in rendered.text


def test_long_tables_are_capped_and_say_how_many_rows_are_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plan_table, "MAX_ROWS", 3)
    rendered = message("ec2-app-create")
    found = tables(rendered)
    assert len(found[RESOURCES].rows) == 3 + 1  # three detailed, then the other resources
    assert found[RESOURCES].more == 5
    assert found[COST].more == 3
    assert len(found[COST].rows) == 3 + 1  # and the total
    text = rendered.text
    assert "  +5 more resources with attributes: see the full plan" in text
    assert "  +3 more priced resources: see the full plan" in text


def test_the_plain_text_table_is_aligned_column_by_column() -> None:
    table = Table(("Check", "Reason"), (("a", "first"), ("longer name", "second")), more=2)
    assert table.text_lines() == [
        "  Check        Reason",
        "  -----------  ------",
        "  a            first",
        "  longer name  second",
        "  +2 more",
    ]
    with pytest.raises(ValueError, match="one cell per header"):
        Table(("A", "B"), (("only one",),))
