"""One verdict on a saved plan: refuse it, hold it for approval, or apply it.

Everything the ticket is told about a plan comes from here: the summary, the cost, the
policy and budget results, and why it is refused or held. A failed plan policy and a
budget whose action is ``reject`` refuse the request before anything is applied; an
over-budget ``require_approval`` — or an approval the request needs anyway — holds the
plan until its hash is approved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from provisioner.domain.plan.budget import check_budget
from provisioner.domain.plan.cost import estimate
from provisioner.domain.plan.policies import evaluate
from provisioner.domain.plan.prices import PriceTable
from provisioner.domain.plan.settings import ProductPlanSettings
from provisioner.domain.plan.summary import summarize
from provisioner.domain.plan.terraform_plan import TerraformPlan
from provisioner.settings import PlanGuardrails
from selfservice_contracts.plan import (
    BudgetAction,
    BudgetResult,
    CostEstimate,
    PlanSummary,
    PlanVerdict,
    PolicyResult,
)

__all__ = ["PlanReview", "ReviewContext", "Verdict", "review_plan"]


Verdict = PlanVerdict
"""What happens to the saved plan (the contract's verdict)."""


@dataclass(frozen=True)
class ReviewContext:
    """The request's side of a review."""

    product: str
    environment: str
    cost_center: str | None
    approval_required: bool = False
    """The request needs an approval whatever its plan (intake's guardrail)."""
    destroy_confirmed: bool = False
    committed: Decimal = Decimal("0.00")
    """What the cost center already runs in the environment, per month."""


@dataclass(frozen=True)
class PlanReview:
    """The plan as the ticket is told of it, and the verdict with its reasons."""

    summary: PlanSummary
    cost: CostEstimate
    policy: PolicyResult
    budget: BudgetResult
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)


def review_plan(  # noqa: PLR0917 - the facts of one review
    document: dict[str, Any],
    plan_sha256: str,
    settings: ProductPlanSettings,
    guardrails: PlanGuardrails,
    prices: PriceTable,
    context: ReviewContext,
) -> PlanReview:
    """Summarize, check and price ``document`` (``terraform show -json``); decide."""
    plan = TerraformPlan.from_json(document)
    summary = summarize(plan, settings, context.product, plan_sha256)
    cost = estimate(plan, prices)
    policy = evaluate(
        plan,
        settings,
        guardrails.policy(context.product, context.environment),
        context.environment,
        destroy_confirmed=context.destroy_confirmed,
    )
    budget = check_budget(
        guardrails, context.environment, context.cost_center, cost, context.committed
    )
    refusals = policy.reasons + (
        [budget.reason] if budget.action is BudgetAction.REJECT and budget.reason else []
    )
    if refusals:
        return PlanReview(summary, cost, policy, budget, Verdict.REFUSE, refusals)
    holds = []
    if context.approval_required:
        holds.append(f"{context.environment} requests need an approval of their plan")
    if budget.action is BudgetAction.REQUIRE_APPROVAL and budget.reason:
        holds.append(budget.reason)
    verdict = Verdict.HOLD if holds else Verdict.APPLY
    return PlanReview(summary, cost, policy, budget, verdict, holds)
