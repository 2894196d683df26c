"""What a reviewer is shown of a Terraform plan: its summary, cost and policy results.

The provisioner computes these from ``terraform show -json`` of the saved plan
(``provisioner.domain.plan``); they are contracts because the ticket write-back renders
them and the approval binds to the plan's hash. Money is ``Decimal`` US dollars per
month, rounded to cents.
"""

# No `from __future__ import annotations`: pydantic evaluates annotations at class creation.

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, JsonValue

from selfservice_contracts.request import ContractModel

__all__ = [
    "AttributeChange",
    "BudgetAction",
    "BudgetResult",
    "ChangeAction",
    "CheckResult",
    "CostEstimate",
    "CostLine",
    "Finding",
    "FindingKind",
    "PlanCounts",
    "PlanSummary",
    "PlanVerdict",
    "PolicyResult",
    "ResourceChange",
]

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Usd = Annotated[Decimal, Field(decimal_places=2, max_digits=14)]


class ChangeAction(StrEnum):
    """What the plan does to one resource (Terraform's action list, named)."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


class PlanVerdict(StrEnum):
    """What happens to a saved plan once it is reviewed."""

    APPLY = "apply"
    """Policy and budget allow it and nothing asks for an approval: it is applied now."""
    HOLD = "hold"
    """It waits for an approval of its hash; the apply then runs exactly this plan."""
    REFUSE = "refuse"
    """A plan policy or the budget refuses it; nothing is applied."""


class AttributeChange(ContractModel):
    """One attribute a reviewer cares about, before and after (``None``: absent)."""

    path: str
    before: JsonValue = None
    after: JsonValue = None
    known_after_apply: bool = False
    """The value is computed by AWS during the apply; ``after`` is then ``None``."""


class ResourceChange(ContractModel):
    """One planned change of one resource."""

    address: str
    type: str
    name: str
    action: ChangeAction
    attributes: list[AttributeChange] = Field(default_factory=list)
    """The attributes the product shows for this resource type."""
    replace_because: list[str] = Field(default_factory=list)
    """Attribute paths that force the replacement (``replace`` only)."""


class FindingKind(StrEnum):
    """What kind of thing a reviewer must not miss."""

    PUBLIC_EXPOSURE = "public_exposure"
    IMDS = "imds"
    DATA_DELETION = "data_deletion"


class Finding(ContractModel):
    """A fact of the planned state worth a reviewer's attention, with the resource."""

    kind: FindingKind
    address: str
    detail: str


class PlanCounts(ContractModel):
    """Resources to add, change, replace and destroy; disjoint (a replacement counts once)."""

    add: int = 0
    change: int = 0
    replace: int = 0
    destroy: int = 0


class PlanSummary(ContractModel):
    """The plan as a reviewer reads it."""

    product: str
    plan_sha256: Sha256
    """SHA-256 of the binary plan file; the approval approves exactly this plan."""
    terraform_version: str
    counts: PlanCounts
    resources: list[ResourceChange]
    """Every resource the plan creates, updates, replaces or deletes (no-ops left out)."""
    findings: list[Finding] = Field(default_factory=list)


class CostLine(ContractModel):
    """The monthly cost of one resource after the change (and before it)."""

    address: str
    type: str
    description: str
    """What is priced, e.g. ``3 x m6i.large (730 h)``."""
    monthly_before: Usd = Decimal("0.00")
    monthly_after: Usd = Decimal("0.00")


class CostEstimate(ContractModel):
    """A monthly estimate of what the planned resources cost on demand."""

    region: str
    currency: str = "USD"
    prices_as_of: str
    """Date of the price table the estimate used (``YYYY-MM-DD``)."""
    prices_source: str
    monthly_before: Usd
    monthly_after: Usd
    monthly_delta: Usd
    lines: list[CostLine]
    not_priced: list[str] = Field(default_factory=list)
    """What is not in the figures (usage-based charges, unknown types), said plainly."""


class CheckResult(ContractModel):
    """One plan policy check: passed, or failed with a reason per offending resource."""

    check: str
    passed: bool
    reasons: list[str] = Field(default_factory=list)


class PolicyResult(ContractModel):
    """Every check the product's plan policies ran for the environment."""

    environment: str
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> list[str]:
        """Every failure's reason, in check order."""
        return [reason for check in self.checks for reason in check.reasons]


class BudgetAction(StrEnum):
    """What an over-budget request gets."""

    REQUIRE_APPROVAL = "require_approval"
    REJECT = "reject"


class BudgetResult(ContractModel):
    """The budget guardrail's verdict on an estimate (``within`` or the action)."""

    environment: str
    cost_center: str | None
    ceiling: Usd | None
    """The monthly ceiling that applied; ``None`` when no budget is configured."""
    committed: Usd = Decimal("0.00")
    """Monthly cost already running for the cost center in the environment."""
    requested: Usd
    within: bool
    action: BudgetAction | None = None
    """What applies when the request is over budget."""
    reason: str | None = None
