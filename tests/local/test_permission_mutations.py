"""Mutation proof: narrow one permission of the real templates and the flow it serves fails.

Each test takes the templates (or a product's deploy policy, or the deploy roles' trust
policy) as they are, changes one grant in memory — drops an action, breaks an ARN the
way the old log-stream grant was broken, removes a condition's match, drops a trust —
deploys the result into a fresh embedded AWS with IAM enforced, runs only the piece
that needs the grant, and asserts it fails with AccessDenied naming the action.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from provisioner.adapters.ledger_dynamodb import DynamoDBLedger
from provisioner.domain.lifecycle import State
from selfservice.local.deploy import (
    Deployment,
    deploy_platform,
    deploy_product_roles,
    deploy_role_trust_policy,
)
from selfservice.local.moto_server import AccessDeniedError, EmbeddedAws
from selfservice.local.platform import LocalPlatform
from selfservice.templates import Template, load_platform
from selfservice_contracts.events import ProvisioningFailed
from tests.aws import endpoint_client
from tests.conftest import ROOT

ACCOUNT = "123456789012"
PRODUCTS = ROOT / "services/provisioner/products"


def _service_template(platform: Template, name: str) -> Template:
    return next(t for t in platform.walk() if t.path.name == name)


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    properties = resource["Properties"]
    if "Policies" in properties and resource["Type"] == "AWS::Serverless::Function":
        inline: list[dict[str, Any]] = properties["Policies"][0]["Statement"]
        return inline
    statements: list[dict[str, Any]] = properties["Policies"][0]["PolicyDocument"]["Statement"]
    return statements  # the template's own list: a mutation narrows the deployed role


def _without_start_build(platform: Template) -> None:
    consumer = _service_template(platform, "provisioner.yaml").resources()[
        "RequestConsumerFunctionRole"
    ]
    statements = _statements(consumer)
    statements[:] = [s for s in statements if s.get("Sid") != "StartTerraformBuilds"]


def _with_the_old_log_stream_arn(platform: Template) -> None:
    role = _service_template(platform, "provisioner.yaml").resources()["ProvisionProjectRole"]
    for statement in _statements(role):
        if statement.get("Sid") == "BuildLogs":
            statement["Resource"] = {"Fn::Sub": "${ProvisionBuildLogs.Arn}:log-stream:*"}


def _mutated(*mutations: Callable[[Template], None]) -> Template:
    platform = load_platform(ROOT / "template.yaml")
    for mutate in mutations:
        mutate(platform)
    return platform


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """The platform with two independent grants narrowed: the request consumer's
    ``codebuild:StartBuild`` dropped, and the build role's log grant as it was before
    the fix. Each test below exercises one of them only."""
    workdir = tmp_path_factory.mktemp("narrowed")
    template = _mutated(_without_start_build, _with_the_old_log_stream_arn)
    started = LocalPlatform(
        ROOT, workdir, say=lambda _: None, serve=False, template=template
    ).start()
    try:
        yield started
    finally:
        started.stop()


def _audit_trail(platform: LocalPlatform, detail_type: str) -> list[dict[str, Any]]:
    """The events of ``detail_type`` the audit trail holds (EventBridge delivers them)."""
    logs = platform.client("logs")
    group = str(platform.deployed.root.refs["AuditTrail"])
    events = [
        json.loads(e["message"])
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        for e in page.get("events", [])
    ]
    return [e for e in events if e.get("detail-type") == detail_type]


@pytest.mark.e2e  # starts a platform (~30 s)
def test_without_start_build_the_request_consumer_fails_the_ticket_with_the_refusal(
    narrowed: LocalPlatform,
) -> None:
    """Issue 15: CodeBuild's AccessDenied is permanent, so the record is done (no retry,
    no DLQ) and the ticket is told: ``queued → failed``, ``provisioning.failed`` with
    ``NOT_STARTED`` and AWS's refusal, naming the role, the action and the project."""
    event = json.loads((ROOT / "events/RequestConsumerFunction.json").read_text())
    body = json.loads(event["Records"][0]["body"])
    request_id = body["detail"]["data"]["request_id"]
    answer = narrowed.workers["RequestConsumerFunction"].invoke(event)
    assert answer == {"batchItemFailures": []}  # nothing for SQS to retry
    project = narrowed.stack("Provisioner").attrs["ProvisionProject"]["Arn"]
    refusal = f"is not authorized to perform: codebuild:StartBuild on resource: {project}"
    role = "assumed-role/selfservice-Provisioner-RequestConsumerFunctionRole/"

    def failed() -> list[dict[str, Any]]:
        return _audit_trail(narrowed, "selfservice.provisioning.failed.v1")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not failed():
        time.sleep(0.2)
    (published,) = failed()
    data = ProvisioningFailed.model_validate(published["detail"]["data"])
    assert data.request_id == request_id
    assert data.build_status == "NOT_STARTED"
    assert data.phase is None
    assert data.build_id is None
    assert data.reason.startswith("CodeBuild refused to start the build: AccessDeniedException:")
    assert refusal in data.reason
    assert role in data.reason

    ledger = DynamoDBLedger(
        narrowed.client("dynamodb"), narrowed.stack("Provisioner").refs["LedgerTable"]
    )
    entry = ledger.get(request_id)
    assert entry is not None
    assert entry.state is State.FAILED
    assert entry.build_id is None
    assert [t.to_state for t in ledger.history(request_id)][-2:] == [State.QUEUED, State.FAILED]
    assert narrowed.codebuild is not None
    assert narrowed.codebuild.client.runs == []  # no build ran
    log = (narrowed.workdir / "RequestConsumerFunction.log").read_text()
    assert refusal in log  # and the function's log says so ("build not started")
    assert "build not started" in log


