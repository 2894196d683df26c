"""Webhook authentication: every delivery proves its origin; there is no "off".

All checks run over the raw body bytes with constant-time comparisons, and accept any
of the secrets given (current first, then previous) so a secret can be rotated without
refusing deliveries signed with the old one. A failure raises
:class:`AuthenticationError` whose reason is for metrics only: the caller sees a bare 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from intake.domain.errors import AuthenticationError
from intake.settings import JiraAuth, ServiceNowAuth

__all__ = [
    "TIMESTAMP_TOLERANCE_SECONDS",
    "authenticate_jira",
    "authenticate_servicenow",
    "sign_standard_webhook",
    "verify_basic_auth",
    "verify_hub_signature",
    "verify_standard_webhook",
    "verify_token",
]

TIMESTAMP_TOLERANCE_SECONDS = 300
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
HUB_SIGNATURE = "x-hub-signature"
AUTHORIZATION = "authorization"
MAX_HEADER_LENGTH = 4096
MAX_WEBHOOK_ID_LENGTH = 256
MAX_TIMESTAMP_DIGITS = 12
SHA256_HEX_LENGTH = 64


def _key(secret: str) -> bytes:
    # Standard Webhooks secrets are "whsec_" + base64 of the key bytes.
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign_standard_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a delivery (used by tests and the sandbox)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhook(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float
) -> str:
    """Verify a Standard Webhooks signature; returns the ``webhook-id`` (the delivery id)."""
    webhook_id = headers.get(WEBHOOK_ID, "")
    timestamp = headers.get(WEBHOOK_TIMESTAMP, "")
    signature_header = headers.get(WEBHOOK_SIGNATURE, "")
    if not (webhook_id and timestamp and signature_header):
        raise AuthenticationError("missing_credentials")
    if len(signature_header) > MAX_HEADER_LENGTH or len(webhook_id) > MAX_WEBHOOK_ID_LENGTH:
        raise AuthenticationError("malformed_credentials")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        raise AuthenticationError("malformed_credentials")
    if abs(now - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
        raise AuthenticationError("stale_timestamp")
    offered = [
        part.split(",", 1)[1].encode()
        for part in signature_header.split()
        if part.startswith("v1,") and "," in part
    ]
    if not offered:
        raise AuthenticationError("malformed_credentials")
    for secret in secrets:
        expected = sign_standard_webhook(secret, webhook_id, int(timestamp), body)[3:].encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return webhook_id
    raise AuthenticationError("bad_signature")


def verify_hub_signature(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None:
    """Verify Jira's ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>``."""
    header = headers.get(HUB_SIGNATURE, "")
    if not header:
        raise AuthenticationError("missing_credentials")
    method, _, offered = header.partition("=")
    if method != "sha256" or len(offered) != SHA256_HEX_LENGTH:
        raise AuthenticationError("malformed_credentials")
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode(), offered.lower().encode()):
            return
    raise AuthenticationError("bad_signature")


def verify_token(headers: Mapping[str, str], header_name: str, secrets: Sequence[str]) -> None:
    """Verify a static token header (Jira Automation cannot sign its requests)."""
    offered = headers.get(header_name.lower(), "")
    if not offered:
        raise AuthenticationError("missing_credentials")
    if len(offered) > MAX_HEADER_LENGTH:
        raise AuthenticationError("malformed_credentials")
    matched = False
    for secret in secrets:
        # Compare with every secret (no early exit) so timing does not tell which matched.
        matched |= hmac.compare_digest(offered.encode(), secret.encode())
    if not matched:
        raise AuthenticationError("bad_token")


def verify_basic_auth(headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Verify ``Authorization: Basic`` against ``username:password`` secrets."""
    header = headers.get(AUTHORIZATION, "")
    scheme, _, encoded = header.partition(" ")
    if not header:
        raise AuthenticationError("missing_credentials")
    if scheme.lower() != "basic" or len(encoded) > MAX_HEADER_LENGTH:
        raise AuthenticationError("malformed_credentials")
    try:
        offered = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationError("malformed_credentials") from None
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(offered, secret.encode())
    if not matched:
        raise AuthenticationError("bad_basic_auth")


def authenticate_servicenow(
    auth: ServiceNowAuth,
    headers: Mapping[str, str],
    body: bytes,
    *,
    hmac_secrets: Sequence[str],
    basic_secrets: Sequence[str],
    now: float,
) -> str | None:
    """Every enabled method must pass. Returns the delivery id when HMAC is used."""
    delivery_id = None
    if auth.basic:
        verify_basic_auth(headers, basic_secrets)
    if auth.hmac:
        delivery_id = verify_standard_webhook(headers, body, hmac_secrets, now)
    return delivery_id


def authenticate_jira(
    auth: JiraAuth,
    headers: Mapping[str, str],
    body: bytes,
    *,
    webhook_secrets: Sequence[str],
    token_secrets: Sequence[str],
) -> None:
    """Admin webhooks sign, Automation rules send a token: either, as configured."""
    if auth.hub_signature and HUB_SIGNATURE in headers:
        verify_hub_signature(headers, body, webhook_secrets)
        return
    if auth.automation_token_header:
        verify_token(headers, auth.automation_token_header, token_secrets)
        return
    raise AuthenticationError("missing_credentials")
