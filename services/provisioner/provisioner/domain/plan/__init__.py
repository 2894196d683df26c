"""Plan review: what a saved Terraform plan does, whether policy allows it, what it costs.

Pure and typed: everything here reads the JSON of ``terraform show -json tfplan`` and
data (the product's ``plan`` section, the guardrails, the price table), never AWS.
"""

from provisioner.domain.plan.budget import check_budget
from provisioner.domain.plan.cost import estimate
from provisioner.domain.plan.policies import evaluate
from provisioner.domain.plan.prices import PriceTable, UnsupportedRegionError, load_prices
from provisioner.domain.plan.review import PlanReview, ReviewContext, Verdict, review_plan
from provisioner.domain.plan.settings import Check, ProductPlanSettings
from provisioner.domain.plan.summary import summarize
from provisioner.domain.plan.terraform_plan import (
    PlanFormatError,
    PlannedResource,
    TerraformPlan,
    plan_sha256,
)
from provisioner.settings import BudgetRule, EnvironmentPlanPolicy, PlanGuardrails

__all__ = [
    "BudgetRule",
    "Check",
    "EnvironmentPlanPolicy",
    "PlanFormatError",
    "PlanGuardrails",
    "PlanReview",
    "PlannedResource",
    "PriceTable",
    "ProductPlanSettings",
    "ReviewContext",
    "TerraformPlan",
    "UnsupportedRegionError",
    "Verdict",
    "check_budget",
    "estimate",
    "evaluate",
    "load_prices",
    "plan_sha256",
    "review_plan",
    "summarize",
]