@pytest.mark.e2e
def test_with_the_old_log_stream_arn_a_build_fails_before_it_starts(
    narrowed: LocalPlatform,
) -> None:
    """The bug issue 15 found: ``${ProvisionBuildLogs.Arn}`` already ends in ``:*``."""
    assert narrowed.codebuild is not None
    codebuild = endpoint_client("codebuild", narrowed.codebuild.url)
    project = narrowed.stack("Provisioner").refs["ProvisionProject"]
    build_id = codebuild.start_build(
        projectName=project, idempotencyToken="old-log-arn", environmentVariablesOverride=[]
    )["build"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not narrowed.codebuild.finished:
        time.sleep(0.2)
    (event,) = narrowed.codebuild.finished
    detail = event["detail"]
    assert detail["build-id"].endswith(build_id)
    assert detail["build-status"] == "FAILED"
    (phase,) = detail["additional-information"]["phases"]
    assert phase["phase-type"] == "PROVISIONING"
    (context,) = phase["phase-context"]
    assert context.startswith("ACCESS_DENIED:")
    assert "logs:CreateLogStream" in context
    assert "ProvisionProjectRole" in context


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        yield embedded


def _fresh(aws: EmbeddedAws) -> Deployment:
    """The real templates, deployed into an emptied embedded AWS, without product roles."""
    urllib.request.urlopen(
        urllib.request.Request(f"{aws.endpoint}/moto-api/reset", method="POST"), timeout=30
    ).close()
    return deploy_platform(
        load_platform(ROOT / "template.yaml"), endpoint_url=aws.endpoint, product_roles=False
    )


def _build_credentials(aws: EmbeddedAws, deployment: Deployment) -> dict[str, str]:
    provisioner = next(s for s in deployment.stacks() if s.name.endswith("Provisioner"))
    project = provisioner.recorded["ProvisionProject"]
    credentials = aws.assume_role_as_service(
        str(project["ServiceRole"]),
        "codebuild.amazonaws.com",
        session_name="AWSCodeBuild-mutation",
        source_arn=provisioner.attrs["ProvisionProject"]["Arn"],
        source_account=ACCOUNT,
    )
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def _as_deploy_role(aws: EmbeddedAws, build: dict[str, str], product: str) -> dict[str, str]:
    assumed = endpoint_client("sts", aws.endpoint, credentials=build).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/selfservice-product-{product}",
        RoleSessionName="selfservice-req-mutation",
    )["Credentials"]
    return {
        "aws_access_key_id": assumed["AccessKeyId"],
        "aws_secret_access_key": assumed["SecretAccessKey"],
        "aws_session_token": assumed["SessionToken"],
    }


def test_without_its_trust_in_the_build_role_terraform_cannot_assume_a_deploy_role(
    aws: EmbeddedAws,
) -> None:
    deployment = _fresh(aws)
    provisioner = next(s for s in deployment.stacks() if s.name.endswith("Provisioner"))
    trust = deploy_role_trust_policy(PRODUCTS, provisioner.roles["ProvisionProjectRole"])
    assert _trusted(trust) == [provisioner.roles["ProvisionProjectRole"]]
    dropped = copy.deepcopy(trust)  # trusting another of the platform's roles instead
    dropped["Statement"][0]["Principal"] = {"AWS": provisioner.roles["RequestConsumerFunctionRole"]}
    deploy_product_roles(deployment, PRODUCTS, endpoint_url=aws.endpoint, trust_policy=dropped)
    build = _build_credentials(aws, deployment)
    with pytest.raises(ClientError) as refused:
        _as_deploy_role(aws, build, "ec2-app")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "sts:AssumeRole" in str(refused.value)
    assert "selfservice-product-ec2-app" in str(refused.value)


