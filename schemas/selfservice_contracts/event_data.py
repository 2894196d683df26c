"""The data of every event type: what each lifecycle step says about a ticket.

Pure shapes; the typed CloudEvents that carry them and the catalog are in
:mod:`selfservice_contracts.events`, which re-exports every name here.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, ConfigDict, Field, JsonValue, model_validator

from selfservice_contracts.plan import (
    BudgetResult,
    CostEstimate,
    PlanSummary,
    PlanVerdict,
    PolicyResult,
)
from selfservice_contracts.request import (
    Action,
    ContractModel,
    ProductName,
    ProvisioningRequest,
    TicketRef,
)

__all__ = [
    "ApprovalRequired",
    "EventRef",
    "IamCaller",
    "OpsCommandExecuted",
    "OpsTargets",
    "PlanArtifacts",
    "ProvisioningFailed",
    "ProvisioningPlanned",
    "ProvisioningRefused",
    "ProvisioningStarted",
    "ProvisioningSucceeded",
    "RejectionReason",
    "RequestApproved",
    "RequestId",
    "RequestReceived",
    "RequestRejected",
    "Service",
    "TicketEventData",
    "TicketUpdated",
    "WriteBackChannel",
    "WriteBackFailed",
]

RequestId = Annotated[str, Field(pattern=r"^req-[0-9a-f]{8,32}$")]


class Service(StrEnum):
    """The platform's services; ``source`` is both the CloudEvent and EventBridge source."""

    INTAKE = "intake"
    PROVISIONER = "provisioner"
    NOTIFIER = "notifier"
    OPS_API = "ops-api"

    @property
    def source(self) -> str:
        """The event source every event of this service carries."""
        return f"selfservice.{self.value}"


class TicketEventData(ContractModel):
    """Fields every event about a ticket carries, so any consumer can correlate it."""

    request_id: RequestId
    ticket: TicketRef


class _RequestCarrier(TicketEventData):
    """Events that carry the whole validated request (the provisioner needs all of it)."""

    request: ProvisioningRequest

    @model_validator(mode="after")
    def _correlation_matches_request(self) -> Self:
        if self.request.request_id != self.request_id or self.request.ticket != self.ticket:
            raise ValueError("request_id and ticket must equal those of the embedded request")
        return self


class RequestReceived(_RequestCarrier):
    """A request passed authentication, validation and policy, and needs no further approval."""


class RejectionReason(ContractModel):
    """One precise reason a request was refused, shown to the requester on the ticket."""

    code: Literal[
        "invalid_payload",
        "unknown_product",
        "schema_violation",
        "policy_violation",
        "approval_rejected",
        "illegal_transition",
    ]
    field: Annotated[str | None, Field(max_length=128)] = None
    """The canonical variable at fault, when there is one."""
    message: Annotated[str, Field(min_length=1, max_length=1000)]


class RequestRejected(TicketEventData):
    """A request was refused; the reasons go back to the ticket verbatim."""

    product: ProductName | None = None
    action: Action | None = None
    reasons: Annotated[list[RejectionReason], Field(min_length=1, max_length=50)]


class ApprovalRequired(_RequestCarrier):
    """A valid request waits for an approval that policy demands."""

    policy: Annotated[str, Field(min_length=1, max_length=500)]
    """Why approval is needed, in words the requester understands."""
    approvers: list[str] = Field(default_factory=list, max_length=50)


class RequestApproved(_RequestCarrier):
    """The approval a request waited for was given in the ITSM."""

    approved_by: Annotated[str | None, Field(max_length=256)] = None
    approved_at: AwareDatetime
    plan_sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    """The plan the approver was shown, when the ITSM passes it back: the provisioner then
    applies the held plan only if it is this one. Without it the approval approves the plan
    the ticket was last shown (the ledger's held plan)."""


class _ProvisioningData(TicketEventData):
    product: ProductName
    action: Action
    attempt: Annotated[int, Field(ge=1, le=100)] = 1
    build_id: Annotated[str | None, Field(max_length=512)] = None
    """CodeBuild build id (``project:uuid``) or ARN."""
    log_url: Annotated[str | None, Field(pattern=r"^https?://", max_length=2048)] = None


class ProvisioningStarted(_ProvisioningData):
    """A CodeBuild build running Terraform for this request has started."""

    build_id: Annotated[str, Field(min_length=1, max_length=512)]
    approved_plan_sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    """The build applies this approved saved plan and nothing else (None: it plans first)."""
    plan_only: bool = False
    """The build only plans: its plan waits for an approval, and it applies nothing."""


class ProvisioningRefused(TicketEventData):
    """The provisioner did not act on a request: the ticket asked for what its instance's
    state does not allow (nothing to destroy, a build under way, an approval while the plan
    is being made). Nothing was changed; the reason goes back to the ticket."""

    product: ProductName
    action: Action
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    state: Annotated[str | None, Field(max_length=64)] = None
    """The instance's state in the ledger when the request arrived (None: no entry)."""


class PlanArtifacts(ContractModel):
    """Where the saved plan and its JSON are kept (artifacts bucket, per ticket and attempt)."""

    plan_s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]+/.+", max_length=1024)]
    """The binary plan file (``tfplan``) the apply runs; its SHA-256 is ``plan_sha256``."""
    plan_json_s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]+/.+", max_length=1024)]
    """``terraform show -json`` of it: the full plan for those who need it."""


