"""The provisioner's AWS adapters against moto (DynamoDB, S3) and botocore's Stubber."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from provisioner.adapters.aws import REFUSALS, CodeBuildStarter, S3Artifacts, idempotency_token
from provisioner.adapters.cost_index import DynamoDBCommittedCost
from provisioner.adapters.ledger_dynamodb import (
    DynamoDBLedger,
    DynamoDBSerialSlot,
)
from provisioner.domain.ledger import ConcurrentUpdateError, HeldPlan, LedgerEntry, Transition
from provisioner.domain.lifecycle import State
from provisioner.domain.plan.build_review import ApplyRecord, ReviewInput
from provisioner.domain.ports import ApprovedPlan, BuildRefused, BuildRequest
from selfservice_contracts.request import Action, ProvisioningRequest
from tests.aws import create_ledger_table, mocked_aws
from tests.provisioner.fakes import request

AT = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    with mocked_aws(monkeypatch):
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="ledger",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _entry(state: State, version: int = 1) -> LedgerEntry:
    req = request()
    return LedgerEntry(
        request_id=req.request_id,
        product="ec2-app",
        instance=str(req.ticket),
        state=state,
        version=version,
        action=req.action,
        attempt=1,
        request=req,
        updated_at=AT,
        build_id="p:b1",
        log_url="https://logs",
        queued_by="selfservice.intake#e1",
        outputs={"vpc_id": "vpc-1"},
        sequence=2,
    )


def test_entries_round_trip_with_their_history(dynamodb: object) -> None:
    ledger = DynamoDBLedger(dynamodb, "ledger")  # type: ignore[arg-type]
    entry = _entry(State.QUEUED)
    steps = [
        Transition(
            entry.request_id, 1, None, State.RECEIVED, AT, "selfservice.request.received.v1 e1"
        ),
        Transition(entry.request_id, 2, State.RECEIVED, State.QUEUED, AT, "same", {"k": 1}),
    ]
    ledger.save(None, entry, steps)
    assert ledger.get(entry.request_id) == entry
    assert ledger.history(entry.request_id) == steps
    assert ledger.get("req-0000000000000000") is None


def test_writes_are_conditional_on_the_version_read(dynamodb: object) -> None:
    ledger = DynamoDBLedger(dynamodb, "ledger")  # type: ignore[arg-type]
    first = _entry(State.QUEUED)
    ledger.save(None, first, [])
    with pytest.raises(ConcurrentUpdateError):
        ledger.save(None, first, [])  # a second creator loses
    moved = first.advance(state=State.PROVISIONING)
    ledger.save(first, moved, [])
    with pytest.raises(ConcurrentUpdateError):
        ledger.save(first, first.advance(state=State.FAILED), [])  # stale read loses
    assert ledger.get(first.request_id) == moved


def test_a_history_step_is_never_written_twice(dynamodb: object) -> None:
    ledger = DynamoDBLedger(dynamodb, "ledger")  # type: ignore[arg-type]
    entry = _entry(State.QUEUED)
    step = Transition(entry.request_id, 1, None, State.RECEIVED, AT, "e1")
    ledger.save(None, entry, [step])
    with pytest.raises(ConcurrentUpdateError):
        ledger.save(entry, entry.advance(), [step])
    assert ledger.get(entry.request_id) == entry


def test_the_serial_slot_queues_in_order_and_hands_on(dynamodb: object) -> None:
    slot = DynamoDBSerialSlot(dynamodb, "ledger")  # type: ignore[arg-type]
    assert slot.acquire("aws-account", "req-a")
    assert slot.acquire("aws-account", "req-a")  # the holder again (a retry)
    assert not slot.acquire("aws-account", "req-b")
    assert not slot.acquire("aws-account", "req-c")
    assert not slot.acquire("aws-account", "req-b")  # a retry does not queue twice
    assert slot.release("aws-account", "req-b") is None  # not the holder
    assert slot.release("aws-account", "req-a") == "req-b"
    assert slot.release("aws-account", "req-b") == "req-c"
    assert slot.release("aws-account", "req-c") is None
    assert slot.acquire("aws-account", "req-d")


def _second_attempt(req: ProvisioningRequest) -> BuildRequest:
    """The build of a request's second attempt, as the service asks for it."""
    return BuildRequest(
        request=req,
        action=req.action,
        attempt=2,
        tfvars_uri="s3://a/tfvars/x/2.tfvars.json",
        outputs_uri="s3://a/outputs/x/2.json",
        state_key="ec2-app/servicenow/RITM0010042.tfstate",
    )


