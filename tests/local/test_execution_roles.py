"""Every function, the build and Terraform run as the roles the templates deploy.

The platform is started on the real templates (IAM enforced, no event sources): each
function's execution environment, the local CodeBuild and the deploy-role hand-off of
the buildspec are checked against the embedded IAM.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.exceptions import ClientError

from provisioner.settings import PlanGuardrails
from selfservice.local.deploy import sam_generated_roles
from selfservice.local.functions import FunctionWorker
from selfservice.local.platform import LocalPlatform
from selfservice_runtime.settings_document import load_document
from tests.conftest import ROOT

ACCOUNT = "123456789012"
BUILD_ROLE = "selfservice-Provisioner-ProvisionProjectRole"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    workdir = tmp_path_factory.mktemp("roles")
    started = LocalPlatform(ROOT, workdir, say=lambda _: None, serve=False).start()
    try:
        yield started
    finally:
        started.stop()


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def test_each_function_role_is_the_one_its_template_deploys(
    platform: LocalPlatform,
) -> None:
    iam = platform.client("iam")
    checked = 0
    for stack in platform.deployed.stacks():
        generated = sam_generated_roles(stack.template, stack.parameters)
        explicit = stack.template.resources("AWS::IAM::Role")
        for spec in stack.functions:
            # An explicit Role (the SQS-fed functions) is the template's; else SAM's.
            role_ref = spec.properties.get("Role")
            expected = (
                explicit[role_ref["Fn::GetAtt"][0]]["Properties"]
                if role_ref
                else generated[f"{spec.logical_id}Role"]["Properties"]
            )
            role = iam.get_role(RoleName=_role_name(stack.function_role_arn(spec)))["Role"]
            trust = role["AssumeRolePolicyDocument"]
            assert [
                {k: sorted(v) if isinstance(v, list) else [v] for k, v in s["Principal"].items()}
                for s in trust["Statement"]
            ] == [{"Service": ["lambda.amazonaws.com"]}]
            attached = iam.list_attached_role_policies(RoleName=role["RoleName"])
            assert {p["PolicyArn"] for p in attached["AttachedPolicies"]} == set(
                expected.get("ManagedPolicyArns", [])
            )
            inline = set(iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"])
            assert {p["PolicyName"] for p in expected["Policies"]} <= inline
            checked += 1
    assert checked == len(platform.workers) == 6


def test_each_function_runs_as_its_execution_role(platform: LocalPlatform) -> None:
    for stack in platform.deployed.stacks():
        for spec in stack.functions:
            probe = dataclasses.replace(
                spec, handler="tests.local.caller_identity.lambda_handler", code_uri=ROOT
            )
            credentials = platform.workers[spec.logical_id].credentials
            worker = FunctionWorker(
                probe,
                platform.function_environment(stack, spec, credentials),
                platform.workdir / f"{spec.logical_id}-identity.log",
            )
            try:
                caller = worker.invoke({})
            finally:
                worker.stop()
            role = _role_name(stack.function_role_arn(spec))
            assert caller == (
                f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{stack.refs[spec.logical_id]}"
            ), spec.logical_id


def test_the_build_runs_as_the_projects_service_role(platform: LocalPlatform) -> None:
    assert platform.codebuild is not None
    credentials = platform.codebuild.client.credentials_for("selfservice-provision:b-1")
    caller = platform.client_as("sts", credentials).get_caller_identity()["Arn"]
    assert caller == f"arn:aws:sts::{ACCOUNT}:assumed-role/{BUILD_ROLE}/AWSCodeBuild-b-1"


def _deploy_role_from_buildspec(platform: LocalPlatform, product: str) -> str:
    """What the buildspec's pre_build hands Terraform as ``deploy_role_arn``."""
    spec = yaml.safe_load((ROOT / "services/provisioner/buildspec.yml").read_text())
    commands = [
        str(c) for c in spec["phases"]["pre_build"]["commands"] if "TF_VAR_deploy_role_arn" in c
    ]
    assert commands, "the buildspec never sets TF_VAR_deploy_role_arn"
    project = platform.stack("Provisioner").recorded["ProvisionProject"]
    environment = {
        v["Name"]: str(v["Value"]) for v in project["Environment"]["EnvironmentVariables"]
    }
    script = "\n".join([*commands, 'printf %s "$TF_VAR_deploy_role_arn"'])
    return subprocess.run(
        ["bash", "-c", script],
        env={
            **environment,
            "PRODUCT": product,
            "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:us-east-1:{ACCOUNT}:build/p:b-2",
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("product", ["ec2-app", "aws-account"])
def test_terraform_is_handed_the_products_deploy_role_and_the_build_may_assume_it(
    platform: LocalPlatform, product: str
) -> None:
    handed = _deploy_role_from_buildspec(platform, product)
    assert handed == platform.deployed.product_roles[f"selfservice-product-{product}"]
    assert platform.codebuild is not None
    build = platform.codebuild.client.credentials_for("selfservice-provision:b-2")
    assumed = platform.client_as("sts", build).assume_role(
        RoleArn=handed, RoleSessionName="selfservice-req-1"
    )
    assert assumed["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/selfservice-product-{product}/selfservice-req-1"
    )


def test_a_deploy_role_trusts_the_build_role_only(platform: LocalPlatform) -> None:
    role = platform.deployed.product_roles["selfservice-product-ec2-app"]
    trust = platform.client("iam").get_role(RoleName=_role_name(role))["Role"]
    statements = trust["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in statements] == [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{BUILD_ROLE}"}
    ]
    consumer = platform.workers["RequestConsumerFunction"].credentials
    with pytest.raises(ClientError) as refused:
        platform.client_as("sts", consumer).assume_role(RoleArn=role, RoleSessionName="nope")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "sts:AssumeRole" in str(refused.value)


def _build_log_group(platform: LocalPlatform) -> str:
    return str(platform.stack("Provisioner").refs["ProvisionBuildLogs"])


def test_the_build_role_may_create_and_write_its_log_stream(platform: LocalPlatform) -> None:
    """CodeBuild creates the build's stream as the service role (the old
    ``${ProvisionBuildLogs.Arn}:log-stream:*`` grant refused it)."""
    assert platform.codebuild is not None
    credentials = platform.codebuild.client.credentials_for("selfservice-provision:b-3")
    logs = platform.client_as("logs", credentials)
    group = _build_log_group(platform)
    logs.create_log_stream(logGroupName=group, logStreamName="b-3")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="b-3",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "Error: boom"}],
    )
    reader = platform.client_as("logs", platform.workers["BuildEventsFunction"].credentials)
    events: list[dict[str, Any]] = reader.get_log_events(
        logGroupName=group, logStreamName="b-3", startFromHead=False
    )["events"]
    assert [e["message"] for e in events] == ["Error: boom"]


