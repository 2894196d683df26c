"""Each gap in moto's IAM enforcement, shown: moto's decision, then the engine's.

moto 5.2.5 enforces IAM (``INITIAL_NO_AUTH_ACTION_COUNT``) with an evaluator that
ignores identity-policy conditions and NotResource, cannot read service principals,
checks every service but SQS/IAM/STS/S3 on ``*``, has no root user, answers JSON
services in XML, and lists every IAM user per request. In-process, no sockets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.models import IAMBackend

from selfservice.local.iam import deliveries, enforcement
from selfservice.local.iam.evaluator import Decision, Principal, Request, evaluate, evaluate_trust
from selfservice.local.iam.evaluator import parse_policy as parse
from selfservice.local.iam.resources import Check

ACCOUNT = "123456789012"
REGION = "us-east-1"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ledger"
SESSION = Principal(
    "assumed-role",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/fn/s",
    ACCOUNT,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/fn",
)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def restore() -> Iterator[None]:
    """The engine's enforcement is removed from this process's moto after the test."""
    try:
        yield
    finally:
        enforcement.disable()


def make_client(service: str, credentials: dict[str, str] | None = None) -> Any:
    return boto3.client(service, region_name=REGION, **(credentials or {}))  # type: ignore[call-overload]


def _user_with(policy: str) -> dict[str, str]:
    iam = make_client("iam")
    iam.create_user(UserName="u")
    iam.put_user_policy(UserName="u", PolicyName="p", PolicyDocument=policy)
    key = iam.create_access_key(UserName="u")["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


def _ledger() -> None:
    make_client("dynamodb").create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_gap_identity_policy_conditions_are_ignored() -> None:
    """AWS: a condition that does not hold keeps the statement from allowing."""
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/platform"
    policy = document(
        {
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": bus,
            "Condition": {"StringEquals": {"events:source": "selfservice.intake"}},
        }
    )
    moto = IAMPolicy(policy).is_action_permitted("events:PutEvents", bus)
    assert moto is PermissionResult.PERMITTED  # moto: allowed whatever the source
    request = Request(SESSION, "events:PutEvents", bus, {"events:source": ["someone.else"]})
    assert evaluate(request, identity_policies=[parse(policy, "p")]).decision is (
        Decision.IMPLICIT_DENY
    )


def test_gap_not_resource_is_ignored() -> None:
    """AWS: NotResource excludes the resources it names."""
    admin = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:admin-abc"
    policy = document(
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "NotResource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:admin-*",
        }
    )
    moto = IAMPolicy(policy).is_action_permitted("secretsmanager:GetSecretValue", admin)
    assert moto is PermissionResult.PERMITTED
    request = Request(SESSION, "secretsmanager:GetSecretValue", admin, {})
    assert evaluate(request, identity_policies=[parse(policy, "p")]).decision is (
        Decision.IMPLICIT_DENY
    )


def test_gap_service_principals_cannot_be_evaluated() -> None:
    """AWS: a trust policy names the service that may assume the role."""
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/fn"
    with pytest.raises(TypeError):  # moto looks for "AWS" only
        IAMPolicy(trust).is_action_permitted("sts:AssumeRole", role, "codebuild.amazonaws.com")
    codebuild = Principal(
        "service", "codebuild.amazonaws.com", ACCOUNT, service="codebuild.amazonaws.com"
    )
    lambda_ = Principal("service", "lambda.amazonaws.com", ACCOUNT, service="lambda.amazonaws.com")
    policy = parse(trust, "trust")
    denied = evaluate_trust(Request(codebuild, "sts:AssumeRole", role), trust_policy=policy)
    allowed = evaluate_trust(Request(lambda_, "sts:AssumeRole", role), trust_policy=policy)
    assert denied.decision is Decision.IMPLICIT_DENY
    assert allowed.allowed


def test_gap_trust_policy_conditions_other_than_string_equals_are_ignored() -> None:
    """AWS: ``ArnLike aws:SourceArn`` in a trust policy confines who may assume it."""
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "codebuild.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:codebuild:*:*:project/provision"}},
        }
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/build"
    moto = IAMPolicy(trust).is_action_permitted("sts:AssumeRole", role, None, {})
    assert moto is PermissionResult.PERMITTED
    codebuild = Principal(
        "service", "codebuild.amazonaws.com", ACCOUNT, service="codebuild.amazonaws.com"
    )
    other = {"aws:sourcearn": [f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/other"]}
    outcome = evaluate_trust(
        Request(codebuild, "sts:AssumeRole", role, other), trust_policy=parse(trust, "t")
    )
    assert outcome.decision is Decision.IMPLICIT_DENY


@mock_aws
def test_gap_resources_are_star_outside_sqs_iam_sts_s3(restore: None) -> None:
    """AWS: dynamodb:GetItem is authorized on the table's ARN."""
    policy = document({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE})
    credentials = _user_with(policy)
    _ledger()
    with enable_iam_authentication():
        moto_client = make_client("dynamodb", credentials)
        with pytest.raises(ClientError) as refused:  # moto checks "*" and refuses
            moto_client.get_item(TableName="ledger", Key={"pk": {"S": "a"}})
        # ...in XML, which a JSON client cannot even read the code of.
        assert refused.value.response["Error"]["Code"] == "403"
    enforcement.enable()
    client = make_client("dynamodb", credentials)
    client.get_item(TableName="ledger", Key={"pk": {"S": "a"}})
    with pytest.raises(ClientError) as refused:
        client.put_item(TableName="ledger", Item={"pk": {"S": "a"}})
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"dynamodb:PutItem on resource: {TABLE}" in refused.value.response["Error"]["Message"]


