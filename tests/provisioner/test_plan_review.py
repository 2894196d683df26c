"""Plan review over recorded plans of both products: summary, policies, estimate, budget.

The plans are real ``terraform show -json`` output (``tests/fixtures/plans/``, recorded
by ``make plans``); a few cases edit a copy to show what a module would have to do
wrong for a check to fail.
"""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from provisioner.domain.plan import (
    Check,
    EnvironmentPlanPolicy,
    PlanFormatError,
    PlanGuardrails,
    PlanReview,
    ProductPlanSettings,
    ReviewContext,
    TerraformPlan,
    Verdict,
    check_budget,
    estimate,
    evaluate,
    load_prices,
    plan_sha256,
    review_plan,
    summarize,
)
from provisioner.domain.plan.prices import PRICES_DIR, UnsupportedRegionError, supported_regions
from provisioner.domain.products import load_product
from selfservice_contracts.plan import (
    BudgetAction,
    ChangeAction,
    FindingKind,
    PlanSummary,
    PolicyResult,
)
from tests.conftest import ROOT

FIXTURES = ROOT / "tests/fixtures/plans"
SHA = hashlib.sha256(b"tfplan").hexdigest()
GUARDRAILS = PlanGuardrails.model_validate_json(
    (ROOT / "config/provisioner.example.json").read_text()
)


