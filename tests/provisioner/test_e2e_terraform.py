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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from provisioner.adapters.aws import CodeBuildStarter
from provisioner.domain.ledger import LedgerEntry
from provisioner.domain.lifecycle import State
from provisioner.domain.plan import PlanGuardrails, TerraformPlan, plan_sha256, summarize
from provisioner.domain.plan.build_review import (
    ReviewInput,
    ReviewRecord,
    parse_build_record,
    review_input_key,
    review_record_key,
)
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
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import (
    AnyEvent,
    ProvisioningFailed,
    ProvisioningPlanned,
    ProvisioningRefused,
    ProvisioningStarted,
    ProvisioningSucceeded,
    RequestApproved,
)
from selfservice_contracts.plan import ChangeAction, PlanVerdict
from selfservice_contracts.request import (
    Action,
    ApprovalState,
    ProvisioningRequest,
    TicketRef,
    TicketSystem,
)
from selfservice_runtime.parsing import parse_sqs_body
from tests.aws import drain, observe_bus
from tests.conftest import ROOT
from tests.environment import function_environment
from tests.lambda_context import FakeContext
from tests.provisioner.fakes import approval_required, received, request

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
    state_bucket: str

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
        """Run every queued build, and those their outcomes start (a re-plan, a slot)."""
        statuses = []
        while changes := self.codebuild.run_pending():
            for change in changes:
                response = build_events.lambda_handler(
                    sqs_event([json.dumps(change)]), FakeContext()
                )
                assert response == {"batchItemFailures": []}
                statuses.append(change["detail"]["build-status"])
        return statuses

    def published(self) -> list[AnyEvent]:
        return [parse_sqs_body(m["Body"]) for m in drain(self.observer_url, self.client("sqs"))]

    def ledger(self, request_id: str) -> State:
        return self.entry(request_id).state

    def entry(self, request_id: str) -> LedgerEntry:
        entry = request_consumer.runtime().service.ledger.get(request_id)
        assert entry is not None
        return entry

    def guard(self, guardrails: PlanGuardrails) -> None:
        """The plan guardrails both handlers review with from now on."""
        for module in (request_consumer, build_events):
            module.runtime().service.guardrails = lambda: guardrails

    def log(self) -> str:
        return "\n".join(self.codebuild.runs[-1].log[-40:])


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
                    "PROVISIONER_CONFIG_PARAMETER": str(refs["ProvisionerConfig"]),
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
            yield Platform(aws, codebuild, observer, usage, str(refs["StateBucket"]))
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


def _applied_in_one_build(platform: Platform, request_id: str) -> ProvisioningSucceeded:
    """No approval needed: one build planned, reviewed and applied that very plan."""
    published = platform.published()
    assert [e.type for e in published] == [
        "selfservice.provisioning.started.v1",
        "selfservice.provisioning.planned.v1",
        "selfservice.provisioning.succeeded.v1",
    ]
    planned, succeeded = published[1].data, published[2].data
    assert isinstance(planned, ProvisioningPlanned)
    assert isinstance(succeeded, ProvisioningSucceeded)
    assert (planned.verdict, planned.needs_approval) == (PlanVerdict.APPLY, False)
    assert succeeded.plan_sha256 == planned.plan_sha256
    # What it costs now counts towards its cost center's budget.
    assert planned.cost.monthly_after > 0
    assert platform.entry(request_id).monthly_cost == planned.cost.monthly_after
    return succeeded


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
    succeeded = _applied_in_one_build(platform, create.request_id)
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
    # What the provisioner writes beside the variables: the request's side of the review.
    platform.client("s3").put_object(
        Bucket=os.environ["ARTIFACTS_BUCKET_NAME"],
        Key=review_input_key(pending.request_id, 1),
        Body=ReviewInput(
            product="ec2-app",
            action=Action.CREATE,
            environment="staging",
            cost_center="CC-1042",
            approval_required=True,
        ).model_dump_json(),
    )
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
    # The build reviewed its plan: held for the approval the request waits for.
    record = parse_build_record(
        platform.client("s3")
        .get_object(
            Bucket=os.environ["ARTIFACTS_BUCKET_NAME"],
            Key=review_record_key(pending.request_id, 1),
        )["Body"]
        .read()
    )
    assert isinstance(record, ReviewRecord)
    assert (record.verdict.value, record.applied) == ("hold", False)
    assert record.summary == summary
    assert record.reasons == ["staging requests need an approval of their plan"]


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


# ---------------------------------------------------------------- approving a plan


@pytest.fixture
def fresh(platform: Platform) -> Iterator[Platform]:
    """The platform, with what earlier tests published drained, and its guardrails set
    back to the deployed document's afterwards."""
    platform.published()
    yield platform
    for module in (request_consumer, build_events):
        module.runtime().service.guardrails = module.runtime().guardrails


