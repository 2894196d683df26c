"""Event contracts: the typed CloudEvent of every event type, and the catalog.

The data each event carries is in :mod:`selfservice_contracts.event_data`; every name
of it is re-exported here, so ``from selfservice_contracts.events import ...`` reaches
all of the event contracts.

Every message between services is a CloudEvents 1.0 structured event carried as the
``detail`` of an EventBridge event. Types name what happened, past tense, versioned.
Adding a type means: a data model in ``event_data.py``, an event model and a catalog
entry here, a sample under ``events/catalog/``, then ``make schemas`` (tests fail until
all exist).
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, TypeAdapter, model_validator

from selfservice_contracts.event_data import (
    ApprovalRequired,
    EventRef,
    IamCaller,
    OpsCommandExecuted,
    OpsTargets,
    PlanArtifacts,
    ProvisioningFailed,
    ProvisioningPlanned,
    ProvisioningRefused,
    ProvisioningStarted,
    ProvisioningSucceeded,
    RejectionReason,
    RequestApproved,
    RequestId,
    RequestReceived,
    RequestRejected,
    Service,
    TicketEventData,
    TicketUpdated,
    WriteBackChannel,
    WriteBackFailed,
)
from selfservice_contracts.request import ContractModel

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
    "ProvisioningRefused",
    "ProvisioningRefusedEvent",
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


class ProvisioningRefusedEvent(CloudEventModel):
    type: Literal["selfservice.provisioning.refused.v1"]
    data: ProvisioningRefused


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
    | ProvisioningRefusedEvent
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
        ProvisioningRefusedEvent,
        ProvisioningRefused,
        Service.PROVISIONER,
        (Service.NOTIFIER,),
        "A request the provisioner did not act on (nothing to destroy, a build under way, "
        "approved while its plan is made); nothing changed, the reason is written back.",
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
