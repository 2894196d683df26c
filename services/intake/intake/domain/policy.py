"""Policy guardrails, as data: what each product may be in each environment.

Each rule applies when its variable is present; every violation becomes one reason in
plain words, naming what is allowed, so the requester can fix the ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from intake.settings import EnvironmentPolicy, ProductPolicy
from selfservice_contracts.events import RejectionReason

__all__ = ["PolicyDecision", "evaluate_policy"]


@dataclass(frozen=True)
class PolicyDecision:
    """Violations (empty when allowed) and whether approval is required, with the reason."""

    reasons: list[RejectionReason]
    approval_required: bool
    approval_reason: str


def _violation(field: str, message: str) -> RejectionReason:
    return RejectionReason(code="policy_violation", field=field, message=message)


def _listed(values: list[str]) -> str:
    return ", ".join(values) if values else "none"


def _check(rules: EnvironmentPolicy, env: str, v: dict[str, Any]) -> list[RejectionReason]:
    reasons = []
    instance_type = v.get("instance_type")
    allowed_types = rules.allowed_instance_types
    if (
        instance_type is not None
        and allowed_types is not None
        and instance_type not in allowed_types
    ):
        reasons.append(
            _violation(
                "instance_type",
                f"instance type {instance_type} is not allowed in {env} "
                f"(allowed: {_listed(allowed_types)})",
            )
        )
    capacity = v.get("desired_capacity")
    bounds = rules.desired_capacity
    if (
        isinstance(capacity, int)
        and bounds is not None
        and not bounds.min <= capacity <= bounds.max
    ):
        reasons.append(
            _violation(
                "desired_capacity",
                f"desired capacity {capacity} is outside {bounds.min} to {bounds.max} for {env}",
            )
        )
    region = v.get("region")
    if (
        region is not None
        and rules.allowed_regions is not None
        and region not in rules.allowed_regions
    ):
        reasons.append(
            _violation(
                "region",
                f"region {region} is not allowed in {env} "
                f"(allowed: {_listed(rules.allowed_regions)})",
            )
        )
    if v.get("expose_alb") is True and not rules.expose_alb_allowed:
        reasons.append(_violation("expose_alb", f"a public load balancer is not allowed in {env}"))
    cost_center = v.get("cost_center")
    pattern = rules.cost_center_pattern
    if isinstance(cost_center, str) and pattern and not re.fullmatch(pattern, cost_center):
        reasons.append(
            _violation(
                "cost_center",
                f"cost center {cost_center!r} is not a valid cost center "
                f"(expected format {pattern})",
            )
        )
    email = v.get("account_email")
    domains = rules.account_email_domains
    if isinstance(email, str) and domains is not None:
        domain = email.rpartition("@")[2].lower()
        if domain not in [d.lower() for d in domains]:
            reasons.append(
                _violation(
                    "account_email",
                    f"account e-mail must be an address in {_listed(domains)}",
                )
            )
    unit = v.get("organizational_unit")
    units = rules.allowed_organizational_units
    if unit is not None and units is not None and unit not in units:
        reasons.append(
            _violation(
                "organizational_unit",
                f"organizational unit {unit} is not allowed for {env} (allowed: {_listed(units)})",
            )
        )
    approvers = v.get("approvers")
    if rules.min_approvers and (
        not isinstance(approvers, list) or len(approvers) < rules.min_approvers
    ):
        reasons.append(
            _violation("approvers", f"{env} needs at least {rules.min_approvers} approver(s)")
        )
    return reasons


def evaluate_policy(
    product: str, policy: ProductPolicy | None, variables: dict[str, Any]
) -> PolicyDecision:
    """Check a product's variables against its policy for the requested environment."""
    environment = str(variables.get("environment", ""))
    if policy is None:
        return PolicyDecision(
            [
                _violation(
                    "environment", f"no policy is configured for {product}; it is not offered"
                )
            ],
            approval_required=False,
            approval_reason="",
        )
    rules = policy.environments.get(environment)
    if rules is None:
        return PolicyDecision(
            [
                _violation(
                    "environment",
                    f"{product} is not offered in {environment or 'an unspecified environment'} "
                    f"(offered: {_listed(sorted(policy.environments))})",
                )
            ],
            approval_required=False,
            approval_reason="",
        )
    reason = (
        f"{product} requests for {environment} need approval" if rules.approval_required else ""
    )
    return PolicyDecision(_check(rules, environment, variables), rules.approval_required, reason)
