"""Plan policies: checks over the planned resources, each failure with its reason.

The product declares which checks apply (``product.json`` → ``plan.policies``); the
provisioner's configuration gives their limits per environment. A check runs over what
Terraform will build — module defaults and computed settings included — so it catches
what the request's variables alone do not show.
"""

from __future__ import annotations

from collections.abc import Callable

from provisioner.domain.plan import facts
from provisioner.domain.plan.settings import Check, ProductPlanSettings
from provisioner.domain.plan.terraform_plan import PlannedResource, TerraformPlan
from provisioner.settings import EnvironmentPlanPolicy
from selfservice_contracts.plan import ChangeAction, CheckResult, PolicyResult

__all__ = ["PlanContext", "evaluate"]


class PlanContext:
    """What the checks look at: the plan, the limits, and the request's explicit flags."""

    def __init__(
        self,
        plan: TerraformPlan,
        policy: EnvironmentPlanPolicy,
        stateful: frozenset[str],
        *,
        destroy_confirmed: bool = False,
    ) -> None:
        self.plan = plan
        self.policy = policy
        self.stateful = stateful
        self.destroy_confirmed = destroy_confirmed

    def built(self) -> list[PlannedResource]:
        """Resources the apply creates, updates or replaces (what exists afterwards, changed)."""
        return [
            r
            for r in self.plan.changed()
            if r.action in (ChangeAction.CREATE, ChangeAction.UPDATE, ChangeAction.REPLACE)
            and r.after is not None
        ]


def _no_public_ip(context: PlanContext) -> list[str]:
    return [
        f"{r.address} gives instances a public IP address ({why})"
        for r in context.built()
        if r.after is not None and (why := facts.public_ip(r.after, r.type)) is not None
    ]


def _no_public_ingress(context: PlanContext) -> list[str]:
    allowed = set(context.policy.public_ingress_ports)
    reasons = []
    for r in context.built():
        for ingress in facts.public_ingress(r.after or {}, r.type):
            single = ingress.protocol in ("tcp", "6") and ingress.from_port == ingress.to_port
            if single and ingress.from_port in allowed:
                continue
            permitted = ", ".join(str(p) for p in sorted(allowed)) or "none"
            reasons.append(
                f"{r.address} admits {ingress.describe()} (internet ports allowed: {permitted})"
            )
    return reasons


def _no_public_ssh(context: PlanContext) -> list[str]:
    return [
        f"{r.address} admits SSH from the internet ({ingress.describe()})"
        for r in context.built()
        for ingress in facts.public_ingress(r.after or {}, r.type)
        if ingress.covers(22)
    ]


def _imdsv2_required(context: PlanContext) -> list[str]:
    return [
        f"{r.address} allows IMDSv1 (metadata_options.http_tokens = {tokens}, must be required)"
        for r in context.built()
        if (tokens := facts.http_tokens(r.after or {}, r.type)) is not None and tokens != "required"
    ]


def _mandatory_tags(context: PlanContext) -> list[str]:
    required = context.policy.required_tags
    reasons = []
    for r in context.built():
        carried = facts.tags(r)
        if carried is None:
            continue
        missing = [key for key in required if not carried.get(key)]
        if missing:
            reasons.append(f"{r.address} lacks tag(s) {', '.join(missing)}")
    return reasons


def _stateful_destroy(context: PlanContext) -> list[str]:
    if context.destroy_confirmed:
        return []
    return [
        f"{r.address} ({r.type}) would be "
        f"{'deleted' if r.action is ChangeAction.DELETE else 'replaced'}, losing its data; "
        "the request must confirm the deletion explicitly"
        for r in context.plan.changed()
        if r.type in context.stateful and r.action in (ChangeAction.DELETE, ChangeAction.REPLACE)
    ]


def _allowed_instance_types(context: PlanContext) -> list[str]:
    allowed = context.policy.allowed_instance_types
    if allowed is None:
        return []
    return [
        f"{r.address} uses instance type {kind}, not allowed here (allowed: {', '.join(allowed)})"
        for r in context.built()
        for kind in facts.instance_types(r.after or {}, r.type)
        if kind not in allowed
    ]


_CHECKS: dict[Check, Callable[[PlanContext], list[str]]] = {
    Check.NO_PUBLIC_IP: _no_public_ip,
    Check.NO_PUBLIC_INGRESS: _no_public_ingress,
    Check.NO_PUBLIC_SSH: _no_public_ssh,
    Check.IMDSV2_REQUIRED: _imdsv2_required,
    Check.MANDATORY_TAGS: _mandatory_tags,
    Check.STATEFUL_DESTROY: _stateful_destroy,
    Check.ALLOWED_INSTANCE_TYPES: _allowed_instance_types,
}


def evaluate(
    plan: TerraformPlan,
    settings: ProductPlanSettings,
    policy: EnvironmentPlanPolicy,
    environment: str,
    *,
    destroy_confirmed: bool = False,
) -> PolicyResult:
    """Run the product's checks over ``plan`` with the environment's limits.

    ``destroy_confirmed``: the request explicitly asks to delete data-bearing resources
    (a decommission, or a flag the requester set).
    """
    context = PlanContext(
        plan,
        policy,
        facts.STATEFUL_TYPES | frozenset(settings.stateful),
        destroy_confirmed=destroy_confirmed,
    )
    results = []
    for check in settings.policies:
        reasons = _CHECKS[check](context)
        results.append(CheckResult(check=check.value, passed=not reasons, reasons=reasons))
    return PolicyResult(environment=environment, checks=results)
