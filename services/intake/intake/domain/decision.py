"""What a submission becomes: one event, the reply the sender gets, and its meaning.

The product's variables are coerced and validated (400), then checked against the
policy (422) — a refused request still becomes ``request.rejected`` so the ticket is
told why; otherwise the approval gate decides between ``received``,
``approval-required`` and ``approved``. The decision's key is the request's meaning
(ticket, instance, product, action, outcome): what deduplication is keyed on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from intake.domain.policy import evaluate_policy
from intake.domain.products import UnknownProductError, validate_variables
from intake.domain.submission import Submission
from intake.settings import IntakeSettings
from selfservice_contracts.events import (
    ApprovalRequired,
    RejectionReason,
    RequestApproved,
    RequestReceived,
    RequestRejected,
)
from selfservice_contracts.request import (
    Action,
    ApprovalState,
    ContractModel,
    ProvisioningRequest,
    TicketSystem,
    derive_request_id,
)

__all__ = ["Decision", "Outcome", "Reply", "decide"]

Outcome = Literal["received", "approval_required", "approved", "rejected", "ignored", "duplicate"]
_UNDECLARED_REMEDY = {
    TicketSystem.SERVICENOW: (
        "; if the catalog item's form has it only for the requester, add it to the item's "
        "ignore_variables in the intake configuration"
    ),
    TicketSystem.JIRA: (
        "; map the field to a variable of the product (jira.fields, jira.automation_fields) "
        "or leave it out of the Automation body"
    ),
}
"""How a sender stops a variable the product does not declare from refusing the request."""
_PRODUCT_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class Reply:
    """The HTTP answer and what it meant (for metrics)."""

    status_code: int
    body: dict[str, Any]
    outcome: Outcome

    def to_json(self) -> dict[str, Any]:
        """What the deduplicator stores and replays."""
        return {"status_code": self.status_code, "body": self.body, "outcome": self.outcome}


@dataclass(frozen=True)
class Decision:
    """The event to publish once per ``key``, and the reply to its first delivery."""

    key: str
    data: ContractModel
    reply: Reply


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def decide(submission: Submission, received_at: datetime, settings: IntakeSettings) -> Decision:
    """The event and reply for one submission (a rejection is a decision too)."""
    product = submission.product
    instance = submission.instance or submission.ticket
    request_id = derive_request_id(instance, product or "unmapped")
    if product is None:
        return _reject(
            submission,
            request_id,
            422,
            [
                RejectionReason(
                    code="unknown_product",
                    message="this catalog item or request type is not mapped to a product",
                )
            ],
        )
    if submission.itsm_approval is ApprovalState.REJECTED:
        return _reject(
            submission,
            request_id,
            422,
            [RejectionReason(code="approval_rejected", message="the approval was rejected")],
        )
    try:
        variables, reasons = validate_variables(
            product,
            submission.variables,
            undeclared_remedy=_UNDECLARED_REMEDY[submission.ticket.system],
        )
    except UnknownProductError:
        return _reject(
            submission,
            request_id,
            422,
            [
                RejectionReason(
                    code="unknown_product",
                    message=f"{product[:64]!r} is not an offered product",
                )
            ],
        )
    if submission.action is Action.DESTROY:
        # A decommission names the instance and nothing else: whatever its form
        # restates is neither checked nor sent, and the provisioner destroys what its
        # ledger recorded for that instance.
        variables, reasons = {}, []
    reasons = [
        *(
            RejectionReason(code="schema_violation", field=p.field[:128], message=p.message)
            for p in submission.problems
        ),
        *reasons,
    ]
    if reasons:
        return _reject(submission, request_id, 400, reasons)
    gate = _approval_gate(submission, product, variables, settings)
    if isinstance(gate, list):
        return _reject(submission, request_id, 422, gate)
    needs_approval, approval_reason = gate
    request = ProvisioningRequest(
        request_id=request_id,
        ticket=submission.ticket,
        product=product,
        action=submission.action,
        parameters=dict(variables),
        requester=submission.requester,
        environment=variables.get("environment"),
        cost_center=variables.get("cost_center"),
        approval=submission.itsm_approval,
        received_at=received_at,
        instance=submission.instance,
    )
    data: ContractModel
    if needs_approval and submission.itsm_approval is not ApprovalState.APPROVED:
        outcome: Outcome = "approval_required"
        data = ApprovalRequired(
            request_id=request_id,
            ticket=submission.ticket,
            request=request,
            policy=approval_reason,
        )
    elif needs_approval:
        outcome = "approved"
        data = RequestApproved(
            request_id=request_id,
            ticket=submission.ticket,
            request=request,
            approved_at=received_at,
        )
    else:
        outcome = "received"
        data = RequestReceived(request_id=request_id, ticket=submission.ticket, request=request)
    key = "|".join(
        [str(submission.ticket), str(instance), product, submission.action.value, outcome]
    )
    if submission.action is Action.UPDATE:
        key += "|" + _digest(variables)  # each distinct change is its own update
    if outcome == "approved" and submission.approval_given and submission.delivery_id:
        # Each approval given is its own: the ITSM sends one delivery (retried with the
        # same id) per change of the approval, so a plan shown again after a re-plan, or
        # after an approval that came before its plan, can be approved again.
        key += "|" + submission.delivery_id
    body = {"request_id": request_id, "ticket": str(submission.ticket), "status": outcome}
    return Decision(key, data, Reply(202, body, outcome))


def _approval_gate(
    submission: Submission, product: str, variables: dict[str, Any], settings: IntakeSettings
) -> tuple[bool, str] | list[RejectionReason]:
    """Whether the request needs an approval, and why; or the policy's refusals."""
    needs_approval = False
    approval_reason = ""
    if submission.action is not Action.DESTROY:
        decision = evaluate_policy(product, settings.policies.get(product), variables)
        if decision.reasons:
            return decision.reasons
        needs_approval = decision.approval_required
        approval_reason = decision.approval_reason
    if submission.itsm_approval is ApprovalState.REQUESTED:
        needs_approval = True
        approval_reason = approval_reason or "the request waits for its approval in the ITSM"
    return needs_approval, approval_reason


def _reject(
    submission: Submission, request_id: str, status_code: int, reasons: list[RejectionReason]
) -> Decision:
    product = submission.product
    data = RequestRejected(
        request_id=request_id,
        ticket=submission.ticket,
        # A name that is not even a product slug (the reasons say so) is left out.
        product=product if product and _PRODUCT_SLUG.match(product) else None,
        action=submission.action,
        reasons=reasons[:50],
    )
    body = {
        "request_id": request_id,
        "ticket": str(submission.ticket),
        "status": "rejected",
        "reasons": [reason.model_dump(exclude_none=True) for reason in reasons],
    }
    key = "|".join(
        [
            str(submission.ticket),
            str(submission.instance or submission.ticket),
            submission.product or "unmapped",
            submission.action.value,
            "rejected",
            _digest(body["reasons"]),
        ]
    )
    return Decision(key, data, Reply(status_code, body, "rejected"))
