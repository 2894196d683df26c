"""The data that drives plan review: a product's ``plan`` section, and the guardrails.

Two documents, two owners:

- ``product.json`` → ``plan`` (:class:`ProductPlanSettings`, here): which attributes of
  which resource types the summary shows, which plan policy checks apply to the product,
  and which of its resource types hold data beyond the platform's list. The product's
  author knows these; they change with the module.
- the provisioner's configuration document → ``plan_policies`` and ``budgets``
  (:class:`provisioner.settings.PlanGuardrails`): the limits per product and environment
  and the monthly ceilings per environment and cost center. The platform team sets these
  per deployment, as it sets intake's guardrails.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Check", "ProductPlanSettings"]

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