def _ticket(key: str, sys_id: str) -> TicketRef:
    return TicketRef(
        system=TicketSystem.SERVICENOW,
        key=key,
        internal_id=sys_id,
        url=f"https://acme.service-now.com/sc_req_item.do?sys_id={sys_id}",
    )


def _accounts(platform: Platform, name: str) -> list[dict[str, Any]]:
    listed = platform.client("organizations").list_accounts()["Accounts"]
    return [a for a in listed if a["Name"] == name]


def _approval(req: ProvisioningRequest, event_id: str, sha: str | None = None) -> AnyEvent:
    data = RequestApproved(
        request_id=req.request_id,
        ticket=req.ticket,
        request=req.model_copy(update={"approval": ApprovalState.APPROVED}),
        approved_at=datetime(2026, 12, 2, 17, 0, tzinfo=UTC),
        plan_sha256=sha,
    )
    return build_event(data, event_id=event_id)


def _types(events: list[AnyEvent]) -> list[str]:
    return [e.type.removeprefix("selfservice.provisioning.").removesuffix(".v1") for e in events]


def _planned(events: list[AnyEvent]) -> ProvisioningPlanned:
    (planned,) = [e.data for e in events if isinstance(e.data, ProvisioningPlanned)]
    return planned


def _applied_exactly(platform: Platform, plan_sha256: str) -> None:
    """The approval's build applied exactly that plan: it started to, and did."""
    applied = platform.published()
    assert _types(applied) == ["started", "succeeded"]
    started, succeeded = (e.data for e in applied)
    assert isinstance(started, ProvisioningStarted)
    assert isinstance(succeeded, ProvisioningSucceeded)
    assert started.approved_plan_sha256 == plan_sha256 == succeeded.plan_sha256


def _approved_while_planning(platform: Platform, create: ProvisioningRequest) -> list[AnyEvent]:
    """An approval that races its plan approves nothing: the ticket is told so. The
    events published once the plan is made."""
    platform.deliver(_approval(create, "plan-early"))
    assert platform.ledger(create.request_id) is State.PLANNING
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    shown = platform.published()
    assert _types(shown) == ["started", "refused", "planned"]
    early = shown[1].data
    assert isinstance(early, ProvisioningRefused)
    assert (early.state, early.action) == ("planning", Action.CREATE)
    assert "the approval must be of the plan" in early.reason
    return shown


def test_an_approval_applies_exactly_the_plan_it_was_shown_and_a_destroy_shows_what_goes(
    fresh: Platform,
) -> None:
    platform = fresh
    ticket = _ticket("RITM0010101", "a0b1c2d3e4f5061728394a5b6c7d8e9f")
    create = request(
        product="aws-account",
        ticket=ticket,
        account_name="approved-plan",
        approval=ApprovalState.REQUESTED,
    )
    platform.deliver(approval_required(create, "plan-1"))
    assert platform.ledger(create.request_id) is State.PLANNING
    shown = _approved_while_planning(platform, create)
    planned = _planned(shown)
    assert (planned.verdict, planned.needs_approval) == (PlanVerdict.HOLD, True)
    assert [(r.address, r.action) for r in planned.summary.resources] == [
        ("aws_organizations_account.this", ChangeAction.CREATE)
    ]
    assert planned.cost.monthly_after == Decimal("0.00")  # an account itself costs nothing
    assert any("new account" in note for note in planned.cost.not_priced)
    # Nothing exists before the approval; the ledger holds the plan the ticket was shown.
    assert _accounts(platform, "approved-plan") == []
    held = platform.entry(create.request_id)
    assert held.state is State.AWAITING_APPROVAL
    assert held.held_plan is not None
    assert held.held_plan.sha256 == planned.plan_sha256

    platform.deliver(_approval(create, "plan-2"))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    _applied_exactly(platform, planned.plan_sha256)
    (account,) = _accounts(platform, "approved-plan")
    assert account["Status"] == "ACTIVE"
    history = request_consumer.runtime().service.ledger.history(create.request_id)
    (approval,) = [t for t in history if t.to_state is State.APPROVED]
    assert approval.detail["plan_sha256"] == planned.plan_sha256

    # A decommission needing an approval shows what it destroys before anything goes.
    destroy = request(
        product="aws-account",
        ticket=ticket,
        action=Action.DESTROY,
        account_name="approved-plan",
        approval=ApprovalState.REQUESTED,
    )
    platform.deliver(approval_required(destroy, "plan-3"))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    planned = _planned(platform.published())
    assert (planned.verdict, planned.summary.counts.destroy) == (PlanVerdict.HOLD, 1)
    assert [(r.address, r.action) for r in planned.summary.resources] == [
        ("aws_organizations_account.this", ChangeAction.DELETE)
    ]
    assert _accounts(platform, "approved-plan")[0]["Status"] == "ACTIVE"
    platform.deliver(_approval(destroy, "plan-4", sha=planned.plan_sha256))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    succeeded = platform.published()[-1].data
    assert isinstance(succeeded, ProvisioningSucceeded)
    assert succeeded.plan_sha256 == planned.plan_sha256
    assert _accounts(platform, "approved-plan")[0]["Status"] == "SUSPENDED"
    assert platform.ledger(create.request_id) is State.DESTROYED