class ProvisioningPlanned(_ProvisioningData):
    """Terraform planned the change: what it does, what it costs, whether policy allows it.

    An approval, when one is needed, approves exactly ``plan_sha256``; the apply runs that
    saved plan and nothing else.
    """

    build_id: Annotated[str, Field(min_length=1, max_length=512)]
    plan_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    summary: PlanSummary
    cost: CostEstimate
    policy: PolicyResult
    budget: BudgetResult | None = None
    artifacts: PlanArtifacts
    needs_approval: bool
    """The plan waits for an approval of its hash before it is applied."""
    verdict: PlanVerdict
    """Applied now, held for an approval of its hash, or refused (nothing is applied)."""
    reasons: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=50
    )
    """Why it is held or refused: failed checks, the budget's figures, the approval policy."""
    replanned_because: Annotated[str | None, Field(max_length=1000)] = None
    """Set when an approved plan went stale and this plan replaces it (say why)."""

    @model_validator(mode="after")
    def _approval_follows_the_verdict(self) -> Self:
        if self.needs_approval != (self.verdict is PlanVerdict.HOLD):
            raise ValueError("needs_approval is true exactly when the verdict is hold")
        return self


class ProvisioningSucceeded(_ProvisioningData):
    """Terraform finished; ``outputs`` are its ``terraform output -json`` values."""

    build_id: Annotated[str, Field(min_length=1, max_length=512)]
    outputs: dict[str, JsonValue] = Field(default_factory=dict)
    duration_seconds: Annotated[float | None, Field(ge=0)] = None
    plan_sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    """SHA-256 of the saved plan that was applied."""


class ProvisioningFailed(_ProvisioningData):
    """Provisioning did not complete; says where, why, and the last lines of the error."""

    build_status: Literal["FAILED", "STOPPED", "TIMED_OUT", "FAULT", "NOT_STARTED", "PLAN_REFUSED"]
    """CodeBuild's status; ``NOT_STARTED`` when CodeBuild refused to start the build,
    ``PLAN_REFUSED`` when a plan policy or the budget refused the plan (nothing applied)."""
    phase: Annotated[str | None, Field(max_length=64)] = None
    """CodeBuild phase that failed (``BUILD``, ``INSTALL``…); None if no build ran."""
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    error_tail: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=40
    )
    retryable: bool = False


class WriteBackChannel(StrEnum):
    """How the notifier reached the ticket."""

    SERVICENOW_TABLE = "servicenow-table"
    JIRA_COMMENT = "jira-comment"
    JSM_COMMENT = "jsm-comment"
    EMAIL = "email"


class EventRef(ContractModel):
    """Points at the event a write-back answered (idempotency is keyed on source + id)."""

    id: Annotated[str, Field(min_length=1, max_length=256)]
    source: Annotated[str, Field(min_length=1, max_length=256)]
    type: Annotated[str, Field(min_length=1, max_length=256)]


class TicketUpdated(TicketEventData):
    """A lifecycle event was written back to the ticket."""

    channel: WriteBackChannel
    in_reply_to: EventRef
    ticket_state: Annotated[str | None, Field(max_length=64)] = None
    """The ITSM state the ticket was moved to, if the write-back moved it."""


class WriteBackFailed(TicketEventData):
    """Write-back gave up after its last attempt; the message is parked in the DLQ."""

    channel: WriteBackChannel
    in_reply_to: EventRef
    attempts: Annotated[int, Field(ge=1)]
    status_code: Annotated[int | None, Field(ge=100, le=599)] = None
    error: Annotated[str, Field(min_length=1, max_length=1000)]
    """What went wrong, with credentials and tokens never included."""


class IamCaller(ContractModel):
    """The SigV4 identity API Gateway verified (``requestContext.authorizer.iam``)."""

    user_arn: Annotated[str, Field(min_length=1, max_length=2048)]
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]
    user_id: Annotated[str | None, Field(max_length=256)] = None
    principal_org_id: Annotated[str | None, Field(max_length=64)] = None


class OpsTargets(ContractModel):
    """What an ops call aimed at and what it actually reached."""

    instance_ids: list[Annotated[str, Field(pattern=r"^(i|mi)-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list, max_length=1000
    )
    tags: dict[str, str] = Field(default_factory=dict)


class OpsCommandExecuted(ContractModel):
    """Audit record of one ops-API call, whatever its outcome."""

    # Commands are recorded exactly as sent: " uptime" is not "uptime".
    model_config = ConfigDict(**{**ContractModel.model_config, "str_strip_whitespace": False})

    operation: Literal["run-commands", "get-command", "start-association"]
    caller: IamCaller
    targets: OpsTargets
    commands: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=100
    )
    document_name: Annotated[str | None, Field(max_length=128)] = None
    command_id: Annotated[str | None, Field(max_length=64)] = None
    association_ids: list[str] = Field(default_factory=list, max_length=100)
    outcome: Literal["succeeded", "failed", "denied", "invalid", "timed_out", "not_found"]
    status_code: Annotated[int, Field(ge=100, le=599)]
    detail: Annotated[str | None, Field(max_length=1000)] = None
