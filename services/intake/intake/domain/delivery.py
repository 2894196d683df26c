"""A delivery, from HTTP request to :class:`Submission`: checked, authenticated, normalized.

Before anything is parsed the size (413) and media type (415) are checked; the source
must be configured (404) and the delivery authenticated (401); then the body is
normalized through the source's configuration (400 when no ticket is known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from intake.domain.auth import authenticate_jira, authenticate_servicenow
from intake.domain.errors import (
    FieldError,
    MalformedPayloadError,
    PayloadTooLargeError,
    SourceDisabledError,
    UnsupportedMediaTypeError,
)
from intake.domain.jira import normalize_jira
from intake.domain.ports import SecretStore
from intake.domain.servicenow import normalize_servicenow
from intake.domain.submission import Ignored, Submission
from intake.settings import IntakeSettings
from selfservice_runtime.json_body import InvalidJsonBodyError, parse_json_object

__all__ = ["Delivery", "SecretIds", "Source", "read_delivery"]

Source = Literal["servicenow", "jira"]


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to a webhook endpoint; header names lower-cased."""

    source: Source
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class SecretIds:
    """Which secret holds each credential (ids or ARNs, never values)."""

    servicenow_hmac: str
    servicenow_basic_auth: str
    jira_webhook: str
    jira_automation_token: str


def read_delivery(
    delivery: Delivery, settings: IntakeSettings, secrets: SecretStore, secret_ids: SecretIds
) -> Submission | Ignored:
    """What the delivery asks for; raises :class:`IntakeError` when it is refused."""
    if len(delivery.body) > settings.max_body_bytes:
        raise PayloadTooLargeError(f"body exceeds {settings.max_body_bytes} bytes")
    if not _is_json(delivery.headers.get("content-type", "")):
        raise UnsupportedMediaTypeError("send the body as application/json")
    delivery_id = _authenticate(delivery, settings, secrets, secret_ids)
    body = _parse_json(delivery.body)
    return _normalize(delivery.source, body, delivery_id, settings)


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _authenticate(
    delivery: Delivery, settings: IntakeSettings, secrets: SecretStore, secret_ids: SecretIds
) -> str | None:
    """The sender's delivery id, once the delivery is proven to come from the sender."""

    def values(enabled: bool, secret_id: str) -> list[str]:
        return secrets.values(secret_id) if enabled else []

    now = delivery.received_at.timestamp()
    if delivery.source == "servicenow":
        source = settings.servicenow
        if source is None:
            raise SourceDisabledError("servicenow deliveries are not configured")
        return authenticate_servicenow(
            source.auth,
            delivery.headers,
            delivery.body,
            hmac_secrets=values(source.auth.hmac, secret_ids.servicenow_hmac),
            basic_secrets=values(source.auth.basic, secret_ids.servicenow_basic_auth),
            now=now,
        )
    jira = settings.jira
    if jira is None:
        raise SourceDisabledError("jira deliveries are not configured")
    authenticate_jira(
        jira.auth,
        delivery.headers,
        delivery.body,
        webhook_secrets=values(jira.auth.hub_signature, secret_ids.jira_webhook),
        token_secrets=values(
            bool(jira.auth.automation_token_header), secret_ids.jira_automation_token
        ),
    )
    return delivery.headers.get("x-atlassian-webhook-identifier")


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        return parse_json_object(body)
    except InvalidJsonBodyError as exc:
        raise MalformedPayloadError(
            "body is not a valid JSON object", [FieldError("body", exc.reason[:200])]
        ) from None


def _normalize(
    source: Source, body: dict[str, Any], delivery_id: str | None, settings: IntakeSettings
) -> Submission | Ignored:
    if source == "servicenow" and settings.servicenow is not None:
        return normalize_servicenow(body, settings.servicenow, delivery_id)
    if source == "jira" and settings.jira is not None:
        return normalize_jira(body, settings.jira, delivery_id)
    raise SourceDisabledError(f"{source} deliveries are not configured")