@mock_aws
def test_gap_there_is_no_root_user(restore: None) -> None:
    """AWS: the account's root user may do everything; here its key is ``testing``."""
    root = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    with enable_iam_authentication():
        with pytest.raises(ClientError) as refused:
            make_client("sqs", root).list_queues()
        assert "InvalidClientTokenId" in str(refused.value)
    enforcement.enable()
    make_client("sqs", root).list_queues()
    make_client("dynamodb", root).list_tables()


@mock_aws
def test_gap_every_request_lists_every_user(restore: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto finds a user's key by listing (and sorting) all users on each request."""
    calls: list[int] = []
    original = IAMBackend.list_users

    def counted(self: IAMBackend, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IAMBackend, "list_users", counted)
    credentials = _user_with(document({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))
    client = make_client("sqs", credentials)
    with enable_iam_authentication():
        for _ in range(3):
            client.list_queues()
    moto_calls, calls[:] = len(calls), []
    enforcement.enable()
    for _ in range(3):
        client.list_queues()
    assert moto_calls == 3
    assert calls == []  # the engine uses moto's access-key index


def test_gap_refusals_do_not_say_on_what_or_why() -> None:
    """AWS names the resource and the reason; moto's AccessDenied says neither."""
    from moto.core.exceptions import AccessDeniedError  # noqa: PLC0415

    moto = AccessDeniedError(user_arn=SESSION.arn, action="sqs:SendMessage")
    assert "resource" not in str(moto.description)
    check = Check("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q")
    ours = enforcement.AccessDenied(
        SESSION,
        check,
        evaluate(Request(SESSION, check.action, check.resource), identity_policies=[]),
    )
    assert ours.message.endswith(
        f"on resource: arn:aws:sqs:{REGION}:{ACCOUNT}:q because no identity-based policy "
        "allows the sqs:SendMessage action"
    )


@pytest.fixture
def checked_deliveries() -> Iterator[None]:
    yield
    deliveries.undo()


@mock_aws
def test_gap_eventbridge_delivers_to_a_queue_whose_policy_does_not_allow_it(
    checked_deliveries: None,
) -> None:
    """AWS: EventBridge may send to a queue only if the queue's policy allows its rule."""
    sqs, events = (
        make_client("sqs"),
        make_client("events"),
    )
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["s"]}))
    events.put_targets(Rule="r", Targets=[{"Id": "q", "Arn": arn}])
    entry = {"Source": "s", "DetailType": "t", "Detail": "{}"}
    events.put_events(Entries=[entry])
    assert (
        len(sqs.receive_message(QueueUrl=url).get("Messages", [])) == 1
    )  # moto: no policy, delivered
    deliveries.enable_delivery_checks()
    events.put_events(Entries=[entry])
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
