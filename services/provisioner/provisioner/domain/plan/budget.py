"""The budget guardrail: a monthly ceiling per environment and cost center.

What is compared is the cost center's monthly run rate in the environment after the
apply: what its other instances already cost (``committed``, which the caller sums from
the ledger's recorded estimates) plus this request's ``monthly_after``. The ceiling is a
run rate, not the month's bill: usage-based charges the estimate leaves out are left out
here too, and say so on the ticket.
"""

from __future__ import annotations

from decimal import Decimal

from provisioner.settings import PlanGuardrails
from selfservice_contracts.plan import BudgetResult, CostEstimate

__all__ = ["check_budget"]


def check_budget(
    guardrails: PlanGuardrails,
    environment: str,
    cost_center: str | None,
    estimate: CostEstimate,
    committed: Decimal = Decimal("0.00"),
) -> BudgetResult:
    """Whether the request keeps the cost center within its ceiling; the figures if not."""
    rule = guardrails.budget(environment, cost_center)
    requested = estimate.monthly_after
    if rule is None:
        return BudgetResult(
            environment=environment,
            cost_center=cost_center,
            ceiling=None,
            committed=committed,
            requested=requested,
            within=True,
        )
    total = committed + requested
    # A change that lowers the cost is never held, even when the total is still over.
    within = total <= rule.monthly_usd or estimate.monthly_delta <= 0
    reason = None
    if not within:
        who = f"cost center {cost_center}" if cost_center else "requests without a cost center"
        reason = (
            f"estimated {total:.2f} USD/month for {who} in {environment} "
            f"({committed:.2f} running + {requested:.2f} this request, prices of "
            f"{estimate.prices_as_of}) is over its ceiling of {rule.monthly_usd:.2f} USD/month"
        )
    return BudgetResult(
        environment=environment,
        cost_center=cost_center,
        ceiling=rule.monthly_usd,
        committed=committed,
        requested=requested,
        within=within,
        action=None if within else rule.action,
        reason=reason,
    )
