"""Verify AWS SigV4 signatures the way API Gateway does for AWS_IAM routes.

The signature is recomputed with botocore's own signer from the request as received
(method, path, query, the signed headers, the body) and the secret key of the access
key it names, then compared in constant time. Unsigned or badly signed requests get the
403 bodies API Gateway answers with; a good one yields the caller's identity as
``requestContext.authorizer.iam`` carries it.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["Caller", "SignatureError", "verify"]

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW_SECONDS = 300


class SignatureError(Exception):
    """The request is not validly signed; ``body`` is what API Gateway answers (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.body = {"message": message}


@dataclass(frozen=True)
class Caller:
    """The verified identity."""

    access_key: str
    account_id: str
    user_arn: str
    user_id: str

    def authorizer(self) -> dict[str, dict[str, str | None]]:
        """``requestContext.authorizer`` of payload format 2.0 for an IAM caller."""
        return {
            "iam": {
                "accessKey": self.access_key,
                "accountId": self.account_id,
                "callerId": self.user_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": self.user_arn,
                "userId": self.user_id,
            }
        }


def verify(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    secrets: dict[str, tuple[str, Caller]],
    region: str,
    now: datetime | None = None,
) -> Caller:
    """The caller of a validly signed request, or :class:`SignatureError`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    authorization = lowered.get("authorization", "")
    if not authorization:
        raise SignatureError("Missing Authentication Token")
    match = _AUTHORIZATION.match(authorization)
    if not match or match["service"] != "execute-api" or match["region"] != region:
        raise SignatureError("Authorization header requires a valid execute-api credential scope")
    entry = secrets.get(match["key"])
    if entry is None:
        raise SignatureError("The security token included in the request is invalid.")
    secret, caller = entry
    amz_date = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("Authorization header requires 'X-Amz-Date'") from None
    if abs(((now or datetime.now(UTC)) - signed_at).total_seconds()) > MAX_SKEW_SECONDS:
        raise SignatureError("Signature expired")
    signed = match["signed"].split(";")
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={name: lowered[name] for name in signed if name in lowered},
    )
    signer = SigV4Auth(Credentials(match["key"], secret), "execute-api", region)
    request.context["timestamp"] = amz_date
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError(
            "The request signature we calculated does not match the signature you provided."
        )
    return caller
