"""Intake: one authenticated delivery in, at most one request event out.

The flow, for every delivery:

1. size (413) and media type (415) before anything is parsed;
2. the source must be configured (404) and the delivery authenticated (401);
3. the body is normalized through the configuration (400 when no ticket is known);
4. the product's variables are coerced and validated (400), then checked against the
   policy (422) — a refused request still publishes ``request.rejected`` so the
   ticket is told why;
5. the approval gate decides between ``received``, ``approval-required`` and
   ``approved``;
6. the event is published exactly once per meaning (ticket, instance, product,
   action, outcome): a repeat gets the original reply and publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from intake.domain.auth import authenticate_jira, authenticate_servicenow
from intake.domain.errors import (
    BusUnavailableError,
    DeduplicationStoreUnavailableError,
    DeliveryInProgressError,
    FieldError,
    MalformedPayloadError,
    PayloadTooLargeError,
    SourceDisabledError,
    UnsupportedMediaTypeError,
)
from intake.domain.jira import normalize_jira
from intake.domain.policy import evaluate_policy
from intake.domain.products import UnknownProductError, validate_variables
from intake.domain.servicenow import normalize_servicenow
from intake.domain.submission import Ignored, Submission
from intake.settings import IntakeSettings
from selfservice_contracts.envelope import build_event
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
from selfservice_runtime.dedupe import DeduplicationUnavailableError, DuplicateInProgressError
from selfservice_runtime.json_body import InvalidJsonBodyError, parse_json_object
from selfservice_runtime.publisher import EventPublisher, PublishError

__all__ = [
    "Deduplicator",
    "Delivery",
    "IntakeService",
    "Outcome",
    "Reply",
    "SecretIds",
    "SecretStore",
]

Source = Literal["servicenow", "jira"]
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
_EVENT_IDS = uuid.UUID("6b1f3c2e-8d4a-4f7b-9e2c-5a0d1b3c4e5f")
_PRODUCT_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to a webhook endpoint; header names lower-cased."""

    source: Source
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class Reply:
    """The HTTP answer and what it meant (for metrics)."""

    status_code: int
    body: dict[str, Any]
    outcome: Outcome

    def to_json(self) -> dict[str, Any]:
        """What the deduplicator stores and replays."""
        return {"status_code": self.status_code, "body": self.body, "outcome": self.outcome}


class SecretStore(Protocol):
    """Where the webhook secrets come from (Secrets Manager / SSM SecureString)."""

    def values(self, secret_id: str) -> list[str]:
        """Accepted values of a secret, current first (two during a rotation)."""
        ...


