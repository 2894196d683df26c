"""Deploy the platform into the embedded AWS from ``template.yaml`` and ``sam/`` alone.

There is no second list of resources: every resource of the templates is created (or
recorded, for what the local runtime plays itself — functions, HTTP APIs, the CodeBuild
project, layers), intrinsic functions are resolved the way CloudFormation does, nested
applications are deployed with the parameters their parent passes, and the result maps
every logical id to its physical id and attributes. Functions come out with their
environment resolved to real names, ready for the function runner.

IAM is deployed for real: explicit ``AWS::IAM::Role``/``RolePolicy``/``Policy``/
``ManagedPolicy`` resources, the roles the SAM transform generates (each function's
execution role with its expanded policy templates and managed policies, a schedule's
invoke role) — taken from samtranslator's own output, so they are exactly what
CloudFormation would create — and each product's deploy role
(``services/provisioner/products/*/deploy-policy.json``, trusted by the provisioning
project's service role only; :func:`deploy_product_roles`).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import boto3
from samtranslator.metrics.metrics import Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from selfservice.templates import FunctionSpec, Template

__all__ = [
    "Deployment",
    "DeploymentError",
    "StackDeployment",
    "deploy_platform",
    "deploy_product_roles",
    "deploy_role_trust_policy",
    "sam_generated_roles",
]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()

# Played by the local runtime itself rather than created in moto.
_RECORDED = {
    "AWS::Serverless::Function",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::LayerVersion",
    "AWS::CodeBuild::Project",
}


class DeploymentError(RuntimeError):
    """A template cannot be deployed locally (unknown resource type, bad intrinsic)."""


@dataclass
class StackDeployment:
    """One stack: resources' physical ids and attributes, functions, outputs."""

    name: str
    template: Template
    parameters: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions: list[FunctionSpec] = field(default_factory=list)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    nested: dict[str, StackDeployment] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    """Every role this stack deployed (explicit or SAM-generated): logical id → ARN."""

    def function_role_arn(self, spec: FunctionSpec) -> str:
        """The execution role a function runs as (its ``Role``, else SAM's ``<Id>Role``)."""
        explicit = spec.properties.get("Role")
        if explicit is not None:
            return str(_Resolver(self, {}).resolve(explicit))
        return self.roles[f"{spec.logical_id}Role"]


