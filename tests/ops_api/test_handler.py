"""The real ops handler: Powertools routing and validation, moto EC2/SSM/EventBridge.

Run Command itself is the typed fake (moto runs nothing); everything else is moto, so
the tag filters, the configuration parameter and the audit events are the real calls.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SSMProvider

from ops_api import runtime
from ops_api.adapters.aws import Ec2Instances
from ops_api.handlers import api
from selfservice_contracts.events import OpsCommandExecuted
from selfservice_runtime import settings_document
from selfservice_runtime.observability import Metric
from selfservice_runtime.parsing import parse_sqs_body
from selfservice_runtime.publisher import EventBridgePublisher
from tests.aws import drain, mocked_aws, observe_bus, run_instance
from tests.conftest import ROOT
from tests.environment import use_function_environment
from tests.lambda_context import FakeContext, traced_invocation
from tests.ops_api.fakes import FakeCommands
from tests.telemetry import PutEventsSpy, Telemetry

BUS = "selfservice-bus"
CONFIG = "/selfservice/ops-api/config"
BASE_EVENT = json.loads((ROOT / "events/OpsApiFunction.json").read_text())
CALLER_ARN = BASE_EVENT["requestContext"]["authorizer"]["iam"]["userArn"]


@dataclass
class Stack:
    ec2: Any
    ssm: Any
    sqs: Any
    queue_url: str
    commands: FakeCommands

    def instance(self, tags: dict[str, str]) -> str:
        return run_instance(self.ec2, tags)

    def audits(self) -> list[OpsCommandExecuted]:
        found = []
        for message in drain(self.queue_url, self.sqs):
            data = parse_sqs_body(message["Body"]).data
            assert isinstance(data, OpsCommandExecuted)
            found.append(data)
        return found


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mocked_aws(monkeypatch):
        session = boto3.session.Session(region_name="us-east-1")
        events, sqs = session.client("events"), session.client("sqs")
        queue_url = observe_bus(
            BUS, {"source": ["selfservice.ops-api"]}, queue="audit", rule="audit"
        )
        ssm = session.client("ssm")
        document = json.loads((ROOT / "config/ops-api.example.json").read_text())
        document.update(poll_initial_seconds=0.001, poll_max_seconds=0.001)  # fake SSM: no wait
        ssm.put_parameter(Name=CONFIG, Type="String", Value=json.dumps(document))
        use_function_environment(
            monkeypatch, "OpsApiFunction", {"EVENT_BUS_NAME": BUS, "OPS_CONFIG_PARAMETER": CONFIG}
        )
        commands = FakeCommands(not_ready=1, running=1)
        _reset()
        api.adapters.cache_clear()
        monkeypatch.setattr(
            runtime,
            "adapters",
            lambda: runtime.Adapters(
                ssm=SSMProvider(boto3_session=session),
                instances=Ec2Instances(session.client("ec2")),
                commands=commands,  # type: ignore[arg-type]
                publisher=EventBridgePublisher(events, BUS),
            ),
        )
        yield Stack(session.client("ec2"), ssm, sqs, queue_url, commands)
        _reset()


def _reset() -> None:
    api.config.cache_clear()
    settings_document.clear_cache()


def _call(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: str | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    event = copy.deepcopy(BASE_EVENT)
    event["headers"]["content-type"] = content_type
    route = "/commands/{command_id}" if path.startswith("/commands/") else path
    event.update(rawPath=path, routeKey=f"{method} {route}")
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["routeKey"] = f"{method} {route}"
    event["body"] = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if path.startswith("/commands/"):
        event["pathParameters"] = {"command_id": path.rsplit("/", 1)[1]}
    response = api.lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_run_on_a_tagged_instance_returns_its_output_and_is_audited(stack: Stack) -> None:
    instance = stack.instance({"SSMRunAllowed": "true"})
    status, body = _call("POST", "/run-commands", {"instance_id": instance, "commands": ["uptime"]})
    assert status == 200, body
    assert body["results"][0]["stdout"] == f"ran on {instance}\n"
    (audit,) = stack.audits()
    assert audit.caller.user_arn == CALLER_ARN
    assert audit.caller.principal_org_id == "o-abc123def4"
    assert (audit.outcome, audit.status_code, audit.commands) == ("succeeded", 200, ["uptime"])


def test_fan_out_by_tag_reaches_only_the_tagged_running_instances(stack: Stack) -> None:
    tagged = sorted(stack.instance({"App": "shop", "SSMRunAllowed": "true"}) for _ in range(3))
    stack.instance({"App": "shop"})
    stack.instance({"App": "other", "SSMRunAllowed": "true"})
    status, body = _call("POST", "/run-commands", {"tags": {"App": "shop"}})
    assert status == 200, body
    assert sorted(r["instance_id"] for r in body["results"]) == tagged
    assert (
        stack.commands.sent[0]["instance_ids"] == tagged
        or sorted(stack.commands.sent[0]["instance_ids"]) == tagged
    )


def test_an_untagged_instance_is_403(stack: Stack) -> None:
    instance = stack.instance({"App": "shop"})
    status, body = _call("POST", "/run-commands", {"instance_id": instance})
    assert (status, body["error"]) == (403, "InstanceNotEligible")
    assert stack.commands.sent == []
    assert stack.audits()[0].outcome == "denied"


def test_a_command_off_the_allow_list_is_403_naming_it(stack: Stack) -> None:
    instance = stack.instance({"SSMRunAllowed": "true"})
    status, body = _call(
        "POST", "/run-commands", {"instance_id": instance, "commands": ["uptime && curl x"]}
    )
    assert (status, body["error"]) == (403, "CommandNotAllowed")
    assert body["refused"][0]["command"] == "uptime && curl x"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, ""),
        ({"instance_id": "i-0123456789abcdef0", "tags": {"a": "b"}}, ""),
        ({"instance_id": "not-an-instance"}, "instance_id"),
        ({"instance_id": "i-0123456789abcdef0", "shell": "bash"}, "shell"),
        ({"instance_id": "i-0123456789abcdef0", "commands": []}, "commands"),
        ({"instance_id": "i-0123456789abcdef0", "wait_seconds": 60}, "wait_seconds"),
        ({"tags": {}}, "tags"),
    ],
)
def test_an_invalid_body_is_400_with_field_errors_and_audited(
    stack: Stack, body: dict[str, Any], location: str
) -> None:
    status, reply = _call("POST", "/run-commands", body)
    assert (status, reply["error"]) == (400, "InvalidRequest"), reply
    assert any(e["loc"].startswith(location) for e in reply["errors"]), reply
    assert stack.audits()[0].outcome == "invalid"


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '{"instance_id": '])
def test_a_body_that_is_not_a_json_object_is_400(stack: Stack, raw: str) -> None:
    status, reply = _call("POST", "/run-commands", raw=raw)
    assert status == 400, reply


DEEP = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (DEEP, "nested deeper than 64 levels"),
        ('{"instance_id": ' + DEEP + "}", "nested deeper than 64 levels"),
        ('{"instance_id": "i-0123456789abcdef0", "wait_seconds": NaN}', "NaN"),
        ('{"instance_id": "i-0123456789abcdef0", "wait_seconds": 1e999}', "too large"),
        ('{"instance_id": "i-0123456789abcdef0", "wait_seconds": ' + "9" * 5000 + "}", "digits"),
    ],
)
@pytest.mark.parametrize("path", ["/run-commands", "/start-association"])
def test_a_body_json_cannot_hold_is_400_not_500_and_audited(
    stack: Stack, raw: str, reason: str, path: str
) -> None:
    """Found by testing as a user: 10,000 nested brackets raised RecursionError (a 500)."""
    status, reply = _call("POST", path, raw=raw)
    assert (status, reply["error"]) == (400, "InvalidRequest"), reply
    assert reason in reply["errors"][0]["message"], reply
    assert stack.audits()[0].outcome == "invalid"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
@pytest.mark.parametrize("path", ["/run-commands", "/start-association"])
def test_a_body_that_is_not_sent_as_json_is_415_in_the_envelope_and_audited(
    stack: Stack, content_type: str, path: str
) -> None:
    """Found by testing as a user: Powertools' own 415 body, and no audit event."""
    instance = stack.instance({"SSMRunAllowed": "true"})
    status, reply = _call("POST", path, {"instance_id": instance}, content_type=content_type)
    assert status == 415
    assert reply == {
        "error": "UnsupportedMediaType",
        "message": f"send the body as application/json, not {content_type!r}",
    }
    (audit,) = stack.audits()
    assert (audit.outcome, audit.status_code) == ("invalid", 415)
    assert stack.commands.sent == []