def test_every_role_the_templates_deploy_exists_with_its_policies(
    platform: LocalPlatform,
) -> None:
    iam = platform.client("iam")
    names = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert set(platform.deployed.roles()) <= names
    build = iam.get_role_policy(RoleName=BUILD_ROLE, PolicyName="provision-build")
    resources = {
        s["Sid"]: s["Resource"] for s in build["PolicyDocument"]["Statement"] if "Sid" in s
    }
    assert resources["BuildLogs"] == (
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{_build_log_group(platform)}:log-stream:*"
    )
    for product in ("ec2-app", "aws-account"):
        policy = iam.get_role_policy(RoleName=f"selfservice-product-{product}", PolicyName="deploy")
        on_disk = json.loads(
            (ROOT / f"services/provisioner/products/{product}/deploy-policy.json").read_text()
        )
        assert policy["PolicyDocument"] == on_disk


def test_a_refused_call_names_the_action_and_the_resource(platform: LocalPlatform) -> None:
    """The stuck-ticket check may only query the ledger's index: a write is refused."""
    worker = platform.workers["StuckTicketsFunction"]
    writer = platform.client_as("dynamodb", worker.credentials)
    table = platform.stack("Provisioner").refs["LedgerTable"]
    with pytest.raises(ClientError) as refused:
        writer.put_item(TableName=table, Item={"pk": {"S": "x"}, "sk": {"S": "y"}})
    message = str(refused.value)
    assert "dynamodb:PutItem" in message
    assert f"table/{table}" in message


@pytest.mark.parametrize("function", ["RequestConsumerFunction", "BuildEventsFunction"])
def test_the_build_drivers_read_the_provisioners_configuration_document_as_their_roles(
    platform: LocalPlatform, function: str
) -> None:
    """The document the local runtime seeds (the repository's example) is read through
    the shared loader as each function's role reads it; the stuck-ticket check, which
    has no use for it, may not."""
    provisioner = platform.stack("Provisioner")
    parameter = str(provisioner.refs["ProvisionerConfig"])
    assert provisioner.environments[function]["PROVISIONER_CONFIG_PARAMETER"] == parameter
    ssm = platform.client_as("ssm", platform.workers[function].credentials)
    example = (ROOT / "config/provisioner.example.json").read_text()
    assert load_document(
        SSMProvider(boto3_client=ssm), parameter, PlanGuardrails
    ) == PlanGuardrails.model_validate_json(example)
    checker = platform.client_as("ssm", platform.workers["StuckTicketsFunction"].credentials)
    with pytest.raises(ClientError) as refused:
        checker.get_parameter(Name=parameter)
    assert "ssm:GetParameter" in str(refused.value)


def _local_endpoint(platform: LocalPlatform, service: str, url: str, function: str) -> Any:
    credentials = platform.workers[function].credentials
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


def test_the_local_codebuild_refuses_start_build_to_a_role_without_it(
    platform: LocalPlatform,
) -> None:
    assert platform.codebuild is not None
    notifier = _local_endpoint(platform, "codebuild", platform.codebuild.url, "WriteBackFunction")
    project = platform.stack("Provisioner").refs["ProvisionProject"]
    with pytest.raises(ClientError) as refused:
        notifier.start_build(projectName=project, idempotencyToken="not-mine")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert (
        f"not authorized to perform: codebuild:StartBuild on resource: "
        f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/{project}"
    ) in str(refused.value)


def test_the_local_ssm_sends_commands_only_to_instances_the_ops_role_may_target(
    platform: LocalPlatform,
) -> None:
    assert platform.ssm is not None
    allowed = platform.launch_instances(1)
    untagged = platform.launch_instances(1, tags={"Name": "not-for-the-ops-api"})
    ssm = _local_endpoint(platform, "ssm", platform.ssm.url, "OpsApiFunction")
    sent = ssm.send_command(
        InstanceIds=allowed,
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["uptime"]},
    )
    assert sent["Command"]["CommandId"]
    with pytest.raises(ClientError) as refused:
        ssm.send_command(
            InstanceIds=untagged,
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": ["uptime"]},
        )
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert (
        f"ssm:SendCommand on resource: arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{untagged[0]}"
        in (str(refused.value))
    )