@dataclass
class Deployment:
    """The whole platform as deployed."""

    root: StackDeployment
    product_roles: dict[str, str] = field(default_factory=dict)
    """Each product's deploy role: role name → ARN (:func:`deploy_product_roles`)."""

    def stacks(self) -> list[StackDeployment]:
        """Every stack, root first."""
        found = [self.root]
        for stack in found:
            found.extend(stack.nested.values())
        return found

    def roles(self) -> dict[str, str]:
        """Every role deployed, by role name → ARN (product deploy roles included)."""
        found = {arn.rsplit("/", 1)[-1]: arn for s in self.stacks() for arn in s.roles.values()}
        found.update(self.product_roles)
        return found

    def function(self, logical_id: str) -> tuple[FunctionSpec, dict[str, str]]:
        """A function's spec and its resolved environment."""
        for stack in self.stacks():
            for spec in stack.functions:
                if spec.logical_id == logical_id:
                    return spec, stack.environments[logical_id]
        raise KeyError(logical_id)


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(str(value["Ref"]))
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _as_string(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


class _Resolver:
    def __init__(self, stack: StackDeployment, conditions: dict[str, bool]) -> None:
        self.stack = stack
        self.conditions = conditions

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack.name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack.name}/local"
            ),
        }.get(name)

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        if name in self.stack.refs:
            return self.stack.refs[name]
        raise DeploymentError(f"{self.stack.name}: Ref {name} is not resolved yet")

    def getatt(self, logical: str, attribute: str) -> Any:
        if logical in self.stack.nested and attribute.startswith("Outputs."):
            return self.stack.nested[logical].outputs[attribute.removeprefix("Outputs.")]
        try:
            return self.stack.attrs[logical][attribute]
        except KeyError:
            raise DeploymentError(f"{self.stack.name}: GetAtt {logical}.{attribute}") from None

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Fn::GetAtt":
                logical, attribute = (
                    argument if isinstance(argument, list) else str(argument).split(".", 1)
                )
                return self.getatt(logical, attribute)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::If":
                condition, then, otherwise = argument
                return self.resolve(then if self.conditions[condition] else otherwise)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Equals":
                # As CloudFormation: a parameter's value is a string, whatever its Type.
                left, right = (_as_string(item) for item in self.resolve(argument))
                return left == right
            if key == "Fn::Not":
                return not self.resolve(argument[0])
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.getatt(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


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


class _Creator:
    """Creates one resource type in moto; returns (Ref value, attributes)."""

    def __init__(self, session: boto3.session.Session, endpoint_url: str) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, region_name=REGION, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def create(
        self, stack: str, logical: str, kind: str, props: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
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


_PSEUDO_FOR_SAM = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}


def sam_generated_roles(template: Template, parameters: dict[str, Any]) -> dict[str, Any]:
    """The IAM resources the SAM transform adds to ``template``, by logical id.

    The template is given to samtranslator as ``sam package`` would leave it (code in
    S3); what it generates — each function's ``<Function>Role`` with the managed
    policies SAM attaches (basic execution, X-Ray, an event source's), the expanded
    policy templates and inline statements, a schedule's invoke role — is returned
    with its intrinsics unresolved, for the deployment's resolver.
    """
    body = copy.deepcopy(template.body)
    if not any(
        r.get("Type", "").startswith("AWS::Serverless::")
        for r in body.get("Resources", {}).values()
    ):
        return {}
    for logical, resource in body.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://local-artifacts/{logical}.zip"
        if resource.get("Type") == "AWS::Serverless::Application":
            properties["Location"] = f"https://s3.amazonaws.com/local-artifacts/{logical}.template"
    session = boto3.session.Session(region_name=REGION)
    metrics = Metrics()  # the transform counts things; published nowhere (offline)
    translated = Translator(None, Parser(), boto_session=session, metrics=metrics).translate(
        body,
        parameter_values={
            **{k: v for k, v in parameters.items() if isinstance(v, str | int | float | list)},
            **_PSEUDO_FOR_SAM,
            "AWS::StackName": "local",
            "AWS::StackId": "local",
        },
        get_managed_policy_map=lambda: {},
    )
    metrics.publish()
    original = template.resources()
    return {
        logical: resource
        for logical, resource in translated["Resources"].items()
        if logical not in original and resource["Type"].startswith("AWS::IAM::")
    }


TRUST_POLICY_FILE = "deploy-role-trust.json"
"""In the products folder: every deploy role's trust policy, ``${ProvisionProjectRoleArn}``
standing for the provisioning project's service role (the provisioner stack's output)."""


def deploy_role_trust_policy(products_dir: Path, build_role_arn: str) -> dict[str, Any]:
    """The trust policy of a product's deploy role: the provisioning build's role only.

    Terraform, running in CodeBuild as the project's service role, assumes the deploy
    role; nothing else may (docs/provisioner.md#deploy-roles).
    """
    text = (products_dir / TRUST_POLICY_FILE).read_text()
    document: dict[str, Any] = json.loads(
        text.replace("${ProvisionProjectRoleArn}", build_role_arn)
    )
    return document


def deploy_product_roles(
    deployment: Deployment,
    products_dir: Path,
    *,
    endpoint_url: str,
    provisioner: str = "Provisioner",
    trust_policy: dict[str, Any] | None = None,
    policies: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Create each product's deploy role, as docs/provisioner.md tells a platform team to.

    Named ``<ProductRolePrefix><product>`` (the provisioning project's
    ``PRODUCT_ROLE_PREFIX``; the build hands Terraform that ARN), with the product's
    ``deploy-policy.json`` inline and :func:`deploy_role_trust_policy` trusting the
    project's ``ServiceRole`` (``trust_policy`` and ``policies``, by product, instead: to
    test others). Returns role name → ARN (also kept on ``deployment``).
    """
    stack = next(s for s in deployment.stacks() if s.name.endswith(provisioner))
    prefix = str(stack.parameters["ProductRolePrefix"])
    build_role = str(stack.recorded["ProvisionProject"]["ServiceRole"])
    iam = boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the embedded AWS's root key
    )
    created: dict[str, str] = {}
    for policy_path in sorted(products_dir.glob("*/deploy-policy.json")):
        product = policy_path.parent.name
        name = f"{prefix}{product}"
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(
                trust_policy or deploy_role_trust_policy(products_dir, build_role)
            ),
            Description=f"Terraform deploys the {product} product as this role",
            MaxSessionDuration=3600,
        )["Role"]["Arn"]
        document = (policies or {}).get(product)
        iam.put_role_policy(
            RoleName=name,
            PolicyName="deploy",
            PolicyDocument=json.dumps(document) if document else policy_path.read_text(),
        )
        created[name] = arn
    deployment.product_roles.update(created)
    return created


def _evaluate_conditions(template: Template, resolver: _Resolver) -> dict[str, bool]:
    conditions: dict[str, bool] = {}
    for name, expression in template.body.get("Conditions", {}).items():
        resolver.conditions = conditions
        conditions[name] = bool(resolver.resolve(expression))
    return conditions


def _record(
    stack: StackDeployment, logical: str, kind: str, props: dict[str, Any], resolver: _Resolver
) -> None:
    name = f"{stack.name}-{logical}"
    if kind == "AWS::Serverless::Function":
        stack.refs[logical] = name
        stack.attrs[logical] = {"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"}
    elif kind == "AWS::CodeBuild::Project":
        project = resolver.resolve(props)
        stack.recorded[logical] = project
        stack.refs[logical] = project["Name"]
        stack.attrs[logical] = {
            "Arn": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{project['Name']}"
        }
    else:
        stack.refs[logical] = f"local-{logical.lower()}"
        stack.attrs[logical] = {}


def _deploy(
    template: Template, name: str, parameters: dict[str, Any], creator: _Creator
) -> StackDeployment:
    declared = template.body.get("Parameters", {})
    values = {key: spec.get("Default") for key, spec in declared.items() if "Default" in spec}
    values.update(parameters)
    if missing := sorted(set(declared) - set(values)):
        raise DeploymentError(f"{name}: no value for parameter(s) {', '.join(missing)}")
    stack = StackDeployment(name=name, template=template, parameters=values)
    resolver = _Resolver(stack, {})
    resolver.conditions = _evaluate_conditions(template, resolver)
    generated = sam_generated_roles(template, values)
    resources = {**template.resources(), **generated}
    graph = {
        logical: {dep for dep in _references(resource.get("Properties", {})) if dep in resources}
        | set(resource.get("DependsOn", []) if isinstance(resource.get("DependsOn"), list) else [])
        for logical, resource in resources.items()
    }
    # SAM generates <Function>Role; a RolePolicy on it only needs the function recorded.
    for logical, deps in graph.items():
        graph[logical] = {d for d in deps if d in resources}
    nested = {child.path.name: child for child in template.nested}
    for logical in TopologicalSorter(graph).static_order():
        resource = resources[logical]
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if "Condition" in resource and not resolver.conditions[resource["Condition"]]:
            continue  # as CloudFormation: a resource whose condition is false is not created
        if kind == "AWS::Serverless::Application":
            child_template = nested[properties["Location"].rsplit("/", 1)[-1]]
            child_parameters = resolver.resolve(properties.get("Parameters", {}))
            stack.nested[logical] = _deploy(
                child_template, f"{name}-{logical}", child_parameters, creator
            )
            stack.refs[logical] = stack.nested[logical].name
            continue
        if kind in _RECORDED:
            _record(stack, logical, kind, properties, resolver)
            continue
        ref, attrs = creator.create(name, logical, kind, resolver.resolve(properties))
        stack.refs[logical] = ref
        stack.attrs[logical] = attrs
        if kind == "AWS::IAM::Role":
            stack.roles[logical] = attrs["Arn"]
    stack.functions = template.functions()
    for spec in stack.functions:
        stack.environments[spec.logical_id] = {
            key: str(resolver.resolve(value)) for key, value in spec.environment.items()
        }
    stack.outputs = {
        key: resolver.resolve(output["Value"])
        for key, output in template.body.get("Outputs", {}).items()
    }
    return stack


def deploy_platform(
    platform: Template,
    *,
    endpoint_url: str,
    stack_name: str = "selfservice",
    parameters: dict[str, Any] | None = None,
    product_roles: bool = True,
) -> Deployment:
    """Create every resource of ``platform`` in the AWS at ``endpoint_url``, and (unless
    ``product_roles`` is false) each product's deploy role."""
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the embedded AWS accepts any
        region_name=REGION,
    )
    creator = _Creator(session, endpoint_url)
    deployment = Deployment(_deploy(platform, stack_name, parameters or {}, creator))
    products = platform.path.parent / "services/provisioner/products"
    has_provisioner = any(s.name.endswith("Provisioner") for s in deployment.stacks())
    if product_roles and has_provisioner and products.is_dir():
        deploy_product_roles(deployment, products, endpoint_url=endpoint_url)
    return deployment