def test_get_command_and_its_404_and_400(stack: Stack) -> None:
    instance = stack.instance({"SSMRunAllowed": "true"})
    _, ran = _call("POST", "/run-commands", {"instance_id": instance, "commands": ["hostname"]})
    status, body = _call("GET", f"/commands/{ran['command_ids'][0]}")
    assert (status, body["complete"]) == (200, True)
    status, body = _call("GET", "/commands/12345678-1234-4234-8234-123456789012")
    assert (status, body["error"]) == (404, "NotFound")
    status, _ = _call("GET", "/commands/..%2F..%2Fetc")
    assert status == 400


def test_start_association(stack: Stack) -> None:
    known = "0f2c8a0e-1b2c-4d5e-8f90-123456789abc"
    tagged = stack.instance({"SSMRunAllowed": "true"})
    stack.commands.add_association(known, instance_ids=[tagged])
    status, body = _call("POST", "/start-association", {"association_ids": [known]})
    assert (status, body["instance_ids"]) == (202, [tagged])
    unknown = {"association_ids": ["00000000-1111-4222-8333-444444444444"]}
    assert _call("POST", "/start-association", unknown)[0] == 404
    assert _call("POST", "/start-association", {"association_ids": ["x"]})[0] == 400
    assert [a.operation for a in stack.audits()] == ["start-association"] * 3