def _trusted(trust: dict[str, Any]) -> list[str]:
    return [s["Principal"]["AWS"] for s in trust["Statement"]]


def _ec2_app_policy() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PRODUCTS / "ec2-app/deploy-policy.json").read_text())
    return document


def _create_vpc(aws: EmbeddedAws, credentials: dict[str, str]) -> str:
    vpc: str = endpoint_client("ec2", aws.endpoint, credentials=credentials).create_vpc(
        CidrBlock="10.20.0.0/16",
        TagSpecifications=[
            {
                "ResourceType": "vpc",
                "Tags": [
                    {"Key": "ManagedBy", "Value": "selfservice"},
                    {"Key": "selfservice:ticket", "Value": "servicenow:RITM0000001"},
                ],
            }
        ],
    )["Vpc"]["VpcId"]
    return vpc


def _other_regions(statement: dict[str, Any]) -> None:
    values = statement.get("Condition", {}).get("StringEquals", {})
    if "aws:RequestedRegion" in values:
        values["aws:RequestedRegion"] = ["eu-central-1"]


def _another_tag(statement: dict[str, Any]) -> None:
    values = statement.get("Condition", {}).get("StringEquals", {})
    if "aws:RequestTag/ManagedBy" in values:
        values["aws:RequestTag/ManagedBy"] = "someone-else"


@pytest.mark.parametrize("narrow", [_other_regions, _another_tag], ids=["region", "request-tag"])
def test_a_deploy_policy_condition_that_no_longer_matches_refuses_the_create(
    aws: EmbeddedAws, narrow: Callable[[dict[str, Any]], None]
) -> None:
    """The ec2-app role creates only in the platform's regions and only with the
    platform's tags (``ManagedBy=selfservice``, the products' default tags): narrow
    either condition's values and the product's first create is refused."""
    deployment = _fresh(aws)
    deploy_product_roles(deployment, PRODUCTS, endpoint_url=aws.endpoint)
    build = _build_credentials(aws, deployment)
    assert _create_vpc(aws, _as_deploy_role(aws, build, "ec2-app")).startswith("vpc-")

    narrowed = _ec2_app_policy()
    for statement in narrowed["Statement"]:
        narrow(statement)
    deployment = _fresh(aws)
    deploy_product_roles(
        deployment, PRODUCTS, endpoint_url=aws.endpoint, policies={"ec2-app": narrowed}
    )
    build = _build_credentials(aws, deployment)
    with pytest.raises(ClientError) as refused:
        _create_vpc(aws, _as_deploy_role(aws, build, "ec2-app"))
    assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert "ec2:CreateVpc" in str(refused.value)


def test_the_ec2_app_role_deletes_only_what_the_platform_tagged(aws: EmbeddedAws) -> None:
    deployment = _fresh(aws)
    deploy_product_roles(deployment, PRODUCTS, endpoint_url=aws.endpoint)
    product = _as_deploy_role(aws, _build_credentials(aws, deployment), "ec2-app")
    root = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    foreign = endpoint_client("ec2", aws.endpoint, credentials=root).create_vpc(
        CidrBlock="10.30.0.0/16"
    )["Vpc"]["VpcId"]
    with pytest.raises(ClientError) as refused:
        endpoint_client("ec2", aws.endpoint, credentials=product).delete_vpc(VpcId=foreign)
    assert "ec2:DeleteVpc" in str(refused.value)
    endpoint_client("ec2", aws.endpoint, credentials=product).delete_vpc(
        VpcId=_create_vpc(aws, product)
    )


def test_a_function_role_without_the_trust_of_lambda_cannot_be_assumed(
    aws: EmbeddedAws,
) -> None:
    """The platform assumes each execution role as lambda.amazonaws.com: a role whose
    trust names another service is refused, as Lambda's CreateFunction would be."""
    deployment = _fresh(aws)
    intake = next(s for s in deployment.stacks() if s.name.endswith("Intake"))
    role = intake.roles["WebhookFunctionRole"]
    with pytest.raises(AccessDeniedError):
        aws.assume_role_as_service(
            role, "codebuild.amazonaws.com", session_name="not-lambda", source_account=ACCOUNT
        )


def test_the_deploy_role_trust_policy_names_only_the_build_role() -> None:
    trust = deploy_role_trust_policy(PRODUCTS, "arn:aws:iam::123456789012:role/build")
    assert trust["Statement"] == [
        {
            "Sid": "ProvisioningBuildOnly",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/build"},
            "Action": "sts:AssumeRole",
        }
    ]
