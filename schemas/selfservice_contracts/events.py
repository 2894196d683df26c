"""Event contracts: the data of every event type, its typed CloudEvent, and the catalog.

Every message between services is a CloudEvents 1.0 structured event carried as the
``detail`` of an EventBridge event. Types name what happened, past tense, versioned.
Adding a type means: a data model here, an event model, a catalog entry, a sample
under ``tests/contract/samples/``, then ``make schemas`` (tests fail until all exist).
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, ConfigDict, Field, JsonValue, TypeAdapter, model_validator

from selfservice_contracts.plan import BudgetResult, CostEstimate, PlanSummary, PolicyResult
from selfservice_contracts.request import (
    Action,
    ContractModel,
    ProductName,
    ProvisioningRequest,
    TicketRef,
)

__all__ = [
    "EVENT_CATALOG",
    "AnyEvent",
    "ApprovalRequired",
    "ApprovalRequiredEvent",
    "CloudEventModel",
    "EventRef",
    "EventSpec",
    "IamCaller",
    "OpsCommandExecuted",
    "OpsCommandExecutedEvent",
    "OpsTargets",
    "PlanArtifacts",
    "ProvisioningFailed",
    "ProvisioningFailedEvent",
    "ProvisioningPlanned",
    "ProvisioningPlannedEvent",
    "ProvisioningStarted",
    "ProvisioningStartedEvent",
    "ProvisioningSucceeded",
    "ProvisioningSucceededEvent",
    "RejectionReason",
    "RequestApproved",
    "RequestApprovedEvent",
    "RequestReceived",
    "RequestReceivedEvent",
    "RequestRejected",
    "RequestRejectedEvent",
    "Service",
    "TicketEventData",
    "TicketUpdated",
    "TicketUpdatedEvent",
    "WriteBackChannel",
    "WriteBackFailed",
    "WriteBackFailedEvent",
    "event_adapter",
    "spec_for_data",
    "spec_for_type",
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


# ---------------------------------------------------------------------------
# Event data
# ---------------------------------------------------------------------------


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


class ProvisioningSucceeded(_ProvisioningData):
    """Terraform finished; ``outputs`` are its ``terraform output -json`` values."""

    build_id: Annotated[str, Field(min_length=1, max_length=512)]
    outputs: dict[str, JsonValue] = Field(default_factory=dict)
    duration_seconds: Annotated[float | None, Field(ge=0)] = None


class ProvisioningFailed(_ProvisioningData):
    """Provisioning did not complete; says where, why, and the last lines of the error."""

    build_status: Literal["FAILED", "STOPPED", "TIMED_OUT", "FAULT", "NOT_STARTED"]
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


# ---------------------------------------------------------------------------
# Typed CloudEvents
# ---------------------------------------------------------------------------


class CloudEventModel(ContractModel):
    """A CloudEvents 1.0 structured event as it travels in an EventBridge ``detail``.

    ``requestid`` is a CloudEvents extension attribute (lower-case alphanumerics, as
    the spec requires) holding the request id that correlates a ticket's events.
    """

    specversion: Literal["1.0"] = "1.0"
    id: Annotated[str, Field(min_length=1, max_length=256)]
    source: Annotated[str, Field(min_length=1, max_length=256)]
    type: str
    subject: Annotated[str | None, Field(max_length=512)] = None
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: Annotated[str | None, Field(max_length=1024)] = None
    requestid: RequestId | None = None
    data: ContractModel

    @model_validator(mode="after")
    def _source_is_the_producer(self) -> Self:
        spec = spec_for_type(self.type)
        if self.source != spec.producer.source:
            raise ValueError(
                f"{self.type} is produced by {spec.producer.source}, not {self.source!r}"
            )
        data = self.data
        if isinstance(data, TicketEventData):
            if self.subject != str(data.ticket):
                raise ValueError(f"subject must be the ticket reference {str(data.ticket)!r}")
            if self.requestid != data.request_id:
                raise ValueError("requestid extension must equal data.request_id")
        return self


class RequestReceivedEvent(CloudEventModel):
    type: Literal["selfservice.request.received.v1"]
    data: RequestReceived


class RequestRejectedEvent(CloudEventModel):
    type: Literal["selfservice.request.rejected.v1"]
    data: RequestRejected


class ApprovalRequiredEvent(CloudEventModel):
    type: Literal["selfservice.request.approval-required.v1"]
    data: ApprovalRequired


class RequestApprovedEvent(CloudEventModel):
    type: Literal["selfservice.request.approved.v1"]
    data: RequestApproved


class ProvisioningStartedEvent(CloudEventModel):
    type: Literal["selfservice.provisioning.started.v1"]
    data: ProvisioningStarted


class ProvisioningPlannedEvent(CloudEventModel):
    type: Literal["selfservice.provisioning.planned.v1"]
    data: ProvisioningPlanned


class ProvisioningSucceededEvent(CloudEventModel):
    type: Literal["selfservice.provisioning.succeeded.v1"]
    data: ProvisioningSucceeded


class ProvisioningFailedEvent(CloudEventModel):
    type: Literal["selfservice.provisioning.failed.v1"]
    data: ProvisioningFailed


class TicketUpdatedEvent(CloudEventModel):
    type: Literal["selfservice.ticket.updated.v1"]
    data: TicketUpdated


class WriteBackFailedEvent(CloudEventModel):
    type: Literal["selfservice.ticket.write-back-failed.v1"]
    data: WriteBackFailed


class OpsCommandExecutedEvent(CloudEventModel):
    type: Literal["selfservice.ops.command-executed.v1"]
    data: OpsCommandExecuted


AnyEvent = Annotated[
    RequestReceivedEvent
    | RequestRejectedEvent
    | ApprovalRequiredEvent
    | RequestApprovedEvent
    | ProvisioningStartedEvent
    | ProvisioningPlannedEvent
    | ProvisioningSucceededEvent
    | ProvisioningFailedEvent
    | TicketUpdatedEvent
    | WriteBackFailedEvent
    | OpsCommandExecutedEvent,
    Field(discriminator="type"),
]
"""Every event the platform emits, dispatched on the CloudEvent ``type``."""


@cache
def event_adapter() -> TypeAdapter[AnyEvent]:
    """Validator of the event union, built on first use (producers never need it)."""
    return TypeAdapter(AnyEvent)


# ---------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One catalog entry: who emits an event type, who consumes it, and what it means."""

    event_model: type[CloudEventModel]
    data_model: type[ContractModel]
    producer: Service
    consumers: tuple[Service, ...]
    summary: str

    @property
    def type(self) -> str:
        """The CloudEvent ``type`` (also the EventBridge ``detail-type``)."""
        annotation = self.event_model.model_fields["type"].annotation
        (value,) = annotation.__args__  # type: ignore[union-attr]
        return str(value)

    @property
    def schema_file(self) -> str:
        """File name of the exported JSON Schema under ``schemas/json/``."""
        return f"{self.type}.json"


