"""The canonical provisioning request: what every ticket becomes after intake.

ServiceNow and Jira bodies differ per site; intake maps them (through configuration)
onto these models, and nothing downstream ever sees a vendor payload.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Action",
    "ApprovalState",
    "ContractModel",
    "ParameterValue",
    "ProductName",
    "ProvisioningRequest",
    "Requester",
    "TicketRef",
    "TicketSystem",
    "derive_request_id",
    "utc_now",
]

# ServiceNow record numbers (RITM0010042, REQ0010040) and Jira issue keys (ITSM-42).
_SERVICENOW_NUMBER = re.compile(r"^[A-Z]{2,8}\d{7,12}$")
_JIRA_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,254}-[1-9]\d*$")
# sys_id is 32 lower-case hex characters; Jira issue ids are decimal.
_SERVICENOW_SYS_ID = re.compile(r"^[0-9a-f]{32}$")
_JIRA_ISSUE_ID = re.compile(r"^[1-9]\d*$")

ProductName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,62}$", examples=["ec2-app"])]
"""A product is a folder of data (module, variable schema, policy); its name is a slug."""

ParameterValue = str | int | float | bool | list[str] | None
"""Parameter values are typed JSON scalars (numbers sent as strings are coerced by intake)."""


class ContractModel(BaseModel):
    """Base of every contract: immutable, strict about unknown fields, JSON-friendly.

    Validators are built on first use (``defer_build``): each function uses a handful
    of the contracts, and compiling all of them would cost every cold start ~90 ms.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, defer_build=True
    )


class TicketSystem(StrEnum):
    """The ITSM system a ticket lives in."""

    SERVICENOW = "servicenow"
    JIRA = "jira"


class Action(StrEnum):
    """Lifecycle action a ticket asks for on its product instance."""

    CREATE = "create"
    UPDATE = "update"
    DESTROY = "destroy"


class ApprovalState(StrEnum):
    """Where the ticket stands on approval when intake sees it."""

    NOT_REQUIRED = "not_required"
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class TicketRef(ContractModel):
    """Identifies one ticket: the CloudEvent ``subject`` is ``str(ticket)``."""

    system: TicketSystem
    key: Annotated[str, Field(examples=["RITM0010042", "ITSM-42"], max_length=300)]
    """Human-facing key: ServiceNow number or Jira issue key."""
    internal_id: Annotated[
        str, Field(examples=["9d385017c611228701d22104cc95c371", "10500"], max_length=64)
    ]
    """The system's own id: ServiceNow sys_id or Jira issue id (write-back uses it)."""
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)]
    """Where a person opens the ticket."""

    @model_validator(mode="after")
    def _key_and_id_match_system(self) -> Self:
        if self.system is TicketSystem.SERVICENOW:
            key_ok = _SERVICENOW_NUMBER.match(self.key)
            id_ok = _SERVICENOW_SYS_ID.match(self.internal_id)
            expected = "a number like RITM0010042 and a 32-hex-digit sys_id"
        else:
            key_ok = _JIRA_KEY.match(self.key)
            id_ok = _JIRA_ISSUE_ID.match(self.internal_id)
            expected = "an issue key like ITSM-42 and a numeric issue id"
        if not (key_ok and id_ok):
            raise ValueError(
                f"{self.system.value} ticket reference needs {expected}; "
                f"got key={self.key!r} internal_id={self.internal_id!r}"
            )
        return self

    def __str__(self) -> str:
        return f"{self.system.value}:{self.key}"


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
"""What the contracts accept as an e-mail address (one @, a dot in the domain, no spaces)."""


class Requester(ContractModel):
    """Who asked. ``id`` is the ITSM user id (ServiceNow user_name, Jira accountId)."""

    id: Annotated[str, Field(min_length=1, max_length=128)]
    name: Annotated[str | None, Field(max_length=256)] = None
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320)] | None = None


class ProvisioningRequest(ContractModel):
    """One validated request to create, update or destroy one product instance."""

    request_id: Annotated[str, Field(pattern=r"^req-[0-9a-f]{8,32}$", examples=["req-7f3a9c21"])]
    """Correlates every event of this request; see :func:`derive_request_id`."""
    ticket: TicketRef
    product: ProductName
    action: Action
    parameters: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], ParameterValue]
    """Product variables, already validated against the product's variable schema; empty
    for a destroy, which names the instance and nothing else (the provisioner destroys
    what its ledger recorded for it)."""
    requester: Requester
    environment: (
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", examples=["dev", "prod"])] | None
    ) = None
    """Required for create and update; a destroy does not restate it (envelopes drop an
    absent value, so it must be optional, not merely nullable)."""
    cost_center: Annotated[str, Field(min_length=1, max_length=64, examples=["CC-1042"])] | None = (
        None
    )
    """Required for create and update; a destroy does not restate it."""
    approval: ApprovalState
    received_at: AwareDatetime
    instance: TicketRef | None = None
    """The ticket whose product instance this request acts on, when it is another ticket
    (a modify or decommission catalog item); ``None`` means this ticket's own instance."""

    @model_validator(mode="after")
    def _environment_and_cost_center_unless_destroy(self) -> Self:
        if self.action is not Action.DESTROY and (
            self.environment is None or self.cost_center is None
        ):
            raise ValueError(f"{self.action.value} requests need an environment and a cost center")
        if self.request_id != derive_request_id(self.instance or self.ticket, self.product):
            raise ValueError("request_id must be derived from the instance ticket and product")
        return self


def derive_request_id(ticket: TicketRef, product: str) -> str:
    """Derive the stable request id of a ticket's product instance.

    The same ticket and product always give the same id, so a webhook delivered five
    times correlates to one request (one ledger item: ticket + product). Modify and
    decommission items pass the original ticket, so they act on the same instance.
    """
    digest = hashlib.sha256(f"{ticket}|{product}".encode()).hexdigest()
    return f"req-{digest[:16]}"


def utc_now() -> datetime:
    """Current time, timezone-aware UTC (contracts never carry naive datetimes)."""
    return datetime.now(UTC)
