"""ServiceNow deliveries: the body the shipped sender (itsm/servicenow/) sends.

ServiceNow has no fixed outbound schema, so ``itsm/servicenow/`` (the business rule that
queues a delivery and ``script-action.js`` that builds, signs and sends it) and this
module are one contract, kept in step by ``tests/intake/test_business_rule.py``, which
runs the scripts and parses what they send.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intake.domain.errors import FieldError, MalformedPayloadError
from intake.domain.submission import Submission, malformed_from_validation, requester
from intake.settings import CatalogItem, ServiceNowSource
from selfservice_contracts.request import Action, ApprovalState, Requester, TicketRef, TicketSystem

__all__ = ["normalize_servicenow"]

SysId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]

_APPROVALS = {
    "approved": ApprovalState.APPROVED,
    "requested": ApprovalState.REQUESTED,
    "rejected": ApprovalState.REJECTED,
    "cancelled": ApprovalState.REJECTED,
    "not requested": ApprovalState.NOT_REQUIRED,
    "not_requested": ApprovalState.NOT_REQUIRED,
    "not_required": ApprovalState.NOT_REQUIRED,
    "": ApprovalState.NOT_REQUIRED,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class _Reference(_Model):
    sys_id: SysId
    number: str | None = None
    name: str | None = None


class _User(_Model):
    sys_id: SysId | None = None
    user_name: Annotated[str, Field(min_length=1, max_length=128)]
    name: Annotated[str | None, Field(max_length=256)] = None
    email: str | None = None


class ServiceNowDelivery(_Model):
    """Body of ``itsm/servicenow/script-action.js`` (version 1)."""

    event: Literal["sc_req_item.inserted", "sc_req_item.updated", "sc_req_item.cancelled"]
    instance: Annotated[str, Field(pattern=r"^https://[^/\s]+/?$")]
    number: Annotated[str, Field(pattern=r"^[A-Z]{2,8}\d{7,12}$")]
    sys_id: SysId
    cat_item: _Reference
    requested_for: _User | None = None
    opened_by: _User | None = None
    approval: Annotated[str, Field(max_length=32)] = ""
    variables: dict[Annotated[str, Field(max_length=100)], str | int | float | bool | None]
    display_values: dict[str, str | None] = Field(default_factory=dict)


def _catalog_item(source: ServiceNowSource, item: _Reference) -> CatalogItem | None:
    return source.catalog.get(item.sys_id) or (source.catalog.get(item.name) if item.name else None)


def _requester(delivery: ServiceNowDelivery) -> Requester:
    user = delivery.requested_for or delivery.opened_by
    if user is None:
        raise MalformedPayloadError(
            "not a valid servicenow delivery",
            [FieldError("requested_for", "requested_for or opened_by is required")],
        )
    return requester("servicenow", user.user_name, user.name, user.email)


def _ticket_url(instance: str, sys_id: str) -> str:
    return f"{instance}/sc_req_item.do?sys_id={sys_id}"


def normalize_servicenow(
    body: Any, source: ServiceNowSource, delivery_id: str | None
) -> Submission:
    """Map a business-rule body to a :class:`Submission` through the catalog configuration."""
    try:
        delivery = ServiceNowDelivery.model_validate(body)
    except ValidationError as exc:
        raise malformed_from_validation("servicenow", exc.errors()) from None
    instance = delivery.instance.rstrip("/")
    if instance != source.instance_url:
        raise MalformedPayloadError(
            "not a valid servicenow delivery",
            [FieldError("instance", "is not the ServiceNow instance this intake serves")],
        )
    approval = _APPROVALS.get(delivery.approval.lower())
    if approval is None:
        raise MalformedPayloadError(
            "not a valid servicenow delivery",
            [FieldError("approval", f"unknown approval state {delivery.approval!r}")],
        )
    ticket = TicketRef(
        system=TicketSystem.SERVICENOW,
        key=delivery.number,
        internal_id=delivery.sys_id,
        url=_ticket_url(instance, delivery.sys_id),
    )
    requester = _requester(delivery)
    item = _catalog_item(source, delivery.cat_item)
    if item is None:
        return Submission(
            ticket=ticket,
            product=None,
            action=Action.CREATE,
            variables={},
            requester=requester,
            itsm_approval=approval,
            delivery_id=delivery_id,
        )
    problems: list[FieldError] = []
    variables: dict[str, Any] = {}
    for name, value in delivery.variables.items():
        if name == item.instance_variable or name in item.ignore_variables:
            continue
        if name in item.display_values:
            value = delivery.display_values.get(name) or value  # noqa: PLW2901
        variables[item.variables.get(name, name)] = value
    instance_ref = None
    if item.instance_variable:
        sys_id = delivery.variables.get(item.instance_variable)
        number = delivery.display_values.get(item.instance_variable)
        try:
            instance_ref = TicketRef(
                system=TicketSystem.SERVICENOW,
                key=str(number),
                internal_id=str(sys_id),
                url=_ticket_url(instance, str(sys_id)),
            )
        except ValidationError:
            problems.append(
                FieldError(
                    item.instance_variable,
                    "must reference the original request item (sys_id and number)",
                )
            )
    action = Action.DESTROY if delivery.event == "sc_req_item.cancelled" else item.action
    # The business rule sends "updated" only when the approval changed (business-rule.js).
    given = delivery.event == "sc_req_item.updated" and approval is ApprovalState.APPROVED
    return Submission(
        ticket=ticket,
        product=item.product,
        action=action,
        variables=variables,
        requester=requester,
        itsm_approval=approval,
        instance=instance_ref,
        delivery_id=delivery_id,
        approval_given=given,
        problems=problems,
    )
