"""End to end: the real provisioner handlers drive real Terraform against a moto server.

Request events go in through ``RequestConsumerFunction`` (SQS batch, as Lambda would
call it); the real ``CodeBuildStarter`` starts builds on a local CodeBuild that runs the
real buildspec in a fresh workspace; the resulting ``CodeBuild Build State Change``
events go through ``BuildEventsFunction``. ec2-app is created (dev, no ALB), updated
(new instance type) and destroyed; aws-account is created and closed.
"""

from __future__ import annotations

import json
import os
import sys
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
from selfservice.local.codebuild import LocalCodeBuildClient
from selfservice.local.lambda_events import eventbridge_delivery, sqs_event
from selfservice.local.moto_server import EmbeddedAws
from selfservice.local.terraform import TerraformUnavailableError, cli_config, find_provider_mirror
from selfservice_contracts.envelope import parse_sqs_body
from selfservice_contracts.events import AnyEvent, ProvisioningSucceeded
from selfservice_contracts.request import Action, TicketRef, TicketSystem
from tests.conftest import ROOT
from tests.lambda_context import FakeContext
from tests.provisioner.fakes import received, request

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
PROJECT = "selfservice-provision"
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
        sqs = self.client("sqs")
        events = []
        while batch := sqs.receive_message(QueueUrl=self.observer_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            events += [parse_sqs_body(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=self.observer_url,
                Entries=[
                    {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch
                ],
            )
        return events

    def ledger(self, request_id: str) -> State:
        entry = request_consumer.runtime().service.ledger.get(request_id)
        assert entry is not None
        return entry.state


def _deploy(env: dict[str, str]) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in ("selfservice-state", "selfservice-artifacts"):
        s3.create_bucket(Bucket=bucket)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="selfservice-ledger",
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
    dynamodb.create_table(
        TableName="selfservice-idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name="selfservice-bus")
    queue_url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all",
        EventBusName="selfservice-bus",
        EventPattern=json.dumps({"source": ["selfservice.provisioner"]}),
    )
    events.put_targets(
        Rule="all", EventBusName="selfservice-bus", Targets=[{"Id": "q", "Arn": arn}]
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
    with EmbeddedAws(log_path=work / "moto.log") as aws:
        env = {
            "AWS_ENDPOINT_URL": aws.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "provisioner",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "EVENT_BUS_NAME": "selfservice-bus",
            "LEDGER_TABLE_NAME": "selfservice-ledger",
            "IDEMPOTENCY_TABLE_NAME": "selfservice-idempotency",
            "ARTIFACTS_BUCKET_NAME": "selfservice-artifacts",
            "CODEBUILD_PROJECT_NAME": PROJECT,
        }
        os.environ.update(env)
        try:
            observer = _deploy(env)
            codebuild = LocalCodeBuildClient(
                ROOT,
                work / "builds",
                project=PROJECT,
                project_environment={
                    "STATE_BUCKET": "selfservice-state",
                    "ARTIFACTS_BUCKET": "selfservice-artifacts",
                    "PRODUCT_ROLE_PREFIX": "selfservice-product-",
                },
                base_environment={
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                    "HOME": str(work),
                    "AWS_ENDPOINT_URL": aws.endpoint,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": REGION,
                    "AWS_DEFAULT_REGION": REGION,
                    "TF_CLI_CONFIG_FILE": str(cli_config(work)),
                    "TF_S3_USE_PATH_STYLE": "true",
                },
            )
            for module in (request_consumer, build_events):
                module.config.cache_clear()
            build_runtime.cache_clear()  # shared by both handlers
            for module in (request_consumer, build_events):
                module.runtime().service.builds = CodeBuildStarter(codebuild, PROJECT, REGION)  # type: ignore[arg-type]
            yield Platform(aws, codebuild, observer)
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
    listed = s3.list_objects_v2(Bucket="selfservice-artifacts", Prefix=f"plans/{request_id}/")
    for item in listed.get("Contents", []):
        _, _, attempt, name = item["Key"].split("/")
        body = s3.get_object(Bucket="selfservice-artifacts", Key=item["Key"])["Body"].read()
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
        projectName=PROJECT,
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
