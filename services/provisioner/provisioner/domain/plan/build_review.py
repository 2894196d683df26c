"""What the provisioner and the build's review step hand each other, and where.

The provisioner writes a **review input** when it starts a build (the request's side of
the review: environment, cost center, whether an approval is needed, what the cost
center already runs, the guardrails). The build plans, then ``buildtools/review.py``
reviews the saved plan with :func:`review_build` and writes a **build record** — the
review of a plan, or the outcome of applying an approved one — that the build-events
function reads when the build ends. Both sides import this module, so the documents,
their keys and the review step's exit codes are written once.

Keys in the artifacts bucket, per request and attempt::

    tfvars/<request>/<attempt>.tfvars.json        the variables (provisioner)
    tfvars/<request>/<attempt>.review-input.json  ReviewInput (provisioner)
    plans/<request>/<attempt>/tfplan|plan.json|tfplan.sha256   the saved plan (build)
    reviews/<request>/<attempt>.json              ReviewRecord | ApplyRecord (build)

Pure: pydantic and the standard library (the build runs it without boto3's help).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from provisioner.domain.plan.prices import PriceTable
from provisioner.domain.plan.review import ReviewContext, review_plan
from provisioner.domain.plan.settings import ProductPlanSettings
from provisioner.settings import PlanGuardrails
from selfservice_contracts.plan import (
    BudgetResult,
    CostEstimate,
    PlanSummary,
    PlanVerdict,
    PolicyResult,
)
from selfservice_contracts.request import Action

__all__ = [
    "MODULE_FILES",
    "ApplyRecord",
    "BuildRecord",
    "ExitCode",
    "ReviewInput",
    "ReviewRecord",
    "exit_code",
    "module_sha256",
    "parse_build_record",
    "plan_prefix",
    "review_build",
    "review_input_key",
    "review_record_key",
]

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]

MODULE_FILES = ("*.tf", "*.tf.json", "*.tftpl", ".terraform.lock.hcl")
"""What a product module is made of (what its hash covers), below its ``terraform/``."""


class ExitCode(IntEnum):
    """What ``review.py`` tells the buildspec (anything else: the build fails)."""

    APPLY = 0
    """Apply the saved plan now (or, for an approved plan: it checked out, apply it)."""
    HOLD = 10
    """Keep the plan for an approval of its hash; apply nothing; the build succeeds."""
    REFUSE = 11
    """A plan policy or a ``reject`` budget refused it; apply nothing; the build succeeds."""
    STALE = 12
    """The approved plan is not the one to apply any more; apply nothing; re-plan."""


def review_input_key(request_id: str, attempt: int) -> str:
    """The review input of an attempt (written by the provisioner, beside its tfvars)."""
    return f"tfvars/{request_id}/{attempt}.review-input.json"


def review_record_key(request_id: str, attempt: int) -> str:
    """The build record of an attempt (written by the build's review step)."""
    return f"reviews/{request_id}/{attempt}.json"


def plan_prefix(request_id: str, attempt: int) -> str:
    """Where an attempt keeps ``tfplan``, ``plan.json`` and ``tfplan.sha256``."""
    return f"plans/{request_id}/{attempt}/"


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReviewInput(_Document):
    """The request's side of a build's review (``tfvars/<request>/<attempt>.review-input.json``)."""

    version: Literal[1] = 1
    product: str
    action: Action
    environment: str
    cost_center: str | None = None
    approval_required: bool = False
    """Hold the plan for an approval whatever it is (the request waits for one)."""
    destroy_confirmed: bool = False
    """The request confirms the deletion of data-bearing resources."""
    committed: Money = Decimal("0.00")
    """What the cost center's other live instances cost per month in the environment."""
    guardrails: PlanGuardrails = PlanGuardrails()

    def context(self) -> ReviewContext:
        """The review's context (what :func:`review_plan` takes)."""
        return ReviewContext(
            product=self.product,
            environment=self.environment,
            cost_center=self.cost_center,
            approval_required=self.approval_required,
            destroy_confirmed=self.destroy_confirmed,
            committed=self.committed,
        )


class ReviewRecord(_Document):
    """A build's review of the plan it made (``reviews/<request>/<attempt>.json``)."""

    kind: Literal["review"] = "review"
    request_id: str
    attempt: Annotated[int, Field(ge=1)]
    product: str
    action: Action
    plan_sha256: Sha256
    module_sha256: Sha256
    """The product module the plan was made from: an approved plan applies only with it."""
    summary: PlanSummary
    cost: CostEstimate
    policy: PolicyResult
    budget: BudgetResult
    verdict: PlanVerdict
    reasons: list[str] = []
    applied: bool = False
    """The build went on to apply the plan (verdict apply, not a plan-only build)."""


class ApplyRecord(_Document):
    """What became of an approved plan a build was started to apply."""

    kind: Literal["apply"] = "apply"
    request_id: str
    attempt: Annotated[int, Field(ge=1)]
    plan_sha256: Sha256
    """The approved plan's hash (what the build was asked to apply)."""
    applied: bool
    stale_because: str | None = None
    """Why nothing was applied: the plan, the module or the state changed since."""


BuildRecord = Annotated[ReviewRecord | ApplyRecord, Field(discriminator="kind")]
_RECORD: TypeAdapter[ReviewRecord | ApplyRecord] = TypeAdapter(BuildRecord)


def parse_build_record(document: bytes | str) -> ReviewRecord | ApplyRecord:
    """A build record from its JSON."""
    return _RECORD.validate_json(document)


def module_sha256(terraform_dir: Path) -> str:
    """SHA-256 over a product module's files (names and contents, in a fixed order).

    Only what the module is made of counts (:data:`MODULE_FILES`): what a build leaves
    beside it — ``.terraform/``, the request's tfvars, the plan — does not.
    """
    files = sorted(
        {
            path
            for pattern in MODULE_FILES
            for path in terraform_dir.rglob(pattern)
            if path.is_file() and ".terraform" not in path.relative_to(terraform_dir).parts[:-1]
        }
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(terraform_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def review_build(  # noqa: PLR0917 - the facts of one build's review
    document: dict[str, Any],
    plan_sha: str,
    module_sha: str,
    settings: ProductPlanSettings,
    prices: PriceTable,
    review_input: ReviewInput,
    *,
    request_id: str,
    attempt: int,
    plan_only: bool,
) -> ReviewRecord:
    """Review the plan ``document`` (``terraform show -json``) for the build's record."""
    review = review_plan(
        document,
        plan_sha,
        settings,
        review_input.guardrails,
        prices,
        review_input.context(),
    )
    return ReviewRecord(
        request_id=request_id,
        attempt=attempt,
        product=review_input.product,
        action=review_input.action,
        plan_sha256=plan_sha,
        module_sha256=module_sha,
        summary=review.summary,
        cost=review.cost,
        policy=review.policy,
        budget=review.budget,
        verdict=review.verdict,
        reasons=review.reasons,
        applied=review.verdict is PlanVerdict.APPLY and not plan_only,
    )


def exit_code(record: ReviewRecord) -> ExitCode:
    """What the buildspec does after the review."""
    if record.verdict is PlanVerdict.REFUSE:
        return ExitCode.REFUSE
    if record.verdict is PlanVerdict.HOLD or not record.applied:
        return ExitCode.HOLD
    return ExitCode.APPLY