@cache
def _document(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def raw(name: str) -> dict[str, Any]:
    """A fresh copy of a recorded plan, safe to edit."""
    document: dict[str, Any] = json.loads(_document(name))
    return document


def plan(name: str) -> TerraformPlan:
    return TerraformPlan.from_json(raw(name))


def summary(name: str) -> PlanSummary:
    product = "aws-account" if name.startswith("aws-account") else "ec2-app"
    return summarize(plan(name), load_product(product).plan, product, SHA)


def policies(
    name: str | dict[str, Any], environment: str = "staging", **flags: bool
) -> PolicyResult:
    document = raw(name) if isinstance(name, str) else name
    product = (
        "aws-account" if "organizations" in json.dumps(document["configuration"]) else "ec2-app"
    )
    return evaluate(
        TerraformPlan.from_json(document),
        load_product(product).plan,
        GUARDRAILS.policy(product, environment),
        environment,
        **flags,
    )


def failed(result: PolicyResult) -> dict[str, list[str]]:
    return {check.check: check.reasons for check in result.checks if not check.passed}


def resource_change(document: dict[str, Any], address: str) -> dict[str, Any]:
    changes: list[dict[str, Any]] = document["resource_changes"]
    (change,) = [c for c in changes if c["address"] == address]
    return change


def attribute(result: PlanSummary, address: str, path: str) -> tuple[Any, Any]:
    (resource,) = [r for r in result.resources if r.address == address]
    (shown,) = [a for a in resource.attributes if a.path == path]
    return shown.before, shown.after


# ------------------------------------------------------------------ summary


def test_plan_sha256_is_the_binary_plan_files_digest() -> None:
    assert plan_sha256(b"PK\x03\x04 plan") == hashlib.sha256(b"PK\x03\x04 plan").hexdigest()
    assert summary("ec2-app-create").plan_sha256 == SHA
    with pytest.raises(ValidationError):
        summarize(plan("ec2-app-create"), ProductPlanSettings(), "ec2-app", "not-a-digest")


def test_a_create_lists_every_managed_resource_to_add() -> None:
    document = raw("ec2-app-create")
    creates = {
        c["address"]
        for c in document["resource_changes"]
        if c["mode"] == "managed" and c["change"]["actions"] == ["create"]
    }
    result = summary("ec2-app-create")
    assert len(creates) == 37
    assert result.counts.model_dump() == {"add": 37, "change": 0, "replace": 0, "destroy": 0}
    assert {r.address for r in result.resources} == creates
    assert "data.aws_instances.this" not in {r.address for r in result.resources}
    assert result.terraform_version == "1.11.4"


def test_a_create_shows_the_attributes_the_product_declares() -> None:
    result = summary("ec2-app-create")
    template = "aws_launch_template.this"
    assert attribute(result, template, "instance_type") == (None, "t3.small")
    assert attribute(result, template, "metadata_options.http_tokens") == (None, "required")
    assert attribute(result, template, "block_device_mappings.ebs.encrypted") == (None, "true")
    assert attribute(result, "aws_autoscaling_group.this", "desired_capacity") == (None, 2)
    assert attribute(result, "aws_lb.this[0]", "internal") == (None, False)
    # Types the product does not list show no attributes.
    (role,) = [r for r in result.resources if r.address == "aws_iam_role.instance"]
    assert role.attributes == []


def test_a_create_names_its_public_exposure_and_no_imds_or_data_finding() -> None:
    result = summary("ec2-app-create")
    exposure = {(f.address, f.detail) for f in result.findings}
    assert exposure == {
        ("aws_vpc_security_group_ingress_rule.alb_http[0]", "ingress tcp 80 from 0.0.0.0/0"),
        ("aws_lb.this[0]", "internet-facing application load balancer"),
    }
    assert {f.kind for f in result.findings} == {FindingKind.PUBLIC_EXPOSURE}


def test_an_update_shows_instance_type_and_count_before_and_after() -> None:
    result = summary("ec2-app-update")
    assert result.counts.model_dump() == {"add": 0, "change": 4, "replace": 0, "destroy": 0}
    assert attribute(result, "aws_launch_template.this", "instance_type") == (
        "t3.small",
        "m6i.large",
    )
    assert attribute(result, "aws_autoscaling_group.this", "desired_capacity") == (2, 3)
    assert attribute(result, "aws_autoscaling_group.this", "max_size") == (4, 6)
    unchanged = {r.address for r in result.resources}
    assert "aws_vpc.this" not in unchanged  # a no-op is not a change


def test_a_replacement_is_counted_once_with_the_attribute_that_forces_it() -> None:
    result = summary("ec2-app-update-port")
    assert result.counts.replace == 1
    assert result.counts.add == 0
    assert result.counts.destroy == 0
    (replaced,) = [r for r in result.resources if r.action is ChangeAction.REPLACE]
    assert replaced.address == "aws_lb_target_group.this[0]"
    assert replaced.replace_because == ["port"]
    assert attribute(result, replaced.address, "port") == (8080, 8443)


def test_a_destroy_lists_what_goes_with_its_values_before() -> None:
    result = summary("ec2-app-destroy")
    assert result.counts.model_dump() == {"add": 0, "change": 0, "replace": 0, "destroy": 37}
    assert attribute(result, "aws_launch_template.this", "instance_type") == ("m6i.large", None)
    # ec2-app holds no data: its destroy raises no deletion finding.
    assert not [f for f in result.findings if f.kind is FindingKind.DATA_DELETION]
    # What is gone exposes nothing any more.
    assert not [f for f in result.findings if f.kind is FindingKind.PUBLIC_EXPOSURE]


def test_closing_an_account_is_a_data_bearing_deletion() -> None:
    result = summary("aws-account-destroy")
    assert result.counts.destroy == 1
    assert [(f.kind, f.address) for f in result.findings] == [
        (FindingKind.DATA_DELETION, "aws_organizations_account.this")
    ]
    assert attribute(result, "aws_organizations_account.this", "close_on_deletion") == (
        True,
        None,
    )


def test_an_account_update_shows_the_changed_tag() -> None:
    result = summary("aws-account-update")
    assert result.counts.change == 1
    assert attribute(result, "aws_organizations_account.this", "tags.Approvers") == (
        "beth.anglin",
        "beth.anglin fred.luddy",
    )


def test_an_account_create_shows_values_known_only_after_apply() -> None:
    result = summary("aws-account-create")
    (account,) = result.resources
    assert account.action is ChangeAction.CREATE
    shown = {a.path: a for a in account.attributes}
    assert shown["name"].after == "checkout-staging"
    assert shown["email"].after == "aws+checkout-staging@acme.example"
    assert shown["parent_id"].after is not None


def test_a_summary_of_an_imdsv1_launch_template_says_so() -> None:
    document = raw("ec2-app-create")
    after = resource_change(document, "aws_launch_template.this")["change"]["after"]
    after["metadata_options"][0]["http_tokens"] = "optional"
    result = summarize(
        TerraformPlan.from_json(document), load_product("ec2-app").plan, "ec2-app", SHA
    )
    assert [f.detail for f in result.findings if f.kind is FindingKind.IMDS] == [
        "IMDSv1 allowed (metadata_options.http_tokens = optional)"
    ]


def test_a_document_that_is_not_a_plan_is_refused() -> None:
    with pytest.raises(PlanFormatError):
        TerraformPlan.from_json({"values": {}})
    document = raw("aws-account-update")
    document["resource_changes"][0]["change"]["actions"] = ["forget"]
    with pytest.raises(PlanFormatError, match="forget"):
        TerraformPlan.from_json(document)


# ------------------------------------------------------------------ product data


def test_every_product_declares_its_plan_review_as_valid_data() -> None:
    for product in ("ec2-app", "aws-account"):
        settings = load_product(product).plan
        assert settings.policies, product
        assert settings.show, product
    assert Check.ALLOWED_INSTANCE_TYPES in load_product("ec2-app").plan.policies


def test_a_plan_section_with_an_unknown_check_or_field_does_not_validate() -> None:
    with pytest.raises(ValidationError, match="policies"):
        ProductPlanSettings.model_validate({"policies": ["no_cats"]})
    with pytest.raises(ValidationError, match="hide"):
        ProductPlanSettings.model_validate({"hide": {}})


# ------------------------------------------------------------------ policies


def test_the_ec2_app_create_passes_every_staging_check() -> None:
    result = policies("ec2-app-create")
    assert result.passed, result.reasons
    assert [c.check for c in result.checks] == [
        c.value for c in load_product("ec2-app").plan.policies
    ]


def test_an_instance_type_outside_the_environments_list_fails_with_the_resource() -> None:
    result = policies("ec2-app-update", "staging")
    assert failed(result) == {
        "allowed_instance_types": [
            "aws_launch_template.this uses instance type m6i.large, not allowed here "
            "(allowed: t3.small, t3.medium)"
        ]
    }
    assert policies("ec2-app-update", "prod").checks[-1].passed


def test_internet_ingress_on_a_port_the_environment_does_not_allow_fails() -> None:
    reasons = failed(policies("ec2-app-create", "prod"))
    assert reasons["no_public_ingress"] == [
        "aws_vpc_security_group_ingress_rule.alb_http[0] admits tcp 80 from 0.0.0.0/0 "
        "(internet ports allowed: 443)"
    ]


def test_ssh_from_the_internet_and_imdsv1_fail_whatever_ports_are_allowed() -> None:
    document = raw("ec2-app-create")
    rule = resource_change(document, "aws_vpc_security_group_ingress_rule.alb_http[0]")
    rule["change"]["after"].update(from_port=0, to_port=1024)
    template = resource_change(document, "aws_launch_template.this")["change"]["after"]
    template["metadata_options"] = []
    reasons = failed(policies(document, "dev"))
    assert reasons["no_public_ssh"] == [
        "aws_vpc_security_group_ingress_rule.alb_http[0] admits SSH from the internet "
        "(tcp 0-1024 from 0.0.0.0/0)"
    ]
    assert reasons["imdsv2_required"] == [
        "aws_launch_template.this allows IMDSv1 (metadata_options.http_tokens = optional, "
        "must be required)"
    ]
    assert "no_public_ingress" in reasons


def test_a_public_ip_on_launch_fails() -> None:
    document = raw("ec2-app-create")
    subnet = resource_change(document, "aws_subnet.public[0]")["change"]["after"]
    subnet["map_public_ip_on_launch"] = True
    template = resource_change(document, "aws_launch_template.this")["change"]["after"]
    template["network_interfaces"] = [{"associate_public_ip_address": "true"}]
    assert failed(policies(document))["no_public_ip"] == [
        "aws_launch_template.this gives instances a public IP address "
        "(network_interfaces.associate_public_ip_address = true)",
        "aws_subnet.public[0] gives instances a public IP address (map_public_ip_on_launch = true)",
    ]


def test_a_missing_mandatory_tag_is_named_per_resource() -> None:
    document = raw("aws-account-create")
    tags = resource_change(document, "aws_organizations_account.this")["change"]["after"]
    del tags["tags_all"]["Approvers"]
    assert failed(policies(document, "prod")) == {
        "mandatory_tags": ["aws_organizations_account.this lacks tag(s) Approvers"]
    }
    strict = GUARDRAILS.model_copy(deep=True)
    strict.plan_policies["ec2-app"].environments["staging"] = EnvironmentPlanPolicy(
        allowed_instance_types=["t3.small"],
        public_ingress_ports=[80],
        required_tags=["DataClassification"],
    )
    result = evaluate(
        plan("ec2-app-create"),
        load_product("ec2-app").plan,
        strict.policy("ec2-app", "staging"),
        "staging",
    )
    missing = failed(result)["mandatory_tags"]
    assert "aws_vpc.this lacks tag(s) DataClassification" in missing
    # The Auto Scaling group tags through its own blocks, not tags_all: not judged here.
    assert not [r for r in missing if r.startswith("aws_autoscaling_group")]


def test_closing_an_account_needs_the_explicit_flag() -> None:
    assert failed(policies("aws-account-destroy")) == {
        "stateful_destroy": [
            "aws_organizations_account.this (aws_organizations_account) would be deleted, "
            "losing its data; the request must confirm the deletion explicitly"
        ]
    }
    assert policies("aws-account-destroy", destroy_confirmed=True).passed
    # The account product runs only its own checks.
    assert [c.check for c in policies("aws-account-create").checks] == [
        "mandatory_tags",
        "stateful_destroy",
    ]


def test_an_environment_without_limits_gets_the_strict_defaults() -> None:
    policy = GUARDRAILS.policy("ec2-app", "sandbox")
    assert policy == EnvironmentPlanPolicy()
    result = evaluate(plan("ec2-app-create"), load_product("ec2-app").plan, policy, "sandbox")
    assert list(failed(result)) == ["no_public_ingress"]


# ------------------------------------------------------------------ cost


def _per_instance(region: str, instance_type: str, gb: int = 20) -> Decimal:
    prices = load_prices(region)
    return (
        prices.ec2_hourly[instance_type] * prices.hours_per_month + gb * prices.ebs.gb_month["gp3"]
    )


def _cents(value: Decimal) -> Decimal:
    # Half up, as on an invoice (Decimal's default would round 16.425 to 16.42).
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_the_create_estimate_prices_instances_volumes_alb_nat_ip_and_alarms() -> None:
    prices = load_prices("us-east-1")
    result = estimate(plan("ec2-app-create"), prices)
    lines = {line.address: line for line in result.lines}
    assert set(lines) == {
        "aws_autoscaling_group.this",
        "aws_lb.this[0]",
        "aws_nat_gateway.this[0]",
        "aws_eip.nat[0]",
        "aws_cloudwatch_metric_alarm.cpu_high",
        "aws_cloudwatch_metric_alarm.unhealthy_hosts[0]",
    }
    group = lines["aws_autoscaling_group.this"]
    assert group.description == "2 x t3.small (730 h) + 2 x 20 GB gp3"
    assert group.monthly_after == _cents(2 * _per_instance("us-east-1", "t3.small"))
    assert lines["aws_lb.this[0]"].monthly_after == _cents(prices.alb_hourly * 730)
    assert lines["aws_nat_gateway.this[0]"].monthly_after == _cents(prices.nat_gateway_hourly * 730)
    # Figures add up on the ticket: the total is the sum of the rounded lines.
    assert result.monthly_after == sum(line.monthly_after for line in result.lines)
    assert result.monthly_before == 0
    assert result.monthly_delta == result.monthly_after
    assert result.prices_as_of == prices.as_of.isoformat()
    assert "not included: NAT gateway data processed (per GB)" in result.not_priced
    assert "not included: load balancer capacity units (LCU) by traffic" in result.not_priced


def test_with_the_shipped_us_east_1_prices_the_create_is_about_87_dollars() -> None:
    # 2 x t3.small 30.37 + 2 x 20 GB gp3 3.20, ALB 16.43, NAT 32.85, IPv4 3.65, alarms 0.20
    assert estimate(plan("ec2-app-create"), load_prices("us-east-1")).monthly_after == Decimal(
        "86.70"
    )


def test_the_update_estimate_has_before_after_and_delta() -> None:
    result = estimate(plan("ec2-app-update"), load_prices("us-east-1"))
    (group,) = [line for line in result.lines if line.type == "aws_autoscaling_group"]
    assert group.monthly_before == _cents(2 * _per_instance("us-east-1", "t3.small"))
    assert group.monthly_after == _cents(3 * _per_instance("us-east-1", "m6i.large"))
    assert result.monthly_delta == result.monthly_after - result.monthly_before
    assert result.monthly_delta == group.monthly_after - group.monthly_before


def test_the_destroy_estimate_falls_to_zero() -> None:
    before = estimate(plan("ec2-app-update"), load_prices("us-east-1")).monthly_after
    result = estimate(plan("ec2-app-destroy"), load_prices("us-east-1"))
    assert result.monthly_after == 0
    assert result.monthly_before == before
    assert all(line.description.startswith("removed (was ") for line in result.lines)


def test_each_region_is_priced_from_its_own_table() -> None:
    us = estimate(plan("ec2-app-create"), load_prices("us-east-1"))
    frankfurt = estimate(plan("ec2-app-create"), load_prices("eu-central-1"))
    assert frankfurt.region == "eu-central-1"
    assert frankfurt.monthly_after > us.monthly_after


def test_gp3_performance_above_the_baseline_is_priced() -> None:
    document = raw("ec2-app-create")
    template = resource_change(document, "aws_launch_template.this")["change"]["after"]
    template["block_device_mappings"][0]["ebs"][0].update(iops=6000, throughput=250)
    prices = load_prices("us-east-1")
    base = estimate(plan("ec2-app-create"), prices).monthly_after
    faster = estimate(TerraformPlan.from_json(document), prices).monthly_after
    extra = 3000 * prices.ebs.gp3_iops_month + 125 * prices.ebs.gp3_throughput_mibps_month
    assert faster - base == _cents(2 * extra)


def test_an_instance_type_without_a_price_is_said_not_guessed() -> None:
    document = raw("ec2-app-create")
    template = resource_change(document, "aws_launch_template.this")["change"]["after"]
    template["instance_type"] = "x2iedn.32xlarge"
    result = estimate(TerraformPlan.from_json(document), load_prices("us-east-1"))
    assert (
        "aws_autoscaling_group.this: instance type x2iedn.32xlarge has no price in the "
        "us-east-1 table" in result.not_priced
    )


def test_an_account_costs_nothing_itself_and_says_what_is_not_included() -> None:
    result = estimate(plan("aws-account-create"), load_prices("us-east-1"))
    assert result.lines == []
    assert result.monthly_after == 0
    assert result.not_priced == ["not included: whatever runs in the new account (billed to it)"]


def test_every_supported_region_ships_a_dated_table_with_the_allowed_types() -> None:
    assert set(supported_regions()) >= {
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
    }
    intake = json.loads((ROOT / "config/intake.example.json").read_text())
    allowed = {
        kind
        for source in (intake["policies"], GUARDRAILS.model_dump()["plan_policies"])
        for product in source.values()
        for environment in product["environments"].values()
        for kind in environment.get("allowed_instance_types") or []
    }
    for region in supported_regions():
        table = load_prices(region)
        assert table.region == region == (PRICES_DIR / f"{region}.json").stem
        assert allowed <= set(table.ec2_hourly), region
        assert table.source


def test_a_region_without_a_table_is_refused() -> None:
    with pytest.raises(UnsupportedRegionError):
        load_prices("ap-south-2")
    with pytest.raises(UnsupportedRegionError):
        load_prices("../us-east-1")


# ------------------------------------------------------------------ budget


def _estimate(name: str = "ec2-app-create") -> Any:
    return estimate(plan(name), load_prices("us-east-1"))


def test_within_budget_passes_with_the_figures() -> None:
    result = check_budget(GUARDRAILS, "staging", "CC-1042", _estimate())
    assert result.within
    assert result.ceiling == Decimal("600")
    assert result.action is None


def test_over_budget_needs_approval_with_the_figures_in_the_reason() -> None:
    result = check_budget(GUARDRAILS, "staging", "CC-7", _estimate(), committed=Decimal("350"))
    assert not result.within
    assert result.action is BudgetAction.REQUIRE_APPROVAL
    assert result.reason == (
        "estimated 436.70 USD/month for cost center CC-7 in staging (350.00 running + "
        f"86.70 this request, prices of {load_prices('us-east-1').as_of.isoformat()}) "
        "is over its ceiling of 400.00 USD/month"
    )


def test_over_budget_in_dev_is_rejected() -> None:
    result = check_budget(GUARDRAILS, "dev", "CC-1042", _estimate(), committed=Decimal("100"))
    assert result.action is BudgetAction.REJECT


def test_an_environment_without_a_budget_is_not_limited() -> None:
    result = check_budget(GUARDRAILS, "sandbox", "CC-1042", _estimate(), Decimal("1e6"))
    assert result.within
    assert result.ceiling is None


def test_a_change_that_lowers_the_cost_is_never_held() -> None:
    destroy = _estimate("ec2-app-destroy")
    assert check_budget(GUARDRAILS, "dev", "CC-1042", destroy, Decimal("1000")).within


def test_the_example_guardrails_validate_and_name_only_real_products() -> None:
    assert set(GUARDRAILS.plan_policies) <= {"ec2-app", "aws-account"}
    with pytest.raises(ValidationError, match="action"):
        PlanGuardrails.model_validate(
            {"budgets": {"dev": {"*": {"monthly_usd": 1, "action": "shrug"}}}}
        )


# ------------------------------------------------------------------ verdict


def review_recorded(name: str, **context: Any) -> PlanReview:
    """The provisioner's review of the recorded plan ``name`` (staging, unless ``context``
    says otherwise)."""
    product = "aws-account" if name.startswith("aws-account") else "ec2-app"
    facts = {"product": product, "environment": "staging", "cost_center": "CC-1042", **context}
    return review_plan(
        raw(name),
        SHA,
        load_product(product).plan,
        GUARDRAILS,
        load_prices("us-east-1"),
        ReviewContext(**facts),
    )


def test_a_plan_within_policy_and_budget_is_applied_at_once() -> None:
    review = review_recorded("ec2-app-create")
    assert review.verdict is Verdict.APPLY
    assert review.reasons == []
    assert review.summary.plan_sha256 == SHA
    assert review.cost.monthly_after == Decimal("86.70")


def test_a_failed_plan_policy_refuses_with_its_reasons() -> None:
    review = review_recorded("ec2-app-update")
    assert review.verdict is Verdict.REFUSE
    assert review.reasons == review.policy.reasons
    assert "m6i.large" in review.reasons[0]


def test_an_over_budget_plan_is_held_or_refused_as_the_environment_says() -> None:
    held = review_recorded("ec2-app-create", cost_center="CC-7", committed=Decimal("350"))
    assert held.verdict is Verdict.HOLD
    assert held.reasons == [held.budget.reason]
    refused = review_recorded("ec2-app-create", environment="dev", committed=Decimal("100"))
    # dev also refuses the update's instance type; here only the budget is at fault.
    assert refused.verdict is Verdict.REFUSE
    assert refused.reasons[-1] == refused.budget.reason


def test_a_request_that_needs_approval_is_held_with_its_plan() -> None:
    review = review_recorded("ec2-app-create", approval_required=True)
    assert review.verdict is Verdict.HOLD
    assert review.reasons == ["staging requests need an approval of their plan"]


def test_closing_an_account_is_refused_unless_the_decommission_confirms_it() -> None:
    assert review_recorded("aws-account-destroy").verdict is Verdict.REFUSE
    assert review_recorded("aws-account-destroy", destroy_confirmed=True).verdict is Verdict.APPLY
