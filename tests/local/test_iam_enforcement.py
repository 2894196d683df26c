"""IAM enforced by the embedded AWS: real roles, real credentials, AWS-shaped refusals."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from selfservice.local.moto_server import AccessDeniedError, EmbeddedAws

ACCOUNT = "123456789012"
REGION = "us-east-1"
LAMBDA = "lambda.amazonaws.com"


@dataclass
class Stack:
    aws: EmbeddedAws
    usage_log: Path

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        keys = credentials or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws.endpoint,
            region_name=REGION,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys.get("SessionToken"),
        )

    def role(self, policy: dict[str, Any], *, trust: dict[str, Any] | None = None) -> str:
        """A new role trusted by Lambda with ``policy`` inline; its ARN."""
        name = f"role-{uuid.uuid4().hex[:8]}"
        trust = trust or {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": LAMBDA}, "Action": "sts:AssumeRole"}
            ],
        }
        iam = self.client("iam")
        arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
        return arn

    def as_role(self, policy: dict[str, Any]) -> tuple[str, dict[str, str]]:
        arn = self.role(policy)
        return arn, self.aws.assume_role_as_service(arn, LAMBDA, session_name="fn")


def statements(*items: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(items)}


def allow(action: object, resource: object, **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    usage_log = tmp_path_factory.mktemp("iam") / "usage.jsonl"
    with EmbeddedAws(usage_log=usage_log) as aws:
        yield Stack(aws, usage_log)


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    error: dict[str, Any] = dict(refused.value.response["Error"])
    error["status"] = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error


# --- who may call ------------------------------------------------------------------------


def test_testing_is_the_root_user(stack: Stack) -> None:
    sts = stack.client("sts")
    assert sts.get_caller_identity()["Account"] == ACCOUNT
    stack.client("sqs").create_queue(QueueName="root-made")
    stack.client("dynamodb").list_tables()


def test_an_unknown_key_is_refused(stack: Stack) -> None:
    stranger = {"AccessKeyId": "AKIAUNKNOWNUNKNOWN00", "SecretAccessKey": "x"}
    error = error_of(stack.client("sqs", stranger).list_queues)
    assert error["Code"] == "InvalidClientTokenId" or error["Code"] == "UnrecognizedClientException"
    error = error_of(stack.client("iam", stranger).list_roles)
    assert error["Code"] == "InvalidClientTokenId"
    assert error["status"] == 403


def test_a_wrong_secret_is_refused(stack: Stack) -> None:
    forged = {"AccessKeyId": "testing", "SecretAccessKey": "not-the-secret"}
    assert error_of(stack.client("sts", forged).get_caller_identity)["Code"] == (
        "SignatureDoesNotMatch"
    )
    assert error_of(stack.client("dynamodb", forged).list_tables)["Code"] == (
        "InvalidSignatureException"
    )


def test_a_session_token_must_match(stack: Stack) -> None:
    _, credentials = stack.as_role(statements(allow("sqs:ListQueues", "*")))
    stack.client("sqs", credentials).list_queues()
    wrong = {**credentials, "SessionToken": "not-the-token"}
    assert error_of(stack.client("sqs", wrong).list_queues)["Code"] in (
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    )


def test_get_caller_identity_is_always_allowed_and_names_the_session(stack: Stack) -> None:
    arn, credentials = stack.as_role(statements({"Effect": "Deny", "Action": "*", "Resource": "*"}))
    identity = stack.client("sts", credentials).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{arn.split('/')[-1]}/fn"


# --- service principals -------------------------------------------------------------------


def test_a_service_gets_credentials_only_where_the_trust_policy_allows(stack: Stack) -> None:
    arn = stack.role(statements(allow("sqs:ListQueues", "*")))
    with pytest.raises(AccessDeniedError) as refused:
        stack.aws.assume_role_as_service(arn, "codebuild.amazonaws.com", session_name="b")
    assert arn in refused.value.message
    assert "codebuild.amazonaws.com" in refused.value.message


def test_a_trust_policy_conditioned_on_the_source_arn(stack: Stack) -> None:
    project = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/provision"
    trust = statements(
        {
            "Effect": "Allow",
            "Principal": {"Service": "codebuild.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnLike": {"aws:SourceArn": project},
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
            },
        }
    )
    arn = stack.role(statements(allow("logs:*", "*")), trust=trust)
    got = stack.aws.assume_role_as_service(
        arn, "codebuild.amazonaws.com", session_name="b", source_arn=project, source_account=ACCOUNT
    )
    assert set(got) == {"AccessKeyId", "SecretAccessKey", "SessionToken"}
    with pytest.raises(AccessDeniedError):
        stack.aws.assume_role_as_service(
            arn,
            "codebuild.amazonaws.com",
            session_name="b",
            source_arn=project + "-other",
            source_account=ACCOUNT,
        )


# --- a narrow role: inside succeeds, outside is refused as AWS refuses -----------------------


def test_a_narrow_role_is_refused_outside_its_policy_with_the_aws_message(stack: Stack) -> None:
    sqs = stack.client("sqs")
    mine = sqs.create_queue(QueueName="mine")["QueueUrl"]
    theirs = sqs.create_queue(QueueName="theirs")["QueueUrl"]
    arn, credentials = stack.as_role(
        statements(allow("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:mine", Sid="Send"))
    )
    role_name = arn.split("/")[-1]
    fn = stack.client("sqs", credentials)
    fn.send_message(QueueUrl=mine, MessageBody="ok")
    error = error_of(fn.send_message, QueueUrl=theirs, MessageBody="no")
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/fn is not authorized to perform: "
        f"sqs:SendMessage on resource: arn:aws:sqs:{REGION}:{ACCOUNT}:theirs because no "
        "identity-based policy allows the sqs:SendMessage action"
    )
    assert error_of(fn.receive_message, QueueUrl=mine)["Code"] == "AccessDenied"
    # A batch is authorized as its single-message action.
    fn.send_message_batch(QueueUrl=mine, Entries=[{"Id": "1", "MessageBody": "ok"}])
    error = error_of(
        fn.delete_message_batch, QueueUrl=mine, Entries=[{"Id": "1", "ReceiptHandle": "x"}]
    )
    assert "sqs:DeleteMessage on resource" in error["Message"]


def test_an_explicit_deny_is_named_in_the_message(stack: Stack) -> None:
    _, credentials = stack.as_role(
        statements(
            allow("dynamodb:*", "*"),
            {"Effect": "Deny", "Action": "dynamodb:ListTables", "Resource": "*"},
        )
    )
    error = error_of(stack.client("dynamodb", credentials).list_tables)
    assert error["Code"] == "AccessDeniedException"
    assert error["status"] == 400
    assert error["Message"].endswith("with an explicit deny in an identity-based policy")


def test_dynamodb_items_and_transactions_per_table(stack: Stack) -> None:
    dynamodb = stack.client("dynamodb")
    for name in ("ledger", "other"):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ledger"
    _, credentials = stack.as_role(
        statements(allow(["dynamodb:PutItem", "dynamodb:GetItem"], table))
    )
    fn = stack.client("dynamodb", credentials)
    fn.put_item(TableName="ledger", Item={"pk": {"S": "a"}})
    assert fn.get_item(TableName="ledger", Key={"pk": {"S": "a"}})["Item"]
    put = {"Put": {"TableName": "ledger", "Item": {"pk": {"S": "b"}}}}
    fn.transact_write_items(TransactItems=[put])
    other = {"Put": {"TableName": "other", "Item": {"pk": {"S": "b"}}}}
    error = error_of(fn.transact_write_items, TransactItems=[put, other])
    assert (
        "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/other"
        in (error["Message"])
    )


def test_put_events_needs_the_bus_and_the_source_the_policy_names(stack: Stack) -> None:
    stack.client("events").create_event_bus(Name="platform")
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/platform"
    _, credentials = stack.as_role(
        statements(
            allow(
                "events:PutEvents",
                bus,
                Condition={"StringEquals": {"events:source": "selfservice.intake"}},
            )
        )
    )
    events = stack.client("events", credentials)
    entry = {
        "EventBusName": "platform",
        "Source": "selfservice.intake",
        "DetailType": "t",
        "Detail": "{}",
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    error = error_of(events.put_events, Entries=[{**entry, "Source": "selfservice.notifier"}])
    assert "events:PutEvents on resource: " + bus in error["Message"]
    default = {k: v for k, v in entry.items() if k != "EventBusName"}
    assert "event-bus/default" in error_of(events.put_events, Entries=[default])["Message"]


def test_ssm_parameter_arns_have_one_slash(stack: Stack) -> None:
    stack.client("ssm").put_parameter(Name="/selfservice/ami", Value="ami-1", Type="String")
    stack.client("ssm").put_parameter(Name="plain", Value="v", Type="String")
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter"
    _, credentials = stack.as_role(
        statements(allow("ssm:GetParameter", [f"{arn}/selfservice/*", f"{arn}/plain"]))
    )
    ssm = stack.client("ssm", credentials)
    assert ssm.get_parameter(Name="/selfservice/ami")["Parameter"]["Value"] == "ami-1"
    assert ssm.get_parameter(Name="plain")["Parameter"]["Value"] == "v"
    assert error_of(ssm.get_parameters, Names=["/elsewhere"])["Code"] == "AccessDeniedException"


def test_log_streams_under_the_group_arn_and_the_broken_arn(stack: Stack) -> None:
    logs = stack.client("logs")
    logs.create_log_group(logGroupName="/aws/codebuild/provision")
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/provision:*"
    _, good = stack.as_role(
        statements(allow(["logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"], group))
    )
    _, broken = stack.as_role(
        statements(allow(["logs:CreateLogStream", "logs:GetLogEvents"], f"{group}:log-stream:*"))
    )
    stack.client("logs", good).create_log_stream(
        logGroupName="/aws/codebuild/provision", logStreamName="b1"
    )
    stack.client("logs", good).put_log_events(
        logGroupName="/aws/codebuild/provision",
        logStreamName="b1",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "hi"}],
    )
    stack.client("logs", good).get_log_events(
        logGroupName="/aws/codebuild/provision", logStreamName="b1"
    )
    error = error_of(
        stack.client("logs", broken).create_log_stream,
        logGroupName="/aws/codebuild/provision",
        logStreamName="b2",
    )
    assert "log-group:/aws/codebuild/provision:log-stream:b2" in error["Message"]
    error = error_of(
        stack.client("logs", broken).get_log_events,
        logGroupName="/aws/codebuild/provision",
        logStreamName="b1",
    )
    assert "logs:GetLogEvents on resource: " in error["Message"]
    assert (
        error["Message"]
        .split("on resource: ")[1]
        .startswith(
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/provision:log-stream:b1 "
        )
    )


def test_s3_objects_list_and_prefix(stack: Stack) -> None:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="state-bucket")
    s3.put_object(Bucket="state-bucket", Key="tickets/1.tfstate", Body=b"{}")
    _, credentials = stack.as_role(
        statements(
            allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::state-bucket/tickets/*"),
            allow(
                "s3:ListBucket",
                "arn:aws:s3:::state-bucket",
                Condition={"StringLike": {"s3:prefix": "tickets/*"}},
            ),
        )
    )
    build = stack.client("s3", credentials)
    assert build.get_object(Bucket="state-bucket", Key="tickets/1.tfstate")["Body"].read() == b"{}"
    build.put_object(Bucket="state-bucket", Key="tickets/2.tfstate", Body=b"{}")
    build.list_objects_v2(Bucket="state-bucket", Prefix="tickets/")
    error = error_of(build.get_object, Bucket="state-bucket", Key="other/1")
    assert error["Code"] == "AccessDenied"
    assert error["status"] == 403
    assert "s3:GetObject on resource: arn:aws:s3:::state-bucket/other/1" in error["Message"]
    assert error_of(build.list_objects_v2, Bucket="state-bucket")["Code"] == "AccessDenied"
    assert (
        error_of(build.delete_object, Bucket="state-bucket", Key="tickets/1.tfstate")["Code"]
        == "AccessDenied"
    )


def test_secrets_by_name_with_their_tags(stack: Stack) -> None:
    secrets = stack.client("secretsmanager")
    secrets.create_secret(
        Name="itsm/servicenow", SecretString="s", Tags=[{"Key": "app", "Value": "selfservice"}]
    )
    secrets.create_secret(Name="itsm/other", SecretString="s")
    _, credentials = stack.as_role(
        statements(
            allow(
                "secretsmanager:GetSecretValue",
                "*",
                Condition={"StringEquals": {"secretsmanager:ResourceTag/app": "selfservice"}},
            )
        )
    )
    fn = stack.client("secretsmanager", credentials)
    assert fn.get_secret_value(SecretId="itsm/servicenow")["SecretString"] == "s"
    error = error_of(fn.get_secret_value, SecretId="itsm/other")
    assert f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:itsm/other-" in error["Message"]


def test_send_command_on_instances_with_the_allow_tag_only(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def instance(tags: list[dict[str, str]]) -> str:
        spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
        run = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=spec)
        return str(run["Instances"][0]["InstanceId"])

    allowed = instance([{"Key": "selfservice:ops", "Value": "allowed"}])
    untagged = instance([])
    _, credentials = stack.as_role(
        statements(
            allow("ssm:SendCommand", f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"),
            allow(
                "ssm:SendCommand",
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*",
                Condition={"StringEquals": {"ssm:resourceTag/selfservice:ops": "allowed"}},
            ),
        )
    )
    ssm = stack.client("ssm", credentials)
    command = {"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["uptime"]}}
    ssm.send_command(InstanceIds=[allowed], **command)
    error = error_of(ssm.send_command, InstanceIds=[untagged], **command)
    assert f"instance/{untagged}" in error["Message"]


def test_run_instances_passes_the_instance_profile_role(stack: Stack) -> None:
    iam = stack.client("iam")
    ec2_trust = statements(
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.create_role(RoleName="app-instance", AssumeRolePolicyDocument=json.dumps(ec2_trust))
    iam.create_instance_profile(InstanceProfileName="app-instance")
    iam.add_role_to_instance_profile(InstanceProfileName="app-instance", RoleName="app-instance")
    image = stack.client("ec2").describe_images()["Images"][0]["ImageId"]
    run = allow("ec2:RunInstances", "*")
    _, without = stack.as_role(statements(run))
    pass_role = allow(
        "iam:PassRole",
        f"arn:aws:iam::{ACCOUNT}:role/app-instance",
        Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    )
    _, with_pass = stack.as_role(statements(run, pass_role))
    launch = {
        "ImageId": image,
        "MinCount": 1,
        "MaxCount": 1,
        "IamInstanceProfile": {"Name": "app-instance"},
    }
    error = error_of(stack.client("ec2", without).run_instances, **launch)
    assert error["Code"] == "UnauthorizedOperation"
    assert (
        "iam:PassRole on resource: arn:aws:iam::123456789012:role/app-instance" in error["Message"]
    )
    stack.client("ec2", with_pass).run_instances(**launch)


def test_a_role_assumes_another_only_through_its_trust_policy(stack: Stack) -> None:
    build_arn, build = stack.as_role(statements(allow("sts:AssumeRole", "*")))
    trusted = statements(
        {"Effect": "Allow", "Principal": {"AWS": build_arn}, "Action": "sts:AssumeRole"}
    )
    deploy_arn = stack.role(statements(allow("ec2:Describe*", "*")), trust=trusted)
    untrusted_arn = stack.role(statements(allow("ec2:Describe*", "*")))
    sts = stack.client("sts", build)
    assumed = sts.assume_role(RoleArn=deploy_arn, RoleSessionName="terraform")["Credentials"]
    stack.client("ec2", assumed).describe_vpcs()
    error = error_of(sts.assume_role, RoleArn=untrusted_arn, RoleSessionName="terraform")
    assert error["Code"] == "AccessDenied"
    assert f"sts:AssumeRole on resource: {untrusted_arn}" in error["Message"]


def test_an_iam_user_gets_its_groups_policies(stack: Stack) -> None:
    iam = stack.client("iam")
    iam.create_user(UserName="operator")
    iam.create_group(GroupName="operators")
    iam.add_user_to_group(GroupName="operators", UserName="operator")
    iam.attach_group_policy(
        GroupName="operators", PolicyArn="arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"
    )
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    operator = stack.client("sqs", key)
    operator.list_queues()
    url = stack.client("sqs").create_queue(QueueName="ops")["QueueUrl"]
    assert error_of(operator.send_message, QueueUrl=url, MessageBody="x")["Code"] == "AccessDenied"


# --- the local runtime's own API --------------------------------------------------------------


def test_authorize_for_the_local_endpoints(stack: Stack) -> None:
    project = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/provision"
    _, credentials = stack.as_role(statements(allow("codebuild:StartBuild", project)))
    stack.aws.authorize(credentials["AccessKeyId"], "codebuild:StartBuild", [project])
    with pytest.raises(AccessDeniedError) as refused:
        stack.aws.authorize(credentials["AccessKeyId"], "codebuild:StartBuild", [project + "2"])
    assert "is not authorized to perform: codebuild:StartBuild" in refused.value.message
    stack.aws.authorize("testing", "codebuild:StartBuild", [project + "2"])


def test_verify_signature_of_an_arbitrary_request(stack: Stack) -> None:
    arn, credentials = stack.as_role(statements(allow("codebuild:*", "*")))
    keys = Credentials(
        credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    body = b'{"projectName": "provision"}'
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:9/",
        data=body,
        headers={"X-Amz-Target": "CodeBuild_20161006.StartBuild", "Host": "127.0.0.1:9"},
    )
    SigV4Auth(keys, "codebuild", REGION).add_auth(request)
    headers = dict(request.headers.items())
    principal = stack.aws.verify_signature(method="POST", path="/", headers=headers, body=body)
    assert principal["role_arn"] == arn
    assert principal["kind"] == "assumed-role"
    with pytest.raises(AccessDeniedError) as refused:
        stack.aws.verify_signature(method="POST", path="/", headers=headers, body=body + b" ")
    assert refused.value.code == "Signature"


def test_every_decision_of_an_iam_principal_is_recorded(stack: Stack) -> None:
    url = stack.client("sqs").create_queue(QueueName="recorded")["QueueUrl"]
    arn, credentials = stack.as_role(statements(allow("sqs:SendMessage", "*", Sid="AnyQueue")))
    stack.client("sqs", credentials).send_message(QueueUrl=url, MessageBody="x")
    error_of(stack.client("sqs", credentials).receive_message, QueueUrl=url)
    role = arn.split("/")[-1]
    lines = [json.loads(line) for line in stack.usage_log.read_text().splitlines()]
    mine = [line for line in lines if line["principal"] == role]
    assert [(m["action"], m["decision"], m["statement"]) for m in mine] == [
        ("sqs:SendMessage", "Allow", f"{role}/inline#AnyQueue"),
        ("sqs:ReceiveMessage", "ImplicitDeny", None),
    ]
    assert mine[0]["resource"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:recorded"
    trust = [
        line for line in lines if line["action"] == "sts:AssumeRole" and line["resource"] == arn
    ]
    assert trust[0]["principal"] == LAMBDA
    assert trust[0]["decision"] == "Allow"


def test_eventbridge_delivers_to_a_queue_only_from_the_rules_its_policy_names(
    stack: Stack,
) -> None:
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rules = {}
    for name, source in (("allowed", "selfservice.intake"), ("stranger", "selfservice.other")):
        rules[name] = events.put_rule(
            Name=f"deliver-{name}", EventPattern=json.dumps({"source": [source]})
        )["RuleArn"]
        events.put_targets(Rule=f"deliver-{name}", Targets=[{"Id": "q", "Arn": queue}])
    policy = statements(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": rules["allowed"]}},
        }
    )
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    for source in ("selfservice.other", "selfservice.intake"):
        events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": "{}"}])
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["source"] for m in messages] == ["selfservice.intake"]
    lines = [json.loads(line) for line in stack.usage_log.read_text().splitlines()]
    refused = [line for line in lines if line["principal"] == "events.amazonaws.com"]
    assert [(r["resource"], r["decision"]) for r in refused] == [
        (queue, "ImplicitDeny"),
        (queue, "Allow"),
    ]


def test_tag_conditioned_create_and_delete_of_ec2_resources(stack: Stack) -> None:
    owned = {"StringEquals": {"aws:RequestTag/selfservice:product": "ec2-app"}}
    _, credentials = stack.as_role(
        statements(
            allow("ec2:CreateVpc", "*", Condition=owned),
            allow(
                "ec2:CreateTags", "*", Condition={"StringEquals": {"ec2:CreateAction": "CreateVpc"}}
            ),
            allow(
                "ec2:DeleteVpc",
                "*",
                Condition={"StringEquals": {"ec2:ResourceTag/selfservice:product": "ec2-app"}},
            ),
        )
    )
    ec2 = stack.client("ec2", credentials)
    tag = {"Key": "selfservice:product", "Value": "ec2-app"}
    vpc = ec2.create_vpc(
        CidrBlock="10.1.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}]
    )["Vpc"]["VpcId"]
    untagged = error_of(ec2.create_vpc, CidrBlock="10.2.0.0/16")
    assert untagged["Code"] == "UnauthorizedOperation"
    assert (
        "ec2:CreateVpc on resource: arn:aws:ec2:us-east-1:123456789012:vpc/*" in untagged["Message"]
    )
    foreign = stack.client("ec2").create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    assert f"vpc/{foreign}" in error_of(ec2.delete_vpc, VpcId=foreign)["Message"]
    ec2.delete_vpc(VpcId=vpc)


def test_create_service_linked_role_scoped_by_service_name(stack: Stack) -> None:
    scoped = allow(
        "iam:CreateServiceLinkedRole",
        "*",
        Condition={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
    )
    _, credentials = stack.as_role(statements(scoped))
    iam = stack.client("iam", credentials)
    error = error_of(iam.create_service_linked_role, AWSServiceName="autoscaling.amazonaws.com")
    assert "iam:CreateServiceLinkedRole" in error["Message"]
    iam.create_service_linked_role(AWSServiceName="elasticloadbalancing.amazonaws.com")


def test_attach_role_policy_conditioned_on_the_policy_arn(stack: Stack) -> None:
    core = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    stack.client("iam").create_role(
        RoleName="ec2-app-t1-instance", AssumeRolePolicyDocument=json.dumps(statements())
    )
    _, credentials = stack.as_role(
        statements(
            allow(
                "iam:AttachRolePolicy",
                "arn:aws:iam::*:role/ec2-app-*-instance",
                Condition={"ArnEquals": {"iam:PolicyARN": core}},
            )
        )
    )
    iam = stack.client("iam", credentials)
    iam.attach_role_policy(RoleName="ec2-app-t1-instance", PolicyArn=core)
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert (
        error_of(iam.attach_role_policy, RoleName="ec2-app-t1-instance", PolicyArn=admin)["Code"]
        == "AccessDenied"
    )


def test_unresolved_actions_are_listed(stack: Stack) -> None:
    _, credentials = stack.as_role(statements(allow("cloudformation:*", "*")))
    stack.client("cloudformation", credentials).list_stacks()
    stack.client("cloudformation", credentials).describe_stacks()
    stack.client("sqs").tag_queue(
        QueueUrl=stack.client("sqs").create_queue(QueueName="tagged")["QueueUrl"],
        Tags={"a": "b"},
    )
    listed = stack.aws.unresolved_actions()
    assert "cloudformation:ListStacks" in listed
    assert "sqs:TagQueue" not in listed
    lines = [json.loads(line) for line in stack.usage_log.read_text().splitlines()]
    marked = {line["action"] for line in lines if line.get("unresolved")}
    assert "cloudformation:ListStacks" in marked
    assert "sqs:SendMessage" not in marked


def test_an_auto_scaling_group_passes_its_template_role_and_creates_the_linked_role(
    stack: Stack,
) -> None:
    iam, ec2 = stack.client("iam"), stack.client("ec2")
    ec2_trust = statements(
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.create_role(RoleName="asg-instance", AssumeRolePolicyDocument=json.dumps(ec2_trust))
    iam.create_instance_profile(InstanceProfileName="asg-instance")
    iam.add_role_to_instance_profile(InstanceProfileName="asg-instance", RoleName="asg-instance")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="asg",
        LaunchTemplateData={"ImageId": image, "IamInstanceProfile": {"Name": "asg-instance"}},
    )["LaunchTemplate"]["LaunchTemplateId"]
    base = [allow(["autoscaling:CreateAutoScalingGroup", "ec2:RunInstances"], "*")]
    pass_role = allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/asg-instance")
    linked = allow(
        "iam:CreateServiceLinkedRole",
        "*",
        Condition={"StringEquals": {"iam:AWSServiceName": "autoscaling.amazonaws.com"}},
    )
    group = {
        "LaunchTemplate": {"LaunchTemplateId": template, "Version": "$Latest"},
        "MinSize": 0,
        "MaxSize": 1,
        "AvailabilityZones": ["us-east-1a"],
    }
    _, no_pass = stack.as_role(statements(*base, linked))
    error = error_of(
        stack.client("autoscaling", no_pass).create_auto_scaling_group,
        AutoScalingGroupName="g1",
        **group,
    )
    assert (
        "iam:PassRole on resource: arn:aws:iam::123456789012:role/asg-instance" in error["Message"]
    )
    _, no_link = stack.as_role(statements(*base, pass_role))
    error = error_of(
        stack.client("autoscaling", no_link).create_auto_scaling_group,
        AutoScalingGroupName="g1",
        **group,
    )
    assert "iam:CreateServiceLinkedRole" in error["Message"]
    _, full = stack.as_role(statements(*base, pass_role, linked))
    stack.client("autoscaling", full).create_auto_scaling_group(AutoScalingGroupName="g1", **group)
    # AWS created the linked role on first use: the next group needs no such permission.
    stack.client("autoscaling", no_link).create_auto_scaling_group(
        AutoScalingGroupName="g2", **group
    )


def test_a_permissions_boundary_on_the_role_caps_its_policies(stack: Stack) -> None:
    iam = stack.client("iam")
    boundary = iam.create_policy(
        PolicyName="only-sqs", PolicyDocument=json.dumps(statements(allow("sqs:*", "*")))
    )["Policy"]["Arn"]
    arn = stack.role(statements(allow("*", "*")))
    iam.put_role_permissions_boundary(RoleName=arn.split("/")[-1], PermissionsBoundary=boundary)
    credentials = stack.aws.assume_role_as_service(arn, LAMBDA, session_name="fn")
    stack.client("sqs", credentials).list_queues()
    assert error_of(stack.client("dynamodb", credentials).list_tables)["Code"] == (
        "AccessDeniedException"
    )


def test_principal_tags_as_policy_variables(stack: Stack) -> None:
    sqs = stack.client("sqs")
    blue = sqs.create_queue(QueueName="blue-work")["QueueUrl"]
    red = sqs.create_queue(QueueName="red-work")["QueueUrl"]
    arn = stack.role(
        statements(allow("sqs:SendMessage", "arn:aws:sqs:*:*:${aws:PrincipalTag/team}-*"))
    )
    stack.client("iam").tag_role(
        RoleName=arn.split("/")[-1], Tags=[{"Key": "team", "Value": "blue"}]
    )
    credentials = stack.aws.assume_role_as_service(arn, LAMBDA, session_name="fn")
    fn = stack.client("sqs", credentials)
    fn.send_message(QueueUrl=blue, MessageBody="x")
    assert error_of(fn.send_message, QueueUrl=red, MessageBody="x")["Code"] == "AccessDenied"


def test_refusals_of_cbor_services_are_read_by_the_sdk(stack: Stack) -> None:
    _, credentials = stack.as_role(statements(allow("sqs:ListQueues", "*")))
    cloudwatch = error_of(stack.client("cloudwatch", credentials).describe_alarms)
    assert cloudwatch["Code"] == "AccessDenied"
    assert "cloudwatch:DescribeAlarms" in cloudwatch["Message"]
    codebuild = error_of(stack.client("codebuild", credentials).list_projects)
    assert codebuild["Code"] == "AccessDeniedException"
    assert "codebuild:ListProjects" in codebuild["Message"]


def test_a_target_role_is_passed_to_eventbridge(stack: Stack) -> None:
    target_role = stack.role(statements(allow("events:PutEvents", "*")))
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    rules = allow(["events:PutRule", "events:PutTargets"], "*")
    passing = allow(
        "iam:PassRole",
        target_role,
        Condition={"StringEquals": {"iam:PassedToService": "events.amazonaws.com"}},
    )
    target = {"Id": "bus", "Arn": bus, "RoleArn": target_role}
    _, without = stack.as_role(statements(rules))
    events = stack.client("events", without)
    events.put_rule(Name="forward", EventPattern=json.dumps({"source": ["x"]}))
    error = error_of(events.put_targets, Rule="forward", Targets=[target])
    assert f"iam:PassRole on resource: {target_role}" in error["Message"]
    _, with_pass = stack.as_role(statements(rules, passing))
    stack.client("events", with_pass).put_targets(Rule="forward", Targets=[target])


def test_a_presigned_url_is_checked_and_authorized(stack: Stack) -> None:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    stack.client("s3").create_bucket(Bucket="outputs")
    stack.client("s3").put_object(Bucket="outputs", Key="run/1.txt", Body=b"output")
    _, credentials = stack.as_role(statements(allow("s3:GetObject", "arn:aws:s3:::outputs/run/*")))
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.aws.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(signature_version="s3v4"),
    )
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "outputs", "Key": "run/1.txt"})
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"output"
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)
    assert refused.value.code == 403
    stack.client("s3").put_object(Bucket="outputs", Key="other", Body=b"x")
    outside = s3.generate_presigned_url("get_object", Params={"Bucket": "outputs", "Key": "other"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(outside)
    assert b"AccessDenied" in refused.value.read()


def test_a_flow_log_passes_its_delivery_role(stack: Stack) -> None:
    vpc = stack.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    stack.client("logs").create_log_group(logGroupName="/flow")
    delivery = stack.role(statements(allow("logs:*", "*")))
    flow_logs = allow("ec2:CreateFlowLogs", "*")
    passing = allow(
        "iam:PassRole",
        delivery,
        Condition={"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}},
    )
    request = {
        "ResourceIds": [vpc],
        "ResourceType": "VPC",
        "TrafficType": "ALL",
        "LogGroupName": "/flow",
        "DeliverLogsPermissionArn": delivery,
    }
    _, without = stack.as_role(statements(flow_logs))
    error = error_of(stack.client("ec2", without).create_flow_logs, **request)
    assert f"iam:PassRole on resource: {delivery}" in error["Message"]
    _, with_pass = stack.as_role(statements(flow_logs, passing))
    stack.client("ec2", with_pass).create_flow_logs(**request)


def test_create_account_is_authorized_on_star_with_its_request_tags(stack: Stack) -> None:
    stack.client("organizations").create_organization(FeatureSet="ALL")
    tagged = {"StringEquals": {"aws:RequestTag/selfservice:ticket": "RITM1"}}
    _, credentials = stack.as_role(
        statements(allow("organizations:CreateAccount", "*", Condition=tagged))
    )
    organizations = stack.client("organizations", credentials)
    account = {"Email": "team@example.com", "AccountName": "team"}
    tags = [{"Key": "selfservice:ticket", "Value": "RITM1"}]
    organizations.create_account(**account, Tags=tags)
    assert error_of(organizations.create_account, **account)["Code"] == "AccessDeniedException"
    assert "organizations:CreateAccount" not in stack.aws.unresolved_actions()


def test_a_session_policy_caps_the_assumed_role(stack: Stack) -> None:
    _, caller = stack.as_role(statements(allow("sts:AssumeRole", "*")))
    trusted = statements(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    wide = stack.role(statements(allow(["sqs:*", "dynamodb:*"], "*")), trust=trusted)
    narrow = json.dumps(statements(allow("sqs:ListQueues", "*")))
    session = stack.client("sts", caller).assume_role(
        RoleArn=wide, RoleSessionName="capped", Policy=narrow
    )["Credentials"]
    stack.client("sqs", session).list_queues()
    assert error_of(stack.client("dynamodb", session).list_tables)["Code"] == (
        "AccessDeniedException"
    )


def test_an_accounts_own_tags_decide_moving_and_closing_it(stack: Stack) -> None:
    """Gap found wiring the aws-account deploy role: MoveAccount and CloseAccount were
    checked without the account's tags, so an ``aws:ResourceTag`` condition refused all."""
    organizations_root = stack.client("organizations")
    with contextlib.suppress(organizations_root.exceptions.AlreadyInOrganizationException):
        organizations_root.create_organization(FeatureSet="ALL")
    root_id = organizations_root.list_roots()["Roots"][0]["Id"]
    unit = organizations_root.create_organizational_unit(ParentId=root_id, Name="Workloads")
    unit_id = unit["OrganizationalUnit"]["Id"]

    def account(name: str, tags: list[dict[str, str]]) -> str:
        status = organizations_root.create_account(
            Email=f"{name}@example.com", AccountName=name, Tags=tags
        )["CreateAccountStatus"]
        return str(status["AccountId"])

    ours = account("ours", [{"Key": "ManagedBy", "Value": "selfservice"}])
    theirs = account("theirs", [])
    owned = {"StringEquals": {"aws:ResourceTag/ManagedBy": "selfservice"}}
    accounts = "arn:aws:organizations::*:account/*"
    parents = ["arn:aws:organizations::*:root/*", "arn:aws:organizations::*:ou/*"]
    _, credentials = stack.as_role(
        statements(
            allow(
                ["organizations:MoveAccount", "organizations:CloseAccount"],
                accounts,
                Condition=owned,
            ),
            allow("organizations:MoveAccount", parents),  # the parents carry no such tag
        )
    )
    organizations = stack.client("organizations", credentials)
    move = {"SourceParentId": root_id, "DestinationParentId": unit_id}
    refused = error_of(organizations.move_account, AccountId=theirs, **move)
    assert refused["Code"] == "AccessDeniedException"
    assert "organizations:MoveAccount" in refused["Message"]
    organizations.move_account(AccountId=ours, **move)
    assert (
        error_of(organizations.close_account, AccountId=theirs)["Code"] == "AccessDeniedException"
    )
    organizations.close_account(AccountId=ours)