def test_a_plan_gone_stale_before_its_approval_is_not_applied_but_planned_again(
    fresh: Platform,
) -> None:
    platform = fresh
    ticket = _ticket("RITM0010102", "b0b1c2d3e4f5061728394a5b6c7d8e9f")
    create = request(
        product="aws-account",
        ticket=ticket,
        account_name="stale-plan",
        approval=ApprovalState.REQUESTED,
    )
    platform.deliver(approval_required(create, "stale-1"))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    first = _planned(platform.published())

    # Between the plan and its approval, another run changed this ticket's state.
    platform.client("s3").put_object(
        Bucket=platform.state_bucket,
        Key=load_product("aws-account").state_key(create),
        Body=json.dumps(
            {
                "version": 4,
                "terraform_version": "1.11.4",
                "serial": 1,
                "lineage": "5b1f2c6e-0d3a-4e8f-9a7b-1c2d3e4f5a6b",
                "outputs": {},
                "resources": [],
                "check_results": None,
            }
        ),
    )
    platform.deliver(_approval(create, "stale-2"))
    assert platform.run_builds() == ["SUCCEEDED", "SUCCEEDED"], platform.log()
    events = platform.published()
    assert _types(events) == ["started", "started", "planned"]
    assert events[0].data.approved_plan_sha256 == first.plan_sha256  # type: ignore[union-attr]
    again = _planned(events)
    assert again.verdict is PlanVerdict.HOLD
    assert again.replanned_because is not None
    assert "the state changed since the plan was made" in again.replanned_because
    assert again.plan_sha256 != first.plan_sha256
    assert _accounts(platform, "stale-plan") == []  # nothing was applied
    entry = platform.entry(create.request_id)
    assert entry.state is State.AWAITING_APPROVAL
    assert entry.held_plan is not None
    assert (entry.held_plan.sha256, entry.held_plan.attempt) == (again.plan_sha256, 3)

    # The ticket asked again; the approver approves again (a new approval in the ITSM, a
    # new event: see the intake tests): exactly the new plan is applied.
    platform.deliver(_approval(create, "stale-3"))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    _applied_exactly(platform, again.plan_sha256)
    assert [a["Status"] for a in _accounts(platform, "stale-plan")] == ["ACTIVE"]

    # A changed module (its hash) is refused the same way before Terraform runs: see
    # tests/provisioner/test_build_review.py (review.py approved) and test_plan_approval.py.


def test_a_plan_policy_refuses_and_a_budget_holds_with_their_reasons(
    fresh: Platform,
) -> None:
    platform = fresh
    platform.guard(
        PlanGuardrails.model_validate(
            {
                "plan_policies": {
                    "aws-account": {
                        "environments": {"staging": {"required_tags": ["DataClassification"]}}
                    }
                },
                "budgets": {"dev": {"*": {"monthly_usd": 5, "action": "require_approval"}}},
            }
        )
    )
    # A failed plan policy refuses the request: nothing is applied, the ticket says why.
    account = request(
        product="aws-account",
        ticket=_ticket("RITM0010103", "c0b1c2d3e4f5061728394a5b6c7d8e9f"),
        account_name="refused-plan",
    )
    platform.deliver(received(account, "refuse-1"))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    events = platform.published()
    assert _types(events) == ["started", "planned", "failed"]
    planned, failed = events[1].data, events[2].data
    assert isinstance(planned, ProvisioningPlanned)
    assert isinstance(failed, ProvisioningFailed)
    assert planned.verdict is PlanVerdict.REFUSE
    assert planned.reasons == ["aws_organizations_account.this lacks tag(s) DataClassification"]
    assert failed.build_status == "PLAN_REFUSED"
    assert failed.error_tail == planned.reasons
    assert platform.ledger(account.request_id) is State.REJECTED
    assert _accounts(platform, "refused-plan") == []

    # Over its budget (require_approval): held in the one build, the figures on the ticket.
    app_ticket = _ticket("RITM0010104", "d0b1c2d3e4f5061728394a5b6c7d8e9f")
    app = request(ticket=app_ticket)
    platform.deliver(received(app, "budget-1"))
    assert platform.run_builds() == ["SUCCEEDED"], platform.log()
    events = platform.published()
    assert _types(events) == ["started", "planned"]
    planned = _planned(events)
    assert (planned.verdict, planned.needs_approval) == (PlanVerdict.HOLD, True)
    assert planned.budget is not None
    (reason,) = planned.reasons
    assert reason == planned.budget.reason
    assert f"0.00 running + {planned.cost.monthly_after:.2f} this request" in reason
    assert "is over its ceiling of 5.00 USD/month" in reason
    assert platform.ledger(app.request_id) is State.AWAITING_APPROVAL
    assert _tagged(platform.client("ec2"), "vpcs", str(app_ticket)) == []
