"""Intake's deployment configuration: a JSON document, validated by these models.

It lives in an SSM parameter (``INTAKE_CONFIG_PARAMETER``) so a platform team
changes mappings and guardrails without a deployment: which ServiceNow catalog item is which
product, which Jira custom field is which variable, how each source authenticates,
and the policy of every product per environment. ``config/intake.example.json`` is a
complete example (a test keeps it valid). A source that is absent is disabled (its
endpoint answers 404); a source that is present must enable at least one
authentication method — there is no "off".
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

import re
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from selfservice_contracts.request import Action

__all__ = [
    "Bounds",
    "CatalogItem",
    "EnvironmentPolicy",
    "IntakeSettings",
    "JiraAuth",
    "JiraProductRule",
    "JiraSource",
    "ProductPolicy",
    "ServiceNowAuth",
    "ServiceNowSource",
]

Url = Annotated[str, Field(pattern=r"^https://[^/\s]+$", max_length=256)]
"""An origin such as https://acme.service-now.com (no path, no trailing slash)."""
Canonical = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceNowAuth(_Settings):
    """How ServiceNow deliveries prove who sent them."""

    hmac: bool = True
    """Standard Webhooks HMAC-SHA256 (webhook-id, webhook-timestamp, webhook-signature)."""
    basic: bool = False
    """HTTP basic auth, for REST messages configured with a basic auth profile."""

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not (self.hmac or self.basic):
            raise ValueError("enable at least one authentication method (hmac or basic)")
        return self


class CatalogItem(_Settings):
    """What one ServiceNow catalog item provisions."""

    product: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")]
    action: Action = Action.CREATE
    variables: dict[str, Canonical] = Field(default_factory=dict)
    """ServiceNow variable name → canonical variable (unlisted names pass unchanged)."""
    display_values: list[str] = Field(default_factory=list)
    """Variables whose display value is used instead of the sys_id (reference fields)."""
    instance_variable: str | None = None
    """For modify / decommission items: the reference variable naming the original RITM."""
    ignore_variables: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=100
    )
    """ServiceNow variables the item's form has but the product does not (a UI-only
    checkbox, an "accept terms" flag): dropped before validation. Any other variable the
    product does not declare refuses the request."""


class ServiceNowSource(_Settings):
    """The ServiceNow instance and its catalog."""

    instance_url: Url
    auth: ServiceNowAuth = ServiceNowAuth()
    catalog: Annotated[dict[str, CatalogItem], Field(min_length=1)]
    """Catalog item sys_id or name → product and action."""


class JiraAuth(_Settings):
    """How Jira deliveries prove who sent them."""

    hub_signature: bool = True
    """Admin webhooks with a secret: ``X-Hub-Signature: sha256=<hex>`` over the body."""
    automation_token_header: HeaderName | None = None
    """Automation "Send web request" (cannot sign): a static token in this header."""

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not (self.hub_signature or self.automation_token_header):
            raise ValueError(
                "enable at least one authentication method "
                "(hub_signature or automation_token_header)"
            )
        return self


class JiraProductRule(_Settings):
    """Which issues are requests for which product (first matching rule wins)."""

    product: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")]
    action: Action = Action.CREATE
    project: str | None = None
    """Project key (``ITSM``)."""
    issue_type: str | None = None
    """Issue type id or name."""
    request_type: str | None = None
    """JSM request type id (from the request-type field), if the site uses it."""


class JiraSource(_Settings):
    """The Jira site, its field mapping and the statuses that mean something to us."""

    base_url: Url
    auth: JiraAuth = JiraAuth()
    fields: dict[str, Canonical] = Field(default_factory=dict)
    """Webhook field id (``customfield_10051``) → canonical variable. Differs per site."""
    automation_fields: dict[str, Canonical] = Field(default_factory=dict)
    """Automation body key (``instanceType``) → canonical variable."""
    products: list[JiraProductRule] = Field(default_factory=list)
    request_type_field: str | None = None
    """Field holding the JSM request type (``customfield_10010``), if rules use it."""
    approved_statuses: list[str] = Field(default_factory=list)
    """Statuses that mean "approved" (the transition into one is the approval)."""
    cancel_statuses: list[str] = Field(default_factory=list)
    """Statuses that mean "cancelled": the request's instance is destroyed."""

    @field_validator("fields")
    @classmethod
    def _field_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for field_id in value:
            if not re.fullmatch(r"customfield_\d+|[a-z][A-Za-z]*", field_id):
                raise ValueError(f"{field_id!r} is not a Jira field id")
        return value


class Bounds(_Settings):
    """Inclusive integer bounds."""

    min: Annotated[int, Field(ge=0)] = 0
    max: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class EnvironmentPolicy(_Settings):
    """Guardrails of one product in one environment; each applies if its variable is set."""

    approval_required: bool = False
    allowed_instance_types: list[str] | None = None
    desired_capacity: Bounds | None = None
    allowed_regions: list[str] | None = None
    expose_alb_allowed: bool = True
    cost_center_pattern: str | None = None
    account_email_domains: list[str] | None = None
    allowed_organizational_units: list[str] | None = None
    min_approvers: Annotated[int, Field(ge=0)] = 0

    @field_validator("cost_center_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:  # not a ValueError: pydantic would not report it
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class ProductPolicy(_Settings):
    """A product's guardrails; an environment absent here is not offered."""

    environments: Annotated[dict[str, EnvironmentPolicy], Field(min_length=1)]


class IntakeSettings(_Settings):
    """The whole intake configuration document."""

    version: int = 1
    servicenow: ServiceNowSource | None = None
    jira: JiraSource | None = None
    policies: dict[str, ProductPolicy] = Field(default_factory=dict)
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 262_144
    """Bodies above this size are refused with 413 before they are parsed."""
