"""No secret value reaches a log line, an event, a response or a ticket.

Intake and the notifier run for real — the handlers, moto for AWS, the ITSM sandbox for
ServiceNow and Jira — with distinctive canary secrets and their loggers at DEBUG.
Everything they emit is collected: every stream handler of every logger (Powertools
writes its JSON lines to stdout through one), stdout and stderr (EMF metrics), stdlib log
records from INFO up, the events on the bus, the HTTP responses, and what they store or
write (deduplication records, the DLQ, ticket notes and comments). No canary may appear
in any of it: raw, in base64 or hex, or inside any base64 run (an ``Authorization:
Basic`` header, whatever the user name).

A clean result only means something if the secrets were used and the capture sees what
the functions emit, so each scenario proves both: deliveries signed with the canaries
are accepted and others refused, the sandbox accepts the notifier's credentials, and a
leak planted through the handlers' own loggers, or a canary sent in a ticket's payload,
is reported.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from intake import runtime
from intake.domain.intake import Delivery, IntakeService, Reply
from intake.handlers import webhook
from notifier import runtime as notifier_runtime
from notifier.adapters import itsm
from notifier.handlers import write_back
from selfservice.local.itsm_sandbox import Fault, ItsmSandbox
from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
from selfservice_runtime import settings_document
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import (
    create_dedupe_table,
    create_write_back_queues,
    drain,
    mocked_aws,
    observe_bus,
)
from tests.environment import use_function_environment
from tests.intake.conftest import (
    ROOT,
    WEBHOOK_RESOURCES,
    automation_delivery,
    fixture,
    jira_delivery,
    servicenow_delivery,
)
from tests.lambda_context import FakeContext
from tests.notifier.test_write_back import sample
from tests.telemetry import streams_redirected

REGION = "us-east-1"
BUS = "selfservice-bus"


# -- canaries and the detector -----------------------------------------------------------


@dataclass(frozen=True)
class Canary:
    """A secret value no output may contain."""

    name: str
    value: str

    def forms(self) -> dict[str, str]:
        """The value and its encodings a careless log line or header would carry."""
        raw = self.value.encode()
        return {
            "raw": self.value,
            "base64": base64.b64encode(raw).decode().rstrip("="),
            "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "hex": raw.hex(),
        }


_BASE64_RUNS = (re.compile(r"[A-Za-z0-9+/]{12,}"), re.compile(r"[A-Za-z0-9_-]{12,}"))


def _decoded_base64_runs(text: str) -> Iterator[str]:
    """Every run of base64 characters, decoded (an encoded header hides what it holds)."""
    for pattern, decode in zip(
        _BASE64_RUNS, (base64.b64decode, base64.urlsafe_b64decode), strict=True
    ):
        for run in pattern.findall(text):
            for start in range(4):  # the run may begin mid-quantum (b64 inside a longer token)
                chunk = run[start:]
                try:
                    yield decode(chunk + "=" * (-len(chunk) % 4)).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue


def find_leaks(output: str, canaries: Iterable[Canary]) -> list[str]:
    """``name (form)`` of every canary found in ``output``, sorted; empty when clean."""
    texts = [output.lower(), *(t.lower() for t in _decoded_base64_runs(output))]
    return sorted(
        {
            f"{canary.name} ({form_name})"
            for canary in canaries
            for form_name, form in canary.forms().items()
            if any(form.lower() in text for text in texts)
        }
    )


def test_the_detector_finds_each_form_and_only_the_canaries() -> None:
    canary = Canary("token", "cnry-Detector-9xQ2w7LmZp4v")
    header = "Basic " + base64.b64encode(f"someone:{canary.value}".encode()).decode()
    assert find_leaks(f"x {canary.value} y", [canary]) == ["token (raw)"]
    assert find_leaks(json.dumps({"Authorization": header}), [canary]) == ["token (raw)"]
    assert find_leaks(f"key={canary.value.encode().hex()}", [canary]) == ["token (hex)"]
    assert find_leaks("nothing to see: cnry-Detector-9xQ2w7LmZp4", [canary]) == []


# -- what the functions emit ---------------------------------------------------------------


@dataclass
class Emitted:
    """Everything a function run emitted, as one text to search."""

    capfd: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    handler_streams: io.StringIO
    extra: list[str] = field(default_factory=list)
    _printed: list[str] = field(default_factory=list)

    def add(self, value: Any) -> None:
        """Something the functions produced besides logs (an event, a response, a row)."""
        self.extra.append(value if isinstance(value, str) else json.dumps(value, default=str))

    def logs(self) -> str:
        """Log lines and printed output so far."""
        captured = self.capfd.readouterr()
        self._printed += [captured.out, captured.err]
        return "\n".join([self.handler_streams.getvalue(), *self._printed, self.caplog.text])

    def text(self) -> str:
        """Logs and everything added."""
        return "\n".join([self.logs(), *self.extra])


@pytest.fixture
def emitted(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Emitted]:
    """Point every logger's stream handler at one buffer; capture prints and log records.

    Powertools' handlers hold the ``sys.stdout`` of import time, which is not what a
    capture fixture swaps in; redirecting the handlers themselves sees every line.
    """
    caplog.set_level(logging.INFO)
    levels = {logger: logger.log_level for logger in (webhook.logger, write_back.logger)}
    with streams_redirected(io.StringIO()) as buffer:
        for logger in levels:
            logger.setLevel(logging.DEBUG)
        try:
            yield Emitted(capfd, caplog, buffer)
        finally:
            for logger, level in levels.items():
                logger.setLevel(level)


def _observe_bus(sources: list[str]) -> Callable[[], list[str]]:
    """A queue behind a rule on the bus; returns a function draining it (message bodies)."""
    queue_url = observe_bus(BUS, {"source": sources})
    return lambda: _drain(queue_url)


def _drain(queue_url: str, *, attributes: bool = False) -> list[str]:
    messages = drain(queue_url)
    bodies = [message["Body"] for message in messages]
    if attributes:  # what a parked message carries besides its body: the error
        bodies += [json.dumps(message.get("MessageAttributes", {})) for message in messages]
    return bodies


def _rows(name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=REGION).scan(TableName=name)[
        "Items"
    ]
    return items


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mocked_aws(monkeypatch):
        yield


# -- intake --------------------------------------------------------------------------------

SN_HMAC = Canary("servicenow hmac key", "cnry-SnHmacCurrent-4Rt8Kd2Wq9Zx")
SN_HMAC_PREVIOUS = Canary("servicenow previous hmac key", "cnry-SnHmacPrevious-7Yp3Vb6Nc1Ls")
SN_BASIC = Canary("servicenow basic-auth password", "cnry-SnBasicPassword-2Gh5Jm8Tq4Xe")
JIRA_WEBHOOK = Canary("jira webhook secret", "cnry-JiraWebhook-9Ku2Pf7Dw3Ra")
JIRA_TOKEN = Canary("jira automation token", "cnry-JiraAutomation-5Mz8Qc1Hv6Bn")
INTAKE_CANARIES = [SN_HMAC, SN_HMAC_PREVIOUS, SN_BASIC, JIRA_WEBHOOK, JIRA_TOKEN]
# Standard Webhooks' own format: the key is the base64 after the prefix.
SN_HMAC_WHSEC = "whsec_" + base64.b64encode(SN_HMAC.value.encode()).decode()


@dataclass
class Intake:
    published: Callable[[], list[str]]


@pytest.fixture
def intake(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Intake]:
    published = _observe_bus(["selfservice.intake"])
    create_dedupe_table(boto3.client("dynamodb", region_name=REGION), "intake-idempotency")
    document = json.loads((ROOT / "config/intake.example.json").read_text())
    document["servicenow"]["auth"] = {"hmac": True, "basic": True}  # every method at once
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/selfservice/intake/config", Type="String", Value=json.dumps(document)
    )
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for name, value in {
        "sn-hmac": {"current": SN_HMAC_WHSEC, "previous": SN_HMAC_PREVIOUS.value},
        "sn-basic": {"username": "servicenow", "password": SN_BASIC.value},
        "jira-webhook": {"current": JIRA_WEBHOOK.value},
        "jira-token": {"current": JIRA_TOKEN.value},
    }.items():
        secrets.create_secret(Name=name, SecretString=json.dumps(value))
    use_function_environment(
        monkeypatch,
        "WebhookFunction",
        # The LogLevel parameter at DEBUG: the most there is to leak.
        {**WEBHOOK_RESOURCES, "POWERTOOLS_LOG_LEVEL": "DEBUG"},
    )
    _reset_intake()
    yield Intake(published)
    _reset_intake()


def _reset_intake() -> None:
    webhook.config.cache_clear()
    runtime.adapters.cache_clear()
    settings_document.clear_cache()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _post(delivery: Delivery, emitted: Emitted) -> int:
    event = json.loads((ROOT / "events/WebhookFunction.json").read_text())
    path = f"/webhooks/{delivery.source}"
    event.update(rawPath=path, routeKey=f"POST {path}", headers=dict(delivery.headers))
    event["requestContext"]["http"]["path"] = path
    event.update(body=delivery.body.decode(), isBase64Encoded=False)
    response: dict[str, Any] = webhook.lambda_handler(event, FakeContext())
    emitted.add(response)
    status: int = response["statusCode"]
    return status


def _run_intake(intake: Intake, emitted: Emitted, ec2_payload: dict[str, Any] | None = None) -> str:
    """Every way intake authenticates, accepted and refused; returns all it emitted."""
    now = datetime.now(UTC)
    ec2 = ec2_payload or fixture("servicenow-ritm-ec2-inserted.json")
    account = fixture("servicenow-ritm-account-inserted.json")
    basic = _basic("servicenow", SN_BASIC.value)
    wrong = "cnry-not-a-secret-Wr0ngWr0ng"

    def servicenow(body: dict[str, Any], secret: str, headers: dict[str, str], n: int) -> int:
        delivery = servicenow_delivery(
            body, secret=secret, webhook_id=f"msg_{n}", at=now, extra_headers=headers
        )
        return _post(delivery, emitted)

    def jira(secret: str) -> int:
        body = fixture("jira-issue-created-webhook.json")
        return _post(jira_delivery(body, secret=secret, at=now), emitted)

    def automation(token: str) -> int:
        body = fixture("jira-automation-web-request.json")
        return _post(automation_delivery(body, token=token, at=now), emitted)

    accepted = [
        servicenow(ec2, SN_HMAC_WHSEC, basic, 1),
        servicenow(account, SN_HMAC_PREVIOUS.value, basic, 2),  # mid-rotation
        jira(JIRA_WEBHOOK.value),
        automation(JIRA_TOKEN.value),
    ]
    refused = [
        servicenow(ec2, wrong, basic, 3),
        servicenow(ec2, SN_HMAC_WHSEC, _basic("servicenow", wrong), 4),
        # A near miss carries the secret itself: it must not be echoed either.
        servicenow(ec2, SN_HMAC_WHSEC, _basic("servicenow", SN_BASIC.value + "x"), 5),
        jira(wrong),
        automation(JIRA_TOKEN.value + "x"),
    ]
    # The canaries really are the keys: what they sign is accepted, nothing else is.
    assert all(status < 300 for status in accepted), accepted
    assert refused == [401] * len(refused)

    for body in intake.published():
        parse_sqs_body(body)  # a well-formed event
        emitted.add(body)
    for row in _rows("intake-idempotency"):
        emitted.add(row)
    logs = emitted.logs()
    # The capture sees the handler's own log lines and its printed metrics.
    assert '"message":"delivery answered"' in logs
    assert '"message":"webhook authentication failed"' in logs
    assert '"WebhookAuthFailures"' in logs
    return emitted.text()


def test_intake_never_emits_a_webhook_secret(intake: Intake, emitted: Emitted) -> None:
    assert find_leaks(_run_intake(intake, emitted), INTAKE_CANARIES) == []


@pytest.fixture
def event_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An operator turns on Powertools' event logging to debug (read at import time)."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    importlib.reload(webhook)
    yield
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    importlib.reload(webhook)


def test_turning_on_event_logging_does_not_log_the_credentials_headers(
    event_logging: None, intake: Intake, emitted: Emitted
) -> None:
    assert find_leaks(_run_intake(intake, emitted), INTAKE_CANARIES) == []


def test_a_leak_through_the_intake_logger_is_caught(
    intake: Intake, emitted: Emitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = IntakeService.handle

    def leaky_handle(self: IntakeService, delivery: Delivery) -> Reply:
        webhook.logger.debug("delivery", extra={"headers": delivery.headers})
        return handle(self, delivery)

    monkeypatch.setattr(IntakeService, "handle", leaky_handle)
    leaks = find_leaks(_run_intake(intake, emitted), INTAKE_CANARIES)
    # The basic-auth password is found inside the base64 of the Authorization header.
    assert {"servicenow basic-auth password (raw)", "jira automation token (raw)"} <= set(leaks)


def test_a_canary_in_a_ticket_reaches_the_event_and_is_caught(
    intake: Intake, emitted: Emitted
) -> None:
    ec2 = fixture("servicenow-ritm-ec2-inserted.json")
    ec2["variables"]["justification"] = f"pasted by mistake: {JIRA_WEBHOOK.value}"
    emitted.extra.clear()
    _run_intake(intake, emitted, ec2_payload=ec2)
    events = "\n".join(e for e in emitted.extra if '"selfservice.request.' in e)
    assert find_leaks(events, INTAKE_CANARIES) == ["jira webhook secret (raw)"]


# -- notifier ------------------------------------------------------------------------------

SN_PASSWORD = Canary("servicenow integration password", "cnry-SnWritePassword-8Fd3Lk6Rt1Yu")
JIRA_API_TOKEN = Canary("jira api token", "cnry-JiraApiToken-3Vw9Hs2Mp5Qe")
OAUTH_SECRET = Canary("servicenow oauth client secret", "cnry-SnOAuthClient-6Tb4Ny8Kc2Jd")
NOTIFIER_CANARIES = [SN_PASSWORD, JIRA_API_TOKEN, OAUTH_SECRET]


@dataclass
class Notifier:
    sandbox: ItsmSandbox
    queue_url: str
    dlq_url: str
    published: Callable[[], list[str]]


@pytest.fixture
def notifier(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Notifier]:
    with ItsmSandbox(
        servicenow_password=SN_PASSWORD.value,
        jira_token=JIRA_API_TOKEN.value,
        oauth_client=("selfservice-client", OAUTH_SECRET.value),
    ) as sandbox:
        published = _observe_bus(["selfservice.notifier"])
        queue, dlq = create_write_back_queues(boto3.client("sqs", region_name=REGION))
        create_dedupe_table(boto3.client("dynamodb", region_name=REGION), "notifier-idempotency")
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.create_secret(
            Name="sn",
            SecretString=json.dumps({"username": "selfservice", "password": SN_PASSWORD.value}),
        )
        secrets.create_secret(
            Name="jira",
            SecretString=json.dumps(
                {"username": "selfservice@acme.example", "password": JIRA_API_TOKEN.value}
            ),
        )
        secrets.create_secret(
            Name="sn-oauth",
            SecretString=json.dumps(
                {"username": "selfservice-client", "password": OAUTH_SECRET.value}
            ),
        )
        use_function_environment(
            monkeypatch,
            "WriteBackFunction",
            {
                "POWERTOOLS_LOG_LEVEL": "DEBUG",  # the LogLevel parameter: the most to leak
                "EVENT_BUS_NAME": BUS,
                "IDEMPOTENCY_TABLE_NAME": "notifier-idempotency",
                "NOTIFIER_CONFIG_PARAMETER": "/notifier/config",
                "SERVICENOW_CREDENTIALS_SECRET_ID": "sn",
                "JIRA_CREDENTIALS_SECRET_ID": "jira",
                "WRITE_BACK_DLQ_URL": dlq,
            },
        )
        _reset_notifier()
        yield Notifier(sandbox, queue, dlq, published)
        _reset_notifier()


def _reset_notifier() -> None:
    write_back.config.cache_clear()
    write_back.runtime.cache_clear()


def _configure_notifier(notifier: Notifier, servicenow: dict[str, Any]) -> None:
    document = {
        "servicenow": {"api_url": notifier.sandbox.url, **servicenow},
        "jira": {"api_url": notifier.sandbox.url},
        "retries": {"attempts": 2, "base_seconds": 0, "cap_seconds": 0},
    }
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/notifier/config", Type="String", Value=json.dumps(document), Overwrite=True
    )
    _reset_notifier()


def _write_back(notifier: Notifier, emitted: Emitted, *event_types: str) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    for event_type in event_types:
        body = json.dumps(eventbridge_delivery(sample(event_type), event_bus_name=BUS))
        sqs.send_message(
            QueueUrl=notifier.queue_url, MessageBody=body, MessageGroupId="ticket-updates"
        )
    messages = sqs.receive_message(QueueUrl=notifier.queue_url, MaxNumberOfMessages=10)["Messages"]
    event = sqs_event(
        [m["Body"] for m in messages],
        queue="writeback.fifo",
        message_ids=[m["MessageId"] for m in messages],
        receipt_handles=[m["ReceiptHandle"] for m in messages],
    )
    emitted.add(write_back.lambda_handler(event, FakeContext()))
    sqs.delete_message_batch(
        QueueUrl=notifier.queue_url,
        Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in messages],
    )


STARTED = "selfservice.provisioning.started.v1"  # a ServiceNow ticket in the samples
SUCCEEDED = "selfservice.provisioning.succeeded.v1"
FAILED = "selfservice.provisioning.failed.v1"
APPROVAL = "selfservice.request.approval-required.v1"  # a Jira ticket


def _run_notifier(notifier: Notifier, emitted: Emitted, monkeypatch: pytest.MonkeyPatch) -> str:
    """Written with each kind of credentials, refused, unreachable; returns all it emitted."""
    sandbox = notifier.sandbox
    _configure_notifier(notifier, {"auth": "basic"})
    _write_back(notifier, emitted, STARTED, APPROVAL)
    # The sandbox checks basic auth like the real APIs: the canaries were sent, and right.
    assert len(sandbox.state.journal) == 1
    assert len(sandbox.state.jira_comments["ITSM-42"]) == 1

    sandbox.fail_next("servicenow", Fault(401), Fault(401))  # refused even after a refresh
    _write_back(notifier, emitted, SUCCEEDED)
    sandbox.down = True  # unreachable: the transport error is logged and retried later
    _write_back(notifier, emitted, FAILED)
    sandbox.down = False

    # OAuth client credentials: the real token endpoint is https, the sandbox's is not.
    def token_from_sandbox(
        transport: Any, token_url: str, load: Callable[[bool], str]
    ) -> itsm.OAuthClientCredentials:
        assert token_url == "https://acme.service-now.com/oauth_token.do"
        return itsm.OAuthClientCredentials(transport, f"{sandbox.url}/oauth_token.do", load)

    monkeypatch.setattr(notifier_runtime, "OAuthClientCredentials", token_from_sandbox)
    monkeypatch.setenv("SERVICENOW_CREDENTIALS_SECRET_ID", "sn-oauth")
    _configure_notifier(notifier, {"auth": "oauth", "instance_url": "https://acme.service-now.com"})
    _write_back(notifier, emitted, "selfservice.request.rejected.v1")
    assert sandbox.state.tokens, "no OAuth token was issued: the client secret was not used"
    assert len(sandbox.state.journal) == 2  # one per accepted write

    for body in notifier.published():
        parse_sqs_body(body)
        emitted.add(body)
    emitted.add(_drain(notifier.dlq_url, attributes=True))
    for row in _rows("notifier-idempotency"):
        emitted.add(row)
    emitted.add(sandbox.state.journal)  # what the requester's ticket shows
    emitted.add(dict(sandbox.state.jira_comments))
    logs = emitted.logs()
    assert '"message":"written back"' in logs
    assert '"message":"write-back refused; parked in the DLQ"' in logs
    assert '"WriteBacksSucceeded"' in logs
    return emitted.text()


def _access_tokens(notifier: Notifier) -> list[Canary]:
    return [Canary("servicenow oauth access token", t) for t in notifier.sandbox.state.tokens]


def test_the_notifier_never_emits_itsm_credentials(
    notifier: Notifier, emitted: Emitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = _run_notifier(notifier, emitted, monkeypatch)
    assert find_leaks(output, [*NOTIFIER_CANARIES, *_access_tokens(notifier)]) == []


def test_a_leak_through_the_notifier_logger_is_caught(
    notifier: Notifier, emitted: Emitted, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = itsm._json_headers

    def leaky_headers(credentials: itsm.Credentials) -> dict[str, str]:
        headers = header(credentials)
        write_back.logger.debug("calling the ITSM", extra={"headers": headers})
        return headers

    monkeypatch.setattr(itsm, "_json_headers", leaky_headers)
    output = _run_notifier(notifier, emitted, monkeypatch)
    leaks = find_leaks(output, [*NOTIFIER_CANARIES, *_access_tokens(notifier)])
    assert {
        "servicenow integration password (raw)",  # inside the Basic header's base64
        "jira api token (raw)",
        "servicenow oauth access token (raw)",  # the Bearer header
    } <= set(leaks)
