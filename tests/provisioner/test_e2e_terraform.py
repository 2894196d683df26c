"""End to end: the real provisioner handlers drive real Terraform against a moto server.

Request events go in through ``RequestConsumerFunction`` (SQS batch, as Lambda would
call it); the real ``CodeBuildStarter`` starts builds on a local CodeBuild that runs the
real buildspec in a fresh workspace; the resulting ``CodeBuild Build State Change``
events go through ``BuildEventsFunction``. ec2-app is created (dev, no ALB), updated
(new instance type) and destroyed; aws-account is created and closed.

The templates are deployed for real (IAM enforced): the build runs as the project's
service role and Terraform assumes the product's deploy role, which the embedded AWS's
usage log shows. (The handlers run in this process with the account's root key; each
function's own role is exercised by tests/local/test_execution_roles.py and the demo.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from provisioner.adapters.aws import CodeBuildStarter
from provisioner.domain.lifecycle import State
from provisioner.domain.plan import TerraformPlan, plan_sha256, summarize
from provisioner.domain.products import load_product
from provisioner.handlers import build_events, request_consumer
from provisioner.runtime import build_runtime
from selfservice.local.codebuild_client import LocalCodeBuildClient
from selfservice.local.deploy import deploy_platform
from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
from selfservice.local.moto_server import USAGE_LOG_ENV, EmbeddedAws
from selfservice.local.terraform import (
    TerraformUnavailableError,
    find_provider_mirror,
    terraform_environment,
)
from selfservice.templates import load_platform
from selfservice_contracts.events import AnyEvent, ProvisioningSucceeded
from selfservice_contracts.request import Action, TicketRef, TicketSystem
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import drain, observe_bus
from tests.conftest import ROOT
from tests.environment import function_environment
from tests.lambda_context import FakeContext
from tests.provisioner.fakes import received, request

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
TICKET_TAG = "selfservice:ticket"


def _terraform_ready() -> bool:
    try:
        find_provider_mirror()
    except TerraformUnavailableError:
        return False
    return True


@dataclass
class Platform:
    """The deployed pieces and helpers to drive them."""

    aws: EmbeddedAws
    codebuild: LocalCodeBuildClient
    observer_url: str
    usage_log: Path

    def calls_by(self, role: str) -> set[str]:
        """The actions a role's sessions were allowed, from the embedded AWS's usage log."""
        entries = [json.loads(line) for line in self.usage_log.read_text().splitlines()]
        return {e["action"] for e in entries if e["principal"] == role and e["decision"] == "Allow"}

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    def deliver(self, event: AnyEvent) -> dict[str, Any]:
        body = json.dumps(eventbridge_delivery(event))
        response: dict[str, Any] = dict(
            request_consumer.lambda_handler(sqs_event([body]), FakeContext())
        )
        return response

    def run_builds(self) -> list[str]:
        statuses = []
        for change in self.codebuild.run_pending():
            response = build_events.lambda_handler(sqs_event([json.dumps(change)]), FakeContext())
            assert response == {"batchItemFailures": []}
            statuses.append(change["detail"]["build-status"])
        return statuses

    def published(self) -> list[AnyEvent]:
        return [parse_sqs_body(m["Body"]) for m in drain(self.observer_url, self.client("sqs"))]

    def ledger(self, request_id: str) -> State:
        entry = request_consumer.runtime().service.ledger.get(request_id)
        assert entry is not None
        return entry.state


def _observe(bus: str) -> str:
    """A queue receiving every event the provisioner publishes on the platform's bus."""
    # EventBridge may deliver only what the queue's policy allows, as in AWS.
    queue_url = observe_bus(
        bus, {"source": ["selfservice.provisioner"]}, create_bus=False, delivery_policy=True
    )
    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    workloads = organizations.create_organizational_unit(ParentId=root, Name="Workloads")
    organizations.create_organizational_unit(
        ParentId=workloads["OrganizationalUnit"]["Id"], Name="NonProd"
    )
    return queue_url


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if not _terraform_ready():
        pytest.skip("terraform and its offline AWS provider are needed")
    work = tmp_path_factory.mktemp("e2e")
    saved = dict(os.environ)
    # The usage log `make iam-report` collects, else one of this run's own.
    usage = Path(os.environ.get(USAGE_LOG_ENV) or work / "iam-usage.jsonl")
    with EmbeddedAws(log_path=work / "moto.log", usage_log=usage) as aws:
        deployment = deploy_platform(
            load_platform(ROOT / "template.yaml"), endpoint_url=aws.endpoint
        )
        provisioner = next(s for s in deployment.stacks() if s.name.endswith("Provisioner"))
        refs = provisioner.refs
        project = provisioner.recorded["ProvisionProject"]
        env = {
            "AWS_ENDPOINT_URL": aws.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # The request consumer's and the build-events handler's (the same Globals),
            # naming what the deployment created.
            **function_environment(
                "RequestConsumerFunction",
                {
                    "POWERTOOLS_LOG_LEVEL": "WARNING",  # the LogLevel parameter: a quiet run
                    "EVENT_BUS_NAME": str(provisioner.parameters["EventBusName"]),
                    "LEDGER_TABLE_NAME": str(refs["LedgerTable"]),
                    "IDEMPOTENCY_TABLE_NAME": str(refs["IdempotencyTable"]),
                    "ARTIFACTS_BUCKET_NAME": str(refs["ArtifactsBucket"]),
                    "CODEBUILD_PROJECT_NAME": str(project["Name"]),
                },
            ),
        }
        os.environ.update(env)

        def build_credentials(build_id: str) -> dict[str, str]:
            assumed = aws.assume_role_as_service(
                str(project["ServiceRole"]),
                "codebuild.amazonaws.com",
                session_name=f"AWSCodeBuild-{build_id.split(':', 1)[1]}",
                source_arn=provisioner.attrs["ProvisionProject"]["Arn"],
                source_account="123456789012",
            )
            return {
                "AWS_ACCESS_KEY_ID": assumed["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
                "AWS_SESSION_TOKEN": assumed["SessionToken"],
            }

        try:
            observer = _observe(env["EVENT_BUS_NAME"])
            codebuild = LocalCodeBuildClient(
                ROOT,
                work / "builds",
                project=str(project["Name"]),
                project_environment={
                    v["Name"]: str(v["Value"])
                    for v in project["Environment"]["EnvironmentVariables"]
                },
                base_environment=terraform_environment(work, aws.endpoint, region=REGION),
                credentials=build_credentials,
            )
            for module in (request_consumer, build_events):
                module.config.cache_clear()
            build_runtime.cache_clear()  # shared by both handlers
            for module in (request_consumer, build_events):
                module.runtime().service.builds = CodeBuildStarter(
                    codebuild,  # type: ignore[arg-type]
                    str(project["Name"]),
                    REGION,
                )
            yield Platform(aws, codebuild, observer, usage)
        finally:
            for module in (request_consumer, build_events):
                module.config.cache_clear()
            build_runtime.cache_clear()
            os.environ.clear()
            os.environ.update(saved)


def _tagged(ec2: Any, resource: str, ticket: str) -> list[dict[str, Any]]:
    filters = [{"Name": f"tag:{TICKET_TAG}", "Values": [ticket]}]
    if resource == "instances":
        filters.append({"Name": "instance-state-name", "Values": ["pending", "running"]})
        return [
            i
            for r in ec2.describe_instances(Filters=filters)["Reservations"]
            for i in r["Instances"]
        ]
    return ec2.describe_vpcs(Filters=filters)["Vpcs"]  # type: ignore[no-any-return]


def test_ec2_app_create_update_destroy(platform: Platform) -> None:
    ec2 = platform.client("ec2")
    create = request()
    ticket = str(create.ticket)

    assert platform.deliver(received(create, "create-1")) == {"batchItemFailures": []}
    assert platform.run_builds() == ["SUCCEEDED"], "\n".join(platform.codebuild.runs[-1].log[-40:])
    assert platform.ledger(create.request_id) is State.SUCCEEDED
    instances = _tagged(ec2, "instances", ticket)
    assert [i["InstanceType"] for i in instances] == ["t3.micro"]
    tags = {t["Key"]: t["Value"] for t in instances[0]["Tags"]}
    assert tags["selfservice:request-id"] == create.request_id
    assert tags["CostCenter"] == "CC-1042"
    assert tags["SSMRunAllowed"] == "true"
    assert "KeyName" not in instances[0]
    template = ec2.describe_launch_template_versions(
        LaunchTemplateName="ec2-app-ritm0010042", Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert template["MetadataOptions"]["HttpTokens"] == "required"
    assert template["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    published = platform.published()
    assert [e.type for e in published] == [
        "selfservice.provisioning.started.v1",
        "selfservice.provisioning.succeeded.v1",
    ]
    succeeded = published[1].data
    assert isinstance(succeeded, ProvisioningSucceeded)
    assert succeeded.outputs["instance_ids"] == [instances[0]["InstanceId"]]

    # A redelivered and a replayed "received" start nothing.
    platform.deliver(received(create, "create-1"))
    platform.deliver(received(create, "create-replayed"))
    assert platform.run_builds() == []

    update = request(action=Action.UPDATE, instance_type="t3.small")
    platform.deliver(received(update, "update-1"))
    assert platform.run_builds() == ["SUCCEEDED"], "\n".join(platform.codebuild.runs[-1].log[-40:])
    assert [i["InstanceType"] for i in _tagged(ec2, "instances", ticket)] == ["t3.small"]

    platform.deliver(received(request(action=Action.DESTROY), "destroy-1"))
    assert platform.run_builds() == ["SUCCEEDED"], "\n".join(platform.codebuild.runs[-1].log[-40:])
    assert platform.ledger(create.request_id) is State.DESTROYED
    assert _tagged(ec2, "instances", ticket) == []
    assert _tagged(ec2, "vpcs", ticket) == []
    assert (
        platform.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=["ec2-app-ritm0010042"]
        )["AutoScalingGroups"]
        == []
    )
    # Every action planned first: a saved plan, its JSON and its SHA-256 per attempt.
    plans = _plans(platform, create.request_id)
    assert sorted(plans) == ["1", "2", "3"]
    actions = []
    for _attempt, files in sorted(plans.items()):
        assert set(files) == {"tfplan", "plan.json", "tfplan.sha256"}
        assert files["tfplan.sha256"].decode().strip() == plan_sha256(files["tfplan"])
        document = json.loads(files["plan.json"])
        actions.append(
            {a for c in document["resource_changes"] for a in c["change"]["actions"]}
            - {"no-op", "read"}
        )
    assert actions == [{"create"}, {"update"}, {"delete"}]

    # Terraform made the product's calls as its deploy role; the build role kept the state.
    product_calls = platform.calls_by("selfservice-product-ec2-app")
    assert {"ec2:CreateVpc", "ec2:DeleteVpc", "autoscaling:CreateAutoScalingGroup"} <= product_calls
    assert not {c for c in product_calls if c.startswith("s3:")}
    build_calls = platform.calls_by("selfservice-Provisioner-ProvisionProjectRole")
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "sts:AssumeRole"} <= build_calls
    assert not {c for c in build_calls if c.startswith(("ec2:", "autoscaling:"))}
    history = request_consumer.runtime().service.ledger.history(create.request_id)
    assert [t.to_state for t in history] == [
        State.RECEIVED,
        State.QUEUED,
        State.PROVISIONING,
        State.SUCCEEDED,
        State.QUEUED,
        State.UPDATING,
        State.SUCCEEDED,
        State.QUEUED,
        State.DESTROYING,
        State.DESTROYED,
    ]


def _plans(platform: Platform, request_id: str) -> dict[str, dict[str, bytes]]:
    """attempt → file name → content, under plans/<request>/ in the artifacts bucket."""
    s3 = platform.client("s3")
    found: dict[str, dict[str, bytes]] = {}
    bucket = os.environ["ARTIFACTS_BUCKET_NAME"]  # the deployed bucket (the fixture's env)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"plans/{request_id}/")
    for item in listed.get("Contents", []):
        _, _, attempt, name = item["Key"].split("/")
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        found.setdefault(attempt, {})[name] = body
    return found


def test_a_plan_only_build_keeps_the_plan_and_builds_nothing(platform: Platform) -> None:
    """A plan waiting for approval: the build plans, keeps the plan, and applies nothing."""
    ticket = TicketRef(
        system=TicketSystem.SERVICENOW,
        key="RITM0010099",
        internal_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        url="https://acme.service-now.com/sc_req_item.do?sys_id=0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    )
    pending = request(ticket=ticket, environment="staging", instance_type="t3.small")
    product = load_product("ec2-app")
    artifacts = request_consumer.runtime().service.artifacts
    variables = {
        "REQUEST_ID": pending.request_id,
        "TICKET_REF": str(ticket),
        "PRODUCT": "ec2-app",
        "ACTION": "create",
        "ATTEMPT": "1",
        "TFVARS_S3_URI": artifacts.put_tfvars(pending.request_id, 1, product.tfvars(pending)),
        "OUTPUTS_S3_URI": artifacts.outputs_uri(pending.request_id, 1),
        "STATE_KEY": product.state_key(pending),
        "PLAN_ONLY": "true",
    }
    platform.codebuild.start_build(
        projectName=os.environ["CODEBUILD_PROJECT_NAME"],
        idempotencyToken=f"plan-only-{pending.request_id}",
        environmentVariablesOverride=[
            {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()
        ],
    )
    (change,) = platform.codebuild.run_pending()
    assert change["detail"]["build-status"] == "SUCCEEDED", "\n".join(
        platform.codebuild.runs[-1].log[-40:]
    )
    ec2 = platform.client("ec2")
    assert _tagged(ec2, "vpcs", str(ticket)) == []
    assert _tagged(ec2, "instances", str(ticket)) == []
    files = _plans(platform, pending.request_id)["1"]
    plan = TerraformPlan.from_json(json.loads(files["plan.json"]))
    summary = summarize(plan, product.plan, "ec2-app", plan_sha256(files["tfplan"]))
    # dev-style defaults of the fakes' request: no load balancer, no NAT gateway.
    assert summary.counts.model_dump() == {"add": 26, "change": 0, "replace": 0, "destroy": 0}
    assert summary.plan_sha256 == files["tfplan.sha256"].decode().strip()
    template = next(r for r in summary.resources if r.address == "aws_launch_template.this")
    assert {a.path: a.after for a in template.attributes}["instance_type"] == "t3.small"


def test_aws_account_create_and_close(platform: Platform) -> None:
    ticket = TicketRef(
        system=TicketSystem.SERVICENOW,
        key="RITM0010077",
        internal_id="f1c2d3e4a5b60718293a4b5c6d7e8f01",
        url="https://acme.service-now.com/sc_req_item.do?sys_id=f1c2d3e4a5b60718293a4b5c6d7e8f01",
    )
    create = request(product="aws-account", ticket=ticket, account_name="checkout-staging")
    platform.deliver(received(create, "account-1"))
    assert platform.run_builds() == ["SUCCEEDED"], "\n".join(platform.codebuild.runs[-1].log[-40:])
    organizations = platform.client("organizations")
    (account,) = [
        a for a in organizations.list_accounts()["Accounts"] if a["Name"] == "checkout-staging"
    ]
    assert account["Status"] == "ACTIVE"
    tags = {
        t["Key"]: t["Value"]
        for t in organizations.list_tags_for_resource(ResourceId=account["Id"])["Tags"]
    }
    assert tags[TICKET_TAG] == "servicenow:RITM0010077"
    parent = organizations.list_parents(ChildId=account["Id"])["Parents"][0]["Id"]
    assert (
        organizations.describe_organizational_unit(OrganizationalUnitId=parent)[
            "OrganizationalUnit"
        ]["Name"]
        == "NonProd"
    )

    platform.deliver(
        received(
            request(
                product="aws-account",
                ticket=ticket,
                action=Action.DESTROY,
                account_name="checkout-staging",
            ),
            "account-2",
        )
    )
    assert platform.run_builds() == ["SUCCEEDED"], "\n".join(platform.codebuild.runs[-1].log[-40:])
    (closed,) = [
        a for a in organizations.list_accounts()["Accounts"] if a["Name"] == "checkout-staging"
    ]
    assert closed["Status"] == "SUSPENDED"
    assert platform.ledger(create.request_id) is State.DESTROYED
    account_calls = platform.calls_by("selfservice-product-aws-account")
    assert {"organizations:CreateAccount", "organizations:CloseAccount"} <= account_calls
