"""The provisioner's configuration document: the plan guardrails, set per deployment.

It lives in an SSM parameter (``PROVISIONER_CONFIG_PARAMETER``, the stack output
``ProvisionerConfigParameter``) so a platform team changes the limits without a
deployment; the provisioner reads it through the shared loader
(``selfservice_runtime.settings_document``, cached 60 s). ``config/provisioner.example.json``
is a complete example. The document holds ``plan_policies`` and ``budgets``
(:class:`PlanGuardrails`): the limits per product and environment (instance types,
mandatory tags, which public ports) and the monthly ceilings per environment and cost
center — checked against what Terraform will build, after the plan, where the
provisioner is the one that sees it. A product's own ``plan`` section (what its
summary shows, which checks apply) is the product's, in ``product.json``
(:mod:`provisioner.domain.plan.settings`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from selfservice_contracts.plan import BudgetAction

__all__ = ["BudgetRule", "EnvironmentPlanPolicy", "PlanGuardrails", "ProductPlanPolicy"]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvironmentPlanPolicy(_Settings):
    """Limits of one product in one environment; every field has the strict default."""

    allowed_instance_types: list[str] | None = None
    """``None``: any instance type (intake's guardrails may still narrow the request)."""
    public_ingress_ports: list[Annotated[int, Field(ge=0, le=65535)]] = []
    """TCP ports open to the internet allowed (e.g. 80 and 443 of a public load balancer)."""
    required_tags: list[str] = []
    """Tag keys every taggable resource must carry."""


class ProductPlanPolicy(_Settings):
    """A product's plan limits per environment; an environment absent gets the defaults."""

    environments: dict[str, EnvironmentPlanPolicy] = {}


class BudgetRule(_Settings):
    """A monthly ceiling and what an over-budget request gets."""

    monthly_usd: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    action: BudgetAction = BudgetAction.REQUIRE_APPROVAL


class PlanGuardrails(_Settings):
    """``plan_policies`` and ``budgets`` of the provisioner's configuration document."""

    version: Literal[1] = 1

    plan_policies: dict[str, ProductPlanPolicy] = {}
    """Product → its plan limits per environment."""
    budgets: dict[str, dict[str, BudgetRule]] = {}
    """Environment → cost center (``*``: any other) → monthly ceiling."""

    def policy(self, product: str, environment: str) -> EnvironmentPlanPolicy:
        """The limits of ``product`` in ``environment`` (the strict defaults if unset)."""
        configured = self.plan_policies.get(product)
        if configured is None:
            return EnvironmentPlanPolicy()
        return configured.environments.get(environment, EnvironmentPlanPolicy())

    def budget(self, environment: str, cost_center: str | None) -> BudgetRule | None:
        """The ceiling for the cost center in the environment, if one is set."""
        rules = self.budgets.get(environment, {})
        if cost_center is not None and cost_center in rules:
            return rules[cost_center]
        return rules.get("*")
