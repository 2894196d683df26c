"""Authentication: every method, rotation, tolerance, and the failures' reasons."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from intake.domain.auth import (
    authenticate_jira,
    authenticate_servicenow,
    sign_standard_webhook,
    verify_basic_auth,
    verify_hub_signature,
    verify_standard_webhook,
    verify_token,
)
from intake.domain.errors import AuthenticationError
from intake.settings import JiraAuth, ServiceNowAuth

BODY = b'{"number": "RITM0010042", "note": "caf\xc3\xa9"}'
NOW = 1_795_252_503


def _headers(secret: str = "s3cret", timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, "msg_1", timestamp, body),
    }


def _reason(call: object) -> str:
    assert callable(call)
    with pytest.raises(AuthenticationError) as caught:
        call()
    assert str(caught.value) == "unauthorized"  # nothing that helps an attacker
    return caught.value.reason


def test_a_standard_webhook_signature_is_verified_and_returns_the_delivery_id() -> None:
    assert verify_standard_webhook(_headers(), BODY, ["s3cret"], NOW) == "msg_1"


def test_the_signature_matches_the_standard_webhooks_reference_construction() -> None:
    # base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), key from a whsec_ secret.
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = base64.b64encode(
        hmac.new(key, b"msg_1.%d." % NOW + BODY, hashlib.sha256).digest()
    ).decode()
    assert sign_standard_webhook(secret, "msg_1", NOW, BODY) == f"v1,{expected}"
    assert verify_standard_webhook(_headers(secret), BODY, [secret], NOW) == "msg_1"


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    headers = _headers("old-secret")
    assert verify_standard_webhook(headers, BODY, ["new-secret", "old-secret"], NOW) == "msg_1"


def test_several_signatures_in_the_header_are_each_tried() -> None:
    headers = _headers()
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert verify_standard_webhook(headers, BODY, ["s3cret"], NOW) == "msg_1"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: (h, b + b" "), "bad_signature"),
        (lambda h, b: ({**h, "webhook-id": "msg_2"}, b), "bad_signature"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW - 301)}, b), "stale_timestamp"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 301)}, b), "stale_timestamp"),
        (lambda h, b: ({**h, "webhook-timestamp": "yesterday"}, b), "malformed_credentials"),
        (lambda h, b: ({**h, "webhook-signature": "v2,abc"}, b), "malformed_credentials"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
            "missing_credentials",
        ),
        (lambda h, b: ({}, b), "missing_credentials"),
    ],
    ids=["body", "id", "old", "future", "timestamp", "version", "no-id", "none"],
)
def test_standard_webhook_failures(mutate: object, reason: str) -> None:
    assert callable(mutate)
    headers, body = mutate(_headers(), BODY)
    assert _reason(lambda: verify_standard_webhook(headers, body, ["s3cret"], NOW)) == reason


def test_the_tolerance_is_five_minutes_each_way() -> None:
    for skew in (-300, 300):
        headers = _headers(timestamp=NOW + skew)
        assert verify_standard_webhook(headers, BODY, ["s3cret"], NOW) == "msg_1"


def _hub(secret: str, body: bytes = BODY) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature": f"sha256={digest}"}


def test_jira_hub_signatures() -> None:
    verify_hub_signature(_hub("jira"), BODY, ["jira"])
    verify_hub_signature(_hub("old"), BODY, ["new", "old"])
    upper = {"x-hub-signature": _hub("jira")["x-hub-signature"].upper().replace("SHA256", "sha256")}
    verify_hub_signature(upper, BODY, ["jira"])
    assert (
        _reason(lambda: verify_hub_signature(_hub("jira"), BODY + b"x", ["jira"]))
        == "bad_signature"
    )
    assert _reason(lambda: verify_hub_signature(_hub("other"), BODY, ["jira"])) == "bad_signature"
    assert _reason(
        lambda: verify_hub_signature({"x-hub-signature": "sha1=ab"}, BODY, ["jira"])
    ) == ("malformed_credentials")
    assert _reason(lambda: verify_hub_signature({}, BODY, ["jira"])) == "missing_credentials"


def test_static_tokens() -> None:
    verify_token({"x-token": "t0ken"}, "X-Token", ["t0ken"])
    verify_token({"x-token": "old"}, "X-Token", ["new", "old"])
    assert _reason(lambda: verify_token({"x-token": "nope"}, "X-Token", ["t0ken"])) == "bad_token"
    assert _reason(lambda: verify_token({}, "X-Token", ["t0ken"])) == "missing_credentials"


def test_basic_auth() -> None:
    good = {"authorization": "Basic " + base64.b64encode(b"servicenow:pw").decode()}
    verify_basic_auth(good, ["servicenow:pw"])
    bad = {"authorization": "Basic " + base64.b64encode(b"servicenow:nope").decode()}
    assert _reason(lambda: verify_basic_auth(bad, ["servicenow:pw"])) == "bad_basic_auth"
    assert _reason(lambda: verify_basic_auth({"authorization": "Bearer x"}, ["a:b"])) == (
        "malformed_credentials"
    )
    assert _reason(lambda: verify_basic_auth({"authorization": "Basic !!"}, ["a:b"])) == (
        "malformed_credentials"
    )


def test_servicenow_requires_every_enabled_method() -> None:
    both = ServiceNowAuth(hmac=True, basic=True)
    basic = {"authorization": "Basic " + base64.b64encode(b"sn:pw").decode()}

    def check(headers: dict[str, str]) -> str | None:
        return authenticate_servicenow(
            both, headers, BODY, hmac_secrets=["s3cret"], basic_secrets=["sn:pw"], now=NOW
        )

    assert check({**_headers(), **basic}) == "msg_1"
    assert _reason(lambda: check(_headers())) == "missing_credentials"
    assert _reason(lambda: check(basic)) == "missing_credentials"


def test_jira_chooses_the_method_by_what_the_request_carries() -> None:
    def check(auth: JiraAuth, headers: dict[str, str]) -> None:
        authenticate_jira(auth, headers, BODY, webhook_secrets=["jira"], token_secrets=["t0ken"])

    both = JiraAuth(hub_signature=True, automation_token_header="X-Token")
    check(both, _hub("jira"))
    check(both, {"x-token": "t0ken"})
    # A signature header that fails is not rescued by the token path.
    assert _reason(lambda: check(both, {**_hub("x"), "x-token": "t0ken"})) == "bad_signature"
    signed_only = JiraAuth(hub_signature=True)
    assert _reason(lambda: check(signed_only, {"x-token": "t0ken"})) == "missing_credentials"


def test_there_is_no_way_to_switch_authentication_off() -> None:
    with pytest.raises(ValueError, match="enable at least one authentication method"):
        ServiceNowAuth(hmac=False, basic=False)
    with pytest.raises(ValueError, match="enable at least one authentication method"):
        JiraAuth(hub_signature=False, automation_token_header=None)