def test_start_build_passes_identifiers_only_and_a_stable_token() -> None:
    client = boto3.client(
        "codebuild", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    req = request()
    build = _second_attempt(req)
    with Stubber(client) as stub:
        stub.add_response(
            "start_build",
            {"build": {"id": "selfservice-provision:abc"}},
            {
                "projectName": "selfservice-provision",
                "idempotencyToken": idempotency_token(req.request_id, "create", 2),
                "environmentVariablesOverride": ANY,
            },
        )
        started = CodeBuildStarter(client, "selfservice-provision", "us-east-1").start(build)
        stub.assert_no_pending_responses()
    assert started.build_id == "selfservice-provision:abc"
    assert started.log_url is not None
    assert "selfservice-provision%3Aabc" in started.log_url
    assert idempotency_token(req.request_id, "create", 2) == idempotency_token(
        req.request_id, "create", 2
    )
    assert idempotency_token(req.request_id, "create", 2) != idempotency_token(
        req.request_id, "create", 3
    )


def _refused_with(code: str, message: str) -> BaseException:
    client = boto3.client(
        "codebuild", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    req = request()
    build = BuildRequest(req, req.action, 1, "s3://a/t.json", "s3://a/o.json", "k")
    starter = CodeBuildStarter(client, "selfservice-provision", "us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("start_build", service_error_code=code, service_message=message)
        with pytest.raises((ClientError, BuildRefused), match=code) as raised:
            starter.start(build)
    return raised.value


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_a_permanent_start_build_error_is_a_refusal_with_aws_code_and_message(code: str) -> None:
    message = "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: x"
    refused = _refused_with(code, message)
    assert isinstance(refused, BuildRefused)
    assert (refused.code, refused.message) == (code, message)


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "AccountLimitExceededException", "InternalFailure"]
)
def test_a_transient_start_build_error_is_raised_as_it_came(code: str) -> None:
    raised = _refused_with(code, "slow down")
    assert isinstance(raised, ClientError)
    assert not isinstance(raised, BuildRefused)
    assert raised.response["Error"]["Code"] == code


def test_overrides_hold_no_request_variables() -> None:
    captured: dict[str, object] = {}

    class Client:
        def start_build(self, **kwargs: object) -> dict[str, object]:
            captured.update(kwargs)
            return {"build": {"id": "p:1", "logs": {"deepLink": "https://deep"}}}

    req = request(justification="do not leak me")
    build = BuildRequest(req, req.action, 1, "s3://a/t", "s3://a/o", "k")
    started = CodeBuildStarter(Client(), "p", "us-east-1").start(build)  # type: ignore[arg-type]
    names = {v["name"] for v in captured["environmentVariablesOverride"]}  # type: ignore[attr-defined]
    assert names == {
        "REQUEST_ID",
        "TICKET_REF",
        "PRODUCT",
        "ACTION",
        "ATTEMPT",
        "TFVARS_S3_URI",
        "OUTPUTS_S3_URI",
        "STATE_KEY",
    }
    assert "do not leak me" not in json.dumps(captured)
    assert started.log_url == "https://deep"


def test_outputs_never_include_sensitive_values(monkeypatch: pytest.MonkeyPatch) -> None:
    with mocked_aws(monkeypatch):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        artifacts = S3Artifacts(s3, "artifacts")
        assert artifacts.get_outputs("req-1", 1) == {}
        s3.put_object(
            Bucket="artifacts",
            Key="outputs/req-1/1.json",
            Body=json.dumps(
                {
                    "vpc_id": {"value": "vpc-1", "type": "string", "sensitive": False},
                    "db_password": {"value": "hunter2", "type": "string", "sensitive": True},
                }
            ),
        )
        assert artifacts.get_outputs("req-1", 1) == {"vpc_id": "vpc-1"}
        uri = artifacts.put_tfvars("req-1", 1, {"b": 1, "a": 2})
        assert uri == "s3://artifacts/tfvars/req-1/1.tfvars.json"
        stored = s3.get_object(Bucket="artifacts", Key="tfvars/req-1/1.tfvars.json")
        assert json.loads(stored["Body"].read()) == {"a": 2, "b": 1}
        assert stored["ServerSideEncryption"] == "aws:kms"


HELD = HeldPlan(sha256="a" * 64, attempt=1, module_sha256="b" * 64, monthly_cost=Decimal("86.70"))


def test_a_held_plan_and_the_instance_cost_round_trip(dynamodb: object) -> None:
    ledger = DynamoDBLedger(dynamodb, "ledger")  # type: ignore[arg-type]
    held = replace(
        _entry(State.AWAITING_APPROVAL),
        held_plan=HELD,
        replan_because="the state changed since the plan was made",
        monthly_cost=Decimal("12.30"),
    )
    ledger.save(None, held, [])
    assert ledger.get(held.request_id) == held
    applying = held.advance(state=State.QUEUED, apply_held=True)
    ledger.save(held, applying, [])
    assert ledger.get(held.request_id) == applying
    planning = replace(_entry(State.QUEUED), request_id="other", plan_only=True)
    ledger.save(None, planning, [])
    assert ledger.get("other") == planning


@pytest.fixture
def ledger_with_indexes(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    with mocked_aws(monkeypatch):
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, "ledger")  # the template's keys and indexes
        yield client


def test_committed_cost_sums_the_live_priced_instances_of_a_scope(
    ledger_with_indexes: object,
) -> None:
    ledger = DynamoDBLedger(ledger_with_indexes, "ledger")  # type: ignore[arg-type]
    costs = DynamoDBCommittedCost(ledger_with_indexes, "ledger")  # type: ignore[arg-type]
    base = _entry(State.SUCCEEDED)  # dev, CC-1042
    staging = base.request.model_copy(update={"environment": "staging"})
    other_center = base.request.model_copy(update={"cost_center": "CC-7"})
    for request_id, state, cost, owner in [
        ("a", State.SUCCEEDED, "86.70", base.request),
        ("b", State.UPDATING, "10.05", base.request),  # still live while it changes
        ("c", State.FAILED, "1.00", base.request),  # a failed update: the last applied plan
        ("d", State.DESTROYED, "500.00", base.request),  # gone: counts nowhere
        ("e", State.SUCCEEDED, None, base.request),  # never priced (before plan review)
        ("f", State.SUCCEEDED, "40.00", staging),
        ("g", State.SUCCEEDED, "7.00", other_center),
    ]:
        entry = replace(
            base,
            request_id=request_id,
            state=state,
            request=owner,
            monthly_cost=Decimal(cost) if cost else None,
        )
        ledger.save(None, entry, [])
    assert costs.committed("dev", "CC-1042", excluding="x") == Decimal("97.75")
    # A request's own instance is what its new plan prices: not counted twice.
    assert costs.committed("dev", "CC-1042", excluding="a") == Decimal("11.05")
    assert costs.committed("staging", "CC-1042", excluding="x") == Decimal("40.00")
    assert costs.committed("dev", "CC-7", excluding="x") == Decimal("7.00")
    assert costs.committed("prod", None, excluding="x") == Decimal("0.00")


def _overrides(build: BuildRequest) -> dict[str, str]:
    client = boto3.client(
        "codebuild", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    captured: dict[str, str] = {}
    with Stubber(client) as stub:
        stub.add_response(
            "start_build",
            {"build": {"id": "selfservice-provision:abc"}},
            {
                "projectName": "selfservice-provision",
                "idempotencyToken": ANY,
                "environmentVariablesOverride": ANY,
            },
        )
        client.meta.events.register(
            "provide-client-params.codebuild.StartBuild",
            lambda params, **_: captured.update(
                {v["name"]: v["value"] for v in params["environmentVariablesOverride"]}
            ),
        )
        CodeBuildStarter(client, "selfservice-provision", "us-east-1").start(build)
    return captured


def test_a_plan_only_or_an_approved_build_says_so_in_its_environment() -> None:
    req = request()
    build = _second_attempt(req)
    plain = _overrides(build)
    assert not {"PLAN_ONLY", "APPROVED_PLAN_URI", "APPROVED_PLAN_SHA256"} & set(plain)
    assert _overrides(replace(build, plan_only=True))["PLAN_ONLY"] == "true"
    approved = _overrides(
        replace(
            build,
            approved_plan=ApprovedPlan(
                uri="s3://a/plans/x/1/", sha256="a" * 64, module_sha256="b" * 64
            ),
        )
    )
    assert {k: v for k, v in approved.items() if k.startswith("APPROVED_")} == {
        "APPROVED_PLAN_URI": "s3://a/plans/x/1/",
        "APPROVED_PLAN_SHA256": "a" * 64,
        "APPROVED_MODULE_SHA256": "b" * 64,
    }
    assert "PLAN_ONLY" not in approved


def test_the_review_input_goes_beside_the_variables_and_the_record_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mocked_aws(monkeypatch):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        artifacts = S3Artifacts(s3, "artifacts")
        document = ReviewInput(product="ec2-app", action=Action.CREATE, environment="dev")
        artifacts.put_review_input("req-1", 2, document)
        stored = s3.get_object(Bucket="artifacts", Key="tfvars/req-1/2.review-input.json")
        assert ReviewInput.model_validate_json(stored["Body"].read()) == document
        assert stored["ServerSideEncryption"] == "aws:kms"
        assert artifacts.plan_uri("req-1", 2) == "s3://artifacts/plans/req-1/2/"
        assert artifacts.get_build_record("req-1", 2) is None  # the build wrote none
        record = ApplyRecord(request_id="req-1", attempt=2, plan_sha256="a" * 64, applied=True)
        s3.put_object(Bucket="artifacts", Key="reviews/req-1/2.json", Body=record.model_dump_json())
        assert artifacts.get_build_record("req-1", 2) == record