def test_start_association_never_reaches_an_untagged_instance(stack: Stack) -> None:
    """Found by testing as a user: the route started any association, on any instance."""
    tagged = stack.instance({"SSMRunAllowed": "true", "App": "shop"})
    untagged = stack.instance({"App": "shop"})
    by_tag, by_id = "0f2c8a0e-1b2c-4d5e-8f90-123456789abc", "1f2c8a0e-1b2c-4d5e-8f90-123456789abc"
    stack.commands.add_association(by_tag, tags={"tag:App": ["shop"]})
    stack.commands.add_association(by_id, instance_ids=[tagged])
    status, body = _call("POST", "/start-association", {"association_ids": [by_id, by_tag]})
    assert (status, body["error"]) == (403, "InstanceNotEligible")
    assert body["instances"] == [{"association_id": by_tag, "instance_id": untagged}]
    assert stack.commands.started == []
    (audit,) = stack.audits()
    assert (audit.outcome, audit.status_code) == ("denied", 403)
    stack.ec2.create_tags(Resources=[untagged], Tags=[{"Key": "SSMRunAllowed", "Value": "true"}])
    status, body = _call("POST", "/start-association", {"association_ids": [by_tag]})
    assert (status, body["instance_ids"]) == (202, sorted([tagged, untagged]))
    assert stack.audits()[0].targets.instance_ids == sorted([tagged, untagged])


def test_a_request_without_a_verified_identity_is_refused(stack: Stack) -> None:
    event = copy.deepcopy(BASE_EVENT)
    del event["requestContext"]["authorizer"]
    response = api.lambda_handler(event, FakeContext())
    assert response["statusCode"] == 403
    assert stack.commands.sent == []


