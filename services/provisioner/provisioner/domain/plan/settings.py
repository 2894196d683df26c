"""The data that drives plan review: a product's ``plan`` section, and the guardrails.

Two documents, two owners:

- ``product.json`` → ``plan`` (:class:`ProductPlanSettings`): which attributes of which
  resource types the summary shows, which plan policy checks apply to the product, and
  which of its resource types hold data beyond the platform's list. The product's author
  knows these; they change with the module.
- the provisioner's configuration document → ``plan_policies`` and ``budgets``
  (:class:`PlanGuardrails`): the limits per product and environment (instance types,
  mandatory tags, which public ports) and the monthly ceilings per environment and cost
  center. The platform team sets these per deployment, as it sets intake's guardrails;
  they are checked against what Terraform will build, after the plan, where the
  provisioner is the one that sees it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from selfservice_contracts.plan import BudgetAction

__all__ = [
    "BudgetRule",
    "Check",
    "EnvironmentPlanPolicy",
    "PlanGuardrails",
    "ProductPlanPolicy",
    "ProductPlanSettings",
]

AttributePath = Annotated[str, Field(pattern=r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$")]
"""Dotted path into a resource's values; a tag key may follow ``tags.``."""
ResourceType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*_[a-z0-9_]+$")]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Check(StrEnum):
    """The plan policy checks a product may declare."""

    NO_PUBLIC_IP = "no_public_ip"
    """No instance, launch template or subnet gives instances a public IP address."""
    NO_PUBLIC_INGRESS = "no_public_ingress"
    """No ingress from 0.0.0.0/0 or ::/0 except on the environment's allowed ports."""
    NO_PUBLIC_SSH = "no_public_ssh"
    """No SSH (TCP 22) from 0.0.0.0/0 or ::/0, whatever else is allowed."""
    IMDSV2_REQUIRED = "imdsv2_required"
    """Every instance and launch template requires IMDSv2 tokens."""
    MANDATORY_TAGS = "mandatory_tags"
    """Every taggable resource created or updated carries the environment's tags."""
    STATEFUL_DESTROY = "stateful_destroy"
    """A resource holding data is deleted or replaced only when the request says so."""
    ALLOWED_INSTANCE_TYPES = "allowed_instance_types"
    """Instances and launch templates use only the environment's instance types."""


class ProductPlanSettings(_Settings):
    """``product.json`` → ``plan``."""

    show: dict[ResourceType, list[AttributePath]] = {}
    """Resource type → attribute paths the summary shows (dots walk nested blocks)."""
    policies: list[Check] = []
    """The checks that apply to this product's plans."""
    stateful: list[ResourceType] = []
    """Resource types that hold data, beyond the platform's own list."""


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
