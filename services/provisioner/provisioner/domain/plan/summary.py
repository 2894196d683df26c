"""The plan as a reviewer reads it: what changes, the attributes that matter, what to notice."""

from __future__ import annotations

from typing import Any

from provisioner.domain.plan import facts
from provisioner.domain.plan.settings import ProductPlanSettings
from provisioner.domain.plan.terraform_plan import PlannedResource, TerraformPlan, lookup
from selfservice_contracts.plan import (
    AttributeChange,
    ChangeAction,
    Finding,
    FindingKind,
    PlanCounts,
    PlanSummary,
    ResourceChange,
)

__all__ = ["summarize"]


def _collapse(values: list[Any]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _attributes(resource: PlannedResource, paths: list[str]) -> list[AttributeChange]:
    shown = []
    for path in paths:
        before = _collapse(lookup(resource.before, path)) if resource.exists_before else None
        after = _collapse(lookup(resource.after, path)) if resource.exists_after else None
        unknown = resource.exists_after and after is None and resource.unknown(path)
        if before is None and after is None and not unknown:
            continue
        shown.append(
            AttributeChange(path=path, before=before, after=after, known_after_apply=unknown)
        )
    return shown


def _findings(resource: PlannedResource, stateful: frozenset[str]) -> list[Finding]:
    found = []
    kind, address = resource.type, resource.address
    if resource.action in (ChangeAction.DELETE, ChangeAction.REPLACE) and kind in stateful:
        verb = "deleted" if resource.action is ChangeAction.DELETE else "replaced (deleted first)"
        found.append(
            Finding(kind=FindingKind.DATA_DELETION, address=address, detail=f"{kind} is {verb}")
        )
    if not resource.exists_after or resource.after is None:
        return found
    after = resource.after
    for ingress in facts.public_ingress(after, kind):
        found.append(
            Finding(
                kind=FindingKind.PUBLIC_EXPOSURE,
                address=address,
                detail=f"ingress {ingress.describe()}",
            )
        )
    if (why := facts.public_ip(after, kind)) is not None:
        found.append(
            Finding(kind=FindingKind.PUBLIC_EXPOSURE, address=address, detail=f"public IP: {why}")
        )
    if facts.internet_facing(after, kind):
        lb_type = after.get("load_balancer_type") or "load"
        found.append(
            Finding(
                kind=FindingKind.PUBLIC_EXPOSURE,
                address=address,
                detail=f"internet-facing {lb_type} load balancer",
            )
        )
    tokens = facts.http_tokens(after, kind)
    if tokens is not None and tokens != "required":
        found.append(
            Finding(
                kind=FindingKind.IMDS,
                address=address,
                detail=f"IMDSv1 allowed (metadata_options.http_tokens = {tokens})",
            )
        )
    return found


def summarize(
    plan: TerraformPlan, settings: ProductPlanSettings, product: str, sha256: str
) -> PlanSummary:
    """The summary of ``plan`` for ``product``, bound to the plan file's ``sha256``."""
    stateful = facts.STATEFUL_TYPES | frozenset(settings.stateful)
    counts = dict.fromkeys(ChangeAction, 0)
    resources, findings = [], []
    for resource in plan.changed():
        if resource.action is None:  # changed() leaves no-ops out; this narrows the type
            continue
        counts[resource.action] += 1
        resources.append(
            ResourceChange(
                address=resource.address,
                type=resource.type,
                name=resource.name,
                action=resource.action,
                attributes=_attributes(resource, settings.show.get(resource.type, [])),
                replace_because=[
                    ".".join(str(step) for step in path) for path in resource.replace_paths
                ]
                if resource.action is ChangeAction.REPLACE
                else [],
            )
        )
        findings += _findings(resource, stateful)
    return PlanSummary(
        product=product,
        plan_sha256=sha256,
        terraform_version=plan.terraform_version,
        # Disjoint, unlike Terraform's own tally, which counts a replacement in "add"
        # and in "destroy" as well.
        counts=PlanCounts(
            add=counts[ChangeAction.CREATE],
            change=counts[ChangeAction.UPDATE],
            replace=counts[ChangeAction.REPLACE],
            destroy=counts[ChangeAction.DELETE],
        ),
        resources=resources,
        findings=findings,
    )