def test_an_invalid_configuration_refuses_everything_with_502(stack: Stack) -> None:
    stack.ssm.put_parameter(
        Name=CONFIG, Type="String", Overwrite=True, Value='{"allowlist": [{"pattern": "uptime"}]}'
    )
    instance = stack.instance({"SSMRunAllowed": "true"})
    status, body = _call("POST", "/run-commands", {"instance_id": instance})
    assert (status, body["error"]) == (502, "SsmFailure")
    assert stack.commands.sent == []


# -- observability ---------------------------------------------------------------------

REAL_ADAPTERS = runtime.adapters  # before the stack fixture swaps in the fake Run Command


def test_each_call_is_counted_by_outcome_and_failures_by_reason(
    stack: Stack, telemetry: Telemetry
) -> None:
    instance = stack.instance({"SSMRunAllowed": "true"})
    _call("POST", "/run-commands", {"instance_id": instance, "commands": ["uptime"]})
    _call("POST", "/run-commands", {"instance_id": instance, "commands": ["rm -rf /"]})
    _call("POST", "/run-commands", {"instance_id": "not-an-instance"})
    assert telemetry.counts() == {
        Metric.OPS_COMMANDS_SUCCEEDED: 1,
        Metric.OPS_COMMANDS_FAILED: 2,
    }
    assert telemetry.by_reason() == {
        (Metric.OPS_COMMANDS_FAILED, "CommandNotAllowed"): 1,
        (Metric.OPS_COMMANDS_FAILED, "InvalidRequest"): 1,
    }


def test_log_lines_are_correlated_by_api_request_and_forget_the_last_caller(
    stack: Stack, telemetry: Telemetry
) -> None:
    instance = stack.instance({"SSMRunAllowed": "true"})
    _call("POST", "/run-commands", {"instance_id": instance, "commands": ["uptime"]})
    (answered,) = telemetry.logs("ops call answered")
    assert answered["correlation_id"] == BASE_EVENT["requestContext"]["requestId"]
    assert answered["caller"] == CALLER_ARN
    # A call with no verified identity must not be logged under the previous caller.
    event = copy.deepcopy(BASE_EVENT)
    del event["requestContext"]["authorizer"]
    event["requestContext"]["requestId"] = "anonymous-call"
    api.lambda_handler(event, FakeContext())
    (refused,) = telemetry.logs("ops call refused")
    assert refused["correlation_id"] == "anonymous-call"
    assert "caller" not in refused


def test_audit_events_carry_the_invocations_trace_header(
    stack: Stack, put_events: PutEventsSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = traced_invocation(monkeypatch)
    monkeypatch.setattr(runtime, "adapters", REAL_ADAPTERS)  # the publisher the handler builds
    REAL_ADAPTERS.cache_clear()
    instance = stack.instance({"App": "shop"})  # not allow-tagged: denied, audited, no SSM
    try:
        status, _ = _call("POST", "/run-commands", {"instance_id": instance})
    finally:
        REAL_ADAPTERS.cache_clear()
    assert status == 403
    assert [entry.get("TraceHeader") for entry in put_events.entries] == [trace]
    assert stack.audits()[0].outcome == "denied"


def test_a_body_that_is_not_utf8_is_400_and_audited(stack: Stack) -> None:
    """Found by the ops fuzzer: Powertools' validation raised UnicodeDecodeError (a 500)."""
    event = copy.deepcopy(BASE_EVENT)
    event.update(body=base64.b64encode(b"\x80\xff{").decode(), isBase64Encoded=True)
    response = api.lambda_handler(event, FakeContext())
    assert response["statusCode"] == 400
    assert (
        json.loads(response["body"])["errors"][0]["message"] == "the body is not UTF-8 encoded JSON"
    )
    assert stack.audits()[0].outcome == "invalid"