EVENT_CATALOG: tuple[EventSpec, ...] = (
    EventSpec(
        RequestReceivedEvent,
        RequestReceived,
        Service.INTAKE,
        (Service.PROVISIONER,),
        "A ticket became a valid request that needs no further approval; provision it.",
    ),
    EventSpec(
        RequestRejectedEvent,
        RequestRejected,
        Service.INTAKE,
        (Service.NOTIFIER,),
        "A ticket was refused (bad payload, unknown product, schema or policy violation); "
        "the reasons are written back to it.",
    ),
    EventSpec(
        ApprovalRequiredEvent,
        ApprovalRequired,
        Service.INTAKE,
        (Service.PROVISIONER, Service.NOTIFIER),
        "A valid request waits for the approval its policy demands; the ledger records it "
        "and the ticket says who must approve.",
    ),
    EventSpec(
        RequestApprovedEvent,
        RequestApproved,
        Service.INTAKE,
        (Service.PROVISIONER, Service.NOTIFIER),
        "The approval arrived in the ITSM; provisioning may start.",
    ),
    EventSpec(
        ProvisioningStartedEvent,
        ProvisioningStarted,
        Service.PROVISIONER,
        (Service.NOTIFIER,),
        "A CodeBuild build running Terraform started; carries the build id and log link.",
    ),
    EventSpec(
        ProvisioningPlannedEvent,
        ProvisioningPlanned,
        Service.PROVISIONER,
        (Service.NOTIFIER,),
        "Terraform planned the change; carries the plan summary, its monthly cost, the plan "
        "policy and budget results, the plan's SHA-256 and where the plan is kept.",
    ),
    EventSpec(
        ProvisioningSucceededEvent,
        ProvisioningSucceeded,
        Service.PROVISIONER,
        (Service.NOTIFIER,),
        "Terraform applied (or destroyed) successfully; carries the Terraform outputs.",
    ),
    EventSpec(
        ProvisioningFailedEvent,
        ProvisioningFailed,
        Service.PROVISIONER,
        (Service.NOTIFIER,),
        "Provisioning failed or was stopped; carries the phase, a short reason, the last "
        "lines of the Terraform error and the log link.",
    ),
    EventSpec(
        TicketUpdatedEvent,
        TicketUpdated,
        Service.NOTIFIER,
        (),
        "A lifecycle event was written back to the ticket (audit trail; archived).",
    ),
    EventSpec(
        WriteBackFailedEvent,
        WriteBackFailed,
        Service.NOTIFIER,
        (),
        "Write-back gave up after its retries and the message is parked in the DLQ "
        "(an alarm fires; a redrive delivers it later).",
    ),
    EventSpec(
        OpsCommandExecutedEvent,
        OpsCommandExecuted,
        Service.OPS_API,
        (),
        "Audit record of one ops-API call: caller, targets, commands, outcome.",
    ),
)

_BY_TYPE = {spec.type: spec for spec in EVENT_CATALOG}
_BY_DATA = {spec.data_model: spec for spec in EVENT_CATALOG}


def spec_for_type(event_type: str) -> EventSpec:
    """Catalog entry of a CloudEvent type; ``KeyError`` names unknown types."""
    try:
        return _BY_TYPE[event_type]
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}") from None


def spec_for_data(data: ContractModel) -> EventSpec:
    """Catalog entry of an event's data model."""
    try:
        return _BY_DATA[type(data)]
    except KeyError:
        raise KeyError(f"{type(data).__name__} is not the data of any catalogued event") from None
