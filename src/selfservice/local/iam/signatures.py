"""SigV4 signatures checked against the embedded IAM's secrets (header and presigned)."""

from __future__ import annotations

import calendar
import hmac
import time
from typing import Any
from urllib.parse import parse_qs

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from selfservice.local.iam.identities import CredentialError, Identity, resolve

__all__ = [
    "SIGNED_PAYLOAD_HEADER",
    "credential_scope",
    "presigned_check",
    "sign_check",
    "verify_signature",
]

# Set by a local front that forwards a signed call with a changed body (the SHA-256 of
# the body the caller signed); the same name as eventbridge_front.SIGNED_PAYLOAD_HEADER.
SIGNED_PAYLOAD_HEADER = "X-Selfservice-Signed-Payload-Sha256"


def credential_scope(authorization: str) -> tuple[str, str, str]:
    """(access key id, region, signing service) of a SigV4 Authorization header."""
    credential = authorization.partition("Credential=")[2].partition(",")[0]
    parts = credential.split("/")
    if len(parts) < 5:  # noqa: PLR2004
        raise CredentialError("Missing", "Request is missing Authentication Token")
    return parts[0], parts[2], parts[3]


def sign_check(
    *,
    method: str,
    path: str,
    headers: Any,
    body: bytes | str,
    secret: str,
    s3: bool,
) -> None:
    """Raise :class:`CredentialError` unless ``Authorization`` is right for ``secret``."""
    authorization = headers.get("Authorization", "")
    key, region, service = credential_scope(authorization)
    signed = authorization.partition("SignedHeaders=")[2].partition(",")[0].split(";")
    given = authorization.partition("Signature=")[2].partition(",")[0].strip()
    wanted = {name.lower() for name in signed}
    kept = {k: v for k, v in headers.items() if k.lower() in wanted}
    request = AWSRequest(method=method, url=path, data=body, headers=kept)
    request.context["timestamp"] = headers.get("X-Amz-Date", "")
    token = headers.get("X-Amz-Security-Token")
    credentials = Credentials(key, secret, token)
    auth = (S3SigV4Auth if s3 else SigV4Auth)(credentials, service, region)
    declared = headers.get(SIGNED_PAYLOAD_HEADER)
    if declared and not s3:
        # A local front changed the body of a signed call and says which body was
        # signed: the signature is checked over that one.
        auth.payload = lambda _request: str(declared)  # type: ignore[method-assign,assignment]
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, given):
        raise CredentialError(
            "Signature",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )


def presigned_check(method: str, path: str, headers: Any, identity: Identity) -> None:
    """Raise :class:`CredentialError` unless a presigned URL's signature and age are good."""
    base, _, raw_query = path.partition("?")
    pairs = [pair for pair in raw_query.split("&") if pair]
    given = ""
    kept = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name == "X-Amz-Signature":
            given = value
        else:
            kept.append(pair)
    query = {k: v[0] for k, v in parse_qs(raw_query).items()}
    key, _, region, service = query.get("X-Amz-Credential", "////").split("/")[:4]
    stamp = query.get("X-Amz-Date", "")
    try:
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        expires = int(query.get("X-Amz-Expires", "0"))
    except ValueError:
        raise CredentialError("Signature", "Invalid X-Amz-Date or X-Amz-Expires") from None
    if time.time() > signed_at + expires:
        raise CredentialError("Expired", "Request has expired")
    signed = {name.lower() for name in query.get("X-Amz-SignedHeaders", "host").split(";")}
    request = AWSRequest(
        method=method,
        url=f"{base}?{'&'.join(kept)}",
        headers={k: v for k, v in headers.items() if k.lower() in signed},
    )
    request.context["timestamp"] = stamp
    credentials = Credentials(key, identity.secret_access_key, identity.session_token)
    auth = S3SigV4QueryAuth(credentials, service, region, expires=expires)
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, given):
        raise CredentialError(
            "Signature",
            "The request signature we calculated does not match the signature you provided.",
        )


def verify_signature(
    account_id: str, *, method: str, path: str, headers: Any, body: bytes | str
) -> Identity:
    """The identity that validly signed a request (SigV4 in the Authorization header)."""
    authorization = headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256"):
        raise CredentialError("Missing", "Request is missing Authentication Token")
    key, _, service = credential_scope(authorization)
    identity = resolve(account_id, key, headers.get("X-Amz-Security-Token"))
    sign_check(
        method=method,
        path=path,
        headers=headers,
        body=body,
        secret=identity.secret_access_key,
        s3=service == "s3",
    )
    return identity