class Deduplicator(Protocol):
    """Runs an action once per key and replays its stored reply afterwards."""

    def once(self, key: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The action's result, computed now or replayed from the first time."""
        ...


@dataclass(frozen=True)
class SecretIds:
    """Which secret holds each credential (ids or ARNs, never values)."""

    servicenow_hmac: str
    servicenow_basic_auth: str
    jira_webhook: str
    jira_automation_token: str


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class IntakeService:
    """Everything intake decides, with its adapters passed in."""

    settings: IntakeSettings
    secrets: SecretStore
    secret_ids: SecretIds
    publisher: EventPublisher
    deduplicator: Deduplicator

    def handle(self, delivery: Delivery) -> Reply:
        """Answer one delivery; raises :class:`IntakeError` when no ticket can be told."""
        if len(delivery.body) > self.settings.max_body_bytes:
            raise PayloadTooLargeError(f"body exceeds {self.settings.max_body_bytes} bytes")
        if not _is_json(delivery.headers.get("content-type", "")):
            raise UnsupportedMediaTypeError("send the body as application/json")
        delivery_id = self._authenticate(delivery)
        body = self._parse_json(delivery.body)
        submission = self._normalize(delivery.source, body, delivery_id)
        if isinstance(submission, Ignored):
            return Reply(200, {"status": "ignored", "reason": submission.reason}, "ignored")
        return self._decide(submission, delivery.received_at)

    # -- steps ---------------------------------------------------------------

    def _authenticate(self, delivery: Delivery) -> str | None:
        now = delivery.received_at.timestamp()
        if delivery.source == "servicenow":
            source = self.settings.servicenow
            if source is None:
                raise SourceDisabledError("servicenow deliveries are not configured")
            return authenticate_servicenow(
                source.auth,
                delivery.headers,
                delivery.body,
                hmac_secrets=self._secrets(source.auth.hmac, self.secret_ids.servicenow_hmac),
                basic_secrets=self._secrets(
                    source.auth.basic, self.secret_ids.servicenow_basic_auth
                ),
                now=now,
            )
        jira = self.settings.jira
        if jira is None:
            raise SourceDisabledError("jira deliveries are not configured")
        authenticate_jira(
            jira.auth,
            delivery.headers,
            delivery.body,
            webhook_secrets=self._secrets(jira.auth.hub_signature, self.secret_ids.jira_webhook),
            token_secrets=self._secrets(
                bool(jira.auth.automation_token_header), self.secret_ids.jira_automation_token
            ),
        )
        return delivery.headers.get("x-atlassian-webhook-identifier")

    def _secrets(self, enabled: bool, secret_id: str) -> list[str]:
        return self.secrets.values(secret_id) if enabled else []

    @staticmethod
    def _parse_json(body: bytes) -> dict[str, Any]:
        try:
            return parse_json_object(body)
        except InvalidJsonBodyError as exc:
            raise MalformedPayloadError(
                "body is not a valid JSON object", [FieldError("body", exc.reason[:200])]
            ) from None

    def _normalize(
        self, source: Source, body: dict[str, Any], delivery_id: str | None
    ) -> Submission | Ignored:
        if source == "servicenow" and self.settings.servicenow is not None:
            return normalize_servicenow(body, self.settings.servicenow, delivery_id)
        if source == "jira" and self.settings.jira is not None:
            return normalize_jira(body, self.settings.jira, delivery_id)
        raise SourceDisabledError(f"{source} deliveries are not configured")

    def _decide(self, submission: Submission, received_at: datetime) -> Reply:
        product = submission.product
        instance = submission.instance or submission.ticket
        request_id = derive_request_id(instance, product or "unmapped")
        if product is None:
            return self._reject(
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
            return self._reject(
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
            return self._reject(
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
            return self._reject(submission, request_id, 400, reasons)
        gate = self._approval_gate(submission, product, variables)
        if isinstance(gate, list):
            return self._reject(submission, request_id, 422, gate)
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
        body = {"request_id": request_id, "ticket": str(submission.ticket), "status": outcome}
        return self._publish_once(key, data, Reply(202, body, outcome))

    def _approval_gate(
        self, submission: Submission, product: str, variables: dict[str, Any]
    ) -> tuple[bool, str] | list[RejectionReason]:
        """Whether the request needs an approval, and why; or the policy's refusals."""
        needs_approval = False
        approval_reason = ""
        if submission.action is not Action.DESTROY:
            decision = evaluate_policy(product, self.settings.policies.get(product), variables)
            if decision.reasons:
                return decision.reasons
            needs_approval = decision.approval_required
            approval_reason = decision.approval_reason
        if submission.itsm_approval is ApprovalState.REQUESTED:
            needs_approval = True
            approval_reason = approval_reason or "the request waits for its approval in the ITSM"
        return needs_approval, approval_reason

    def _reject(
        self,
        submission: Submission,
        request_id: str,
        status_code: int,
        reasons: list[RejectionReason],
    ) -> Reply:
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
        return self._publish_once(key, data, Reply(status_code, body, "rejected"))

    def _publish_once(self, key: str, data: ContractModel, reply: Reply) -> Reply:
        executed = False

        def publish() -> dict[str, Any]:
            nonlocal executed
            executed = True
            # The event id is derived from the dedupe key: even a republish after the
            # dedupe record expired carries the same id, and consumers dedupe on it.
            event = build_event(data, event_id=str(uuid.uuid5(_EVENT_IDS, key)))
            try:
                self.publisher.publish([event])
            except PublishError as exc:
                raise BusUnavailableError("the event bus is unavailable; retry later") from exc
            return reply.to_json()

        try:
            stored = self.deduplicator.once(key, publish)
        except DuplicateInProgressError:
            raise DeliveryInProgressError(
                "the same request is being processed; retry shortly"
            ) from None
        except DeduplicationUnavailableError as exc:
            # A 500 here would read as a bug to the sender; this is "retry later".
            raise DeduplicationStoreUnavailableError(
                "intake cannot record the delivery right now; retry later"
            ) from exc
        if executed:
            return reply
        return Reply(stored["status_code"], stored["body"], "duplicate")
