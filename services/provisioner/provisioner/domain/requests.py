"""What a request event is to the provisioner: its kind, and the request a destroy acts on."""

from __future__ import annotations

from provisioner.domain.lifecycle import RequestKind
from selfservice_contracts.events import (
    ApprovalRequiredEvent,
    RequestApprovedEvent,
    RequestReceivedEvent,
)
from selfservice_contracts.request import ProvisioningRequest

__all__ = ["REQUEST_KINDS", "RequestEvent", "destroying"]

REQUEST_KINDS: dict[type, RequestKind] = {
    RequestReceivedEvent: "received",
    ApprovalRequiredEvent: "approval_required",
    RequestApprovedEvent: "approved",
}
RequestEvent = RequestReceivedEvent | ApprovalRequiredEvent | RequestApprovedEvent


def destroying(recorded: ProvisioningRequest, destroy: ProvisioningRequest) -> ProvisioningRequest:
    """The destroy request, acting on what the ledger recorded for the instance.

    A decommission names the instance and nothing else (no environment, cost center or
    variables): Terraform destroys with the variables the instance was last built with.
    The ticket, requester and approval stay the destroy's own (write-back goes there).
    """
    return destroy.model_copy(
        update={
            "parameters": dict(recorded.parameters),
            "environment": recorded.environment,
            "cost_center": recorded.cost_center,
        }
    )
