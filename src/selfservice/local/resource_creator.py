"""Create a template's resources in the embedded AWS, one API call sequence per type.

Each resource arrives with its properties already resolved (:mod:`.intrinsics`) and is
named as CloudFormation names it (``<stack>-<logical id>`` where the template gives no
name); the result is its ``Ref`` value and its ``Fn::GetAtt`` attributes.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable
from typing import Any

import boto3

from selfservice.local.intrinsics import ACCOUNT, REGION, DeploymentError

__all__ = ["ResourceCreator"]


def _generate_secret(spec: dict[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    generated = "".join(secrets.choice(alphabet) for _ in range(length))
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template and key:
        document = json.loads(template)
        document[key] = generated
        return json.dumps(document)
    return generated


class ResourceCreator:
    """Creates one resource of a template in moto; returns (Ref value, attributes)."""

    def __init__(self, session: boto3.session.Session, endpoint_url: str) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """A client of the embedded AWS, one per service."""
        if service not in self._clients:
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, region_name=REGION, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def create(
        self, stack: str, logical: str, kind: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Create resource ``logical`` of ``stack`` from its resolved properties."""
        method: Callable[[str, str, dict[str, Any]], tuple[Any, dict[str, Any]]] | None = {
            "AWS::Events::EventBus": self.event_bus,
            "AWS::Events::Archive": self.archive,
            "AWS::Events::Rule": self.rule,
            "AWS::SQS::Queue": self.queue,
            "AWS::SQS::QueuePolicy": self.queue_policy,
            "AWS::SNS::Topic": self.topic,
            "AWS::SNS::TopicPolicy": self.topic_policy,
            "AWS::KMS::Key": self.kms_key,
            "AWS::KMS::Alias": self.kms_alias,
            "AWS::DynamoDB::Table": self.table,
            "AWS::S3::Bucket": self.bucket,
            "AWS::S3::BucketPolicy": self.bucket_policy,
            "AWS::SSM::Parameter": self.parameter,
            "AWS::SecretsManager::Secret": self.secret,
            "AWS::Logs::LogGroup": self.log_group,
            "AWS::Logs::ResourcePolicy": self.log_resource_policy,
            "AWS::CloudWatch::Alarm": self.alarm,
            "AWS::CloudWatch::Dashboard": self.dashboard,
            "AWS::IAM::Role": self.role,
            "AWS::IAM::RolePolicy": self.role_policy,
            "AWS::IAM::Policy": self.inline_policy,
            "AWS::IAM::ManagedPolicy": self.managed_policy,
        }.get(kind)
        if method is None:
            raise DeploymentError(f"{stack}/{logical}: {kind} cannot be deployed locally")
        return method(stack, logical, props)

    def event_bus(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        return props["Name"], {"Arn": arn, "Name": props["Name"]}

    def archive(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        name = f"{stack}-{logical}"[:48]
        arn = self.client("events").create_archive(
            ArchiveName=name,
            EventSourceArn=props["SourceArn"],
            EventPattern=json.dumps(props.get("EventPattern", {})),
            RetentionDays=int(props.get("RetentionDays", 0)),
        )["ArchiveArn"]
        return name, {"Arn": arn}

    def rule(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = f"{stack}-{logical}"[:64]
        bus = props.get("EventBusName", "default")
        events = self.client("events")
        arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
            Description=props.get("Description", ""),
        )["RuleArn"]
        targets = [dict(target) for target in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return name, {"Arn": arn}

    def queue(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        fifo = str(props.get("FifoQueue", "")).lower() == "true"
        name = f"{stack}-{logical}"[:75] + (".fifo" if fifo else "")
        attributes = {
            key: json.dumps(value)
            if isinstance(value, dict)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
            for key, value in props.items()
            if key
            in {
                "FifoQueue",
                "ContentBasedDeduplication",
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "RedrivePolicy",
                "SqsManagedSseEnabled",
                "DelaySeconds",
            }
        }
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def queue_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        return f"{stack}-{logical}", {}

    def topic(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        attributes = (
            {"KmsMasterKeyId": props["KmsMasterKeyId"]} if "KmsMasterKeyId" in props else {}
        )
        arn = self.client("sns").create_topic(Name=f"{stack}-{logical}", Attributes=attributes)[
            "TopicArn"
        ]
        return arn, {"TopicName": f"{stack}-{logical}", "TopicArn": arn}

    def topic_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        for arn in props["Topics"]:
            self.client("sns").set_topic_attributes(
                TopicArn=arn,
                AttributeName="Policy",
                AttributeValue=json.dumps(props["PolicyDocument"]),
            )
        return f"{stack}-{logical}", {}

    def kms_key(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        kms = self.client("kms")
        policy = props.get("KeyPolicy")
        metadata = kms.create_key(
            Description=props.get("Description", ""),
            KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
            **({"Policy": json.dumps(policy)} if policy else {}),
        )["KeyMetadata"]
        if str(props.get("EnableKeyRotation", "")).lower() == "true":
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
        return metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}

    def kms_alias(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        self.client("kms").create_alias(
            AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"]
        )
        return props["AliasName"], {}

    def table(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = f"{stack}-{logical}"
        dynamodb = self.client("dynamodb")
        definition: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        arn = dynamodb.create_table(**definition)["TableDescription"]["TableArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        return name, {"Arn": arn}

    def bucket(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = re.sub(r"[^a-z0-9-]", "-", f"{stack}-{logical}".lower())[:63]
        self.client("s3").create_bucket(Bucket=name)
        return name, {"Arn": f"arn:aws:s3:::{name}"}

    def bucket_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        # The embedded AWS is plain HTTP on loopback, so "deny unless TLS" would deny
        # everything; those statements (and only those) are left out locally.
        document = dict(props["PolicyDocument"])
        document["Statement"] = [
            statement
            for statement in document["Statement"]
            if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
        ]
        if document["Statement"]:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
        return f"{stack}-{logical}", {}

    def parameter(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        name = props.get("Name") or f"/{stack}/{logical}"
        self.client("ssm").put_parameter(
            Name=name, Type=props.get("Type", "String"), Value=props["Value"]
        )
        return name, {"Type": props.get("Type", "String"), "Value": props["Value"]}

    def secret(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        value = props.get("SecretString") or _generate_secret(props.get("GenerateSecretString", {}))
        arn = self.client("secretsmanager").create_secret(
            Name=f"{stack}-{logical}", SecretString=value
        )["ARN"]
        return arn, {"Id": arn}

    def log_group(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        name = props.get("LogGroupName") or f"/aws/{stack}/{logical}"
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=int(props["RetentionInDays"])
            )
        return name, {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"}

    def log_resource_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        document = props["PolicyDocument"]
        self.client("logs").put_resource_policy(
            policyName=props["PolicyName"],
            policyDocument=document if isinstance(document, str) else json.dumps(document),
        )
        return props["PolicyName"], {}

    def alarm(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        name = props.get("AlarmName") or f"{stack}-{logical}"
        keys = {
            "Namespace",
            "MetricName",
            "Dimensions",
            "Statistic",
            "ExtendedStatistic",
            "Unit",
            "Period",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "AlarmDescription",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "ActionsEnabled",
            "Metrics",  # metric math: the same MetricDataQuery shape as the API's
        }
        self.client("cloudwatch").put_metric_alarm(
            AlarmName=name, **{k: v for k, v in props.items() if k in keys}
        )
        return name, {"Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"}

    def dashboard(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        name = props.get("DashboardName") or f"{stack}-{logical}"
        body = props["DashboardBody"]
        try:  # CloudWatch refuses a body that is not JSON; so does the local deploy
            json.loads(body)
        except ValueError as exc:
            raise DeploymentError(f"{stack}/{logical}: DashboardBody is not JSON: {exc}") from None
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=body)
        return name, {}

    def role(self, stack: str, logical: str, props: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        # CloudFormation names an unnamed role <stack>-<logical id>-<suffix>, at most 64.
        name = props.get("RoleName") or f"{stack}-{logical}"[:64]
        iam = self.client("iam")
        extra: dict[str, Any] = {}
        if props.get("Description"):
            extra["Description"] = props["Description"]
        if props.get("Tags"):
            extra["Tags"] = props["Tags"]
        if props.get("PermissionsBoundary"):
            extra["PermissionsBoundary"] = props["PermissionsBoundary"]
        role = iam.create_role(
            RoleName=name,
            Path=props.get("Path", "/"),
            AssumeRolePolicyDocument=_policy_text(props["AssumeRolePolicyDocument"]),
            MaxSessionDuration=int(props.get("MaxSessionDuration", 3600)),
            **extra,
        )["Role"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=_policy_text(policy["PolicyDocument"]),
            )
        for arn in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def role_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        self.client("iam").put_role_policy(
            RoleName=props["RoleName"],
            PolicyName=props["PolicyName"],
            PolicyDocument=_policy_text(props["PolicyDocument"]),
        )
        return f"{stack}-{logical}", {}

    def inline_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        if props.get("Users") or props.get("Groups"):
            raise DeploymentError(f"{stack}/{logical}: only role policies deploy locally")
        for role in props.get("Roles", []):
            self.client("iam").put_role_policy(
                RoleName=role,
                PolicyName=props["PolicyName"],
                PolicyDocument=_policy_text(props["PolicyDocument"]),
            )
        return f"{stack}-{logical}", {}

    def managed_policy(
        self, stack: str, logical: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        if props.get("Users") or props.get("Groups"):
            raise DeploymentError(f"{stack}/{logical}: only role policies deploy locally")
        iam = self.client("iam")
        arn = iam.create_policy(
            PolicyName=props.get("ManagedPolicyName") or f"{stack}-{logical}"[:128],
            Path=props.get("Path", "/"),
            PolicyDocument=_policy_text(props["PolicyDocument"]),
        )["Policy"]["Arn"]
        for role in props.get("Roles", []):
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return arn, {"PolicyArn": arn}


def _policy_text(document: Any) -> str:
    """A policy document as IAM's API takes it (a template may give JSON text or a map)."""
    return document if isinstance(document, str) else json.dumps(document)
