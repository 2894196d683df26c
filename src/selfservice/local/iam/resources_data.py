"""Resolvers for the data and operations services: dynamodb, logs, secretsmanager, ssm, kms,
cloudwatch, codebuild (see :mod:`selfservice.local.iam.resources`)."""

from __future__ import annotations

from typing import Any

from selfservice.local.iam.resources import (
    Call,
    Check,
    always,
    policy_of,
    register,
    request_tag_context,
    tag_context,
    tags_of,
)

__all__: list[str] = []


# --- dynamodb --------------------------------------------------------------------
def _table_arn(call: Call, name: str) -> str:
    return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")


_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
_ITEM_ACTIONS["ConditionCheck"] = "ConditionCheckItem"


@register("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems")
def _transact(call: Call) -> list[Check]:
    # There is no IAM action for a transaction: each item needs its own action.
    checks: dict[tuple[str, str], Check] = {}
    for item in call.params.get("TransactItems", []):
        for kind, request in item.items():
            action = "dynamodb:GetItem" if kind == "Get" else f"dynamodb:{_ITEM_ACTIONS[kind]}"
            arn = _table_arn(call, str(request.get("TableName", "")))
            checks[(action, arn)] = Check(action, arn)
    return list(checks.values())


@register("dynamodb:BatchWriteItem", "dynamodb:BatchGetItem")
def _batch(call: Call) -> list[Check]:
    tables = call.params.get("RequestItems", {}) or {}
    if call.operation == "BatchGetItem":
        return [call.check(_table_arn(call, name)) for name in tables]
    checks = []
    for name, requests in tables.items():
        kinds = {kind for request in requests for kind in request}
        for kind in sorted(kinds):
            action = "dynamodb:PutItem" if kind == "PutRequest" else "dynamodb:DeleteItem"
            checks.append(Check(action, _table_arn(call, name)))
        checks.append(call.check(_table_arn(call, name)))
    return checks


always("dynamodb:ListTables", "dynamodb:DescribeLimits", "dynamodb:DescribeEndpoints")


@register("dynamodb:*")
def _table(call: Call) -> list[Check]:
    name = call.params.get("TableName") or call.params.get("ResourceArn")
    if not name:
        return [call.check("*")]
    arn = _table_arn(call, str(name))
    index = call.params.get("IndexName")
    if index and call.operation in ("Query", "Scan"):
        arn = f"{arn}/index/{index}"
    return [call.check(arn)]


# --- logs ------------------------------------------------------------------------
def _group_name(call: Call) -> str | None:
    name = call.params.get("logGroupName")
    if name:
        return str(name)
    identifier = call.params.get("logGroupIdentifier") or call.params.get("resourceArn")
    if identifier:
        text = str(identifier)
        if text.startswith("arn:"):
            return text.split(":log-group:", 1)[-1].removesuffix(":*")
        return text
    return None


def _group_checks(call: Call, name: str) -> list[Check]:
    group = call.arn("logs", f"log-group:{name}")
    # The group's ARN as CloudWatch Logs reports it ends in ":*"; IAM accepts either.
    return [call.check(f"{group}:*", alternatives=(group,))]


@register("logs:CreateLogStream", "logs:PutLogEvents", "logs:DeleteLogStream", "logs:GetLogEvents")
def _stream(call: Call) -> list[Check]:
    name, stream = _group_name(call), call.params.get("logStreamName")
    if not name or not stream:
        return [call.check("*")]
    return [call.check(call.arn("logs", f"log-group:{name}:log-stream:{stream}"))]


@register("logs:DescribeLogGroups")
def _describe_groups(call: Call) -> list[Check]:
    return [call.check(call.arn("logs", "log-group:*"))]


always(
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DeleteResourcePolicy",
    "logs:DescribeQueries",
    "logs:DescribeDestinations",
)


@register("logs:*")
def _group(call: Call) -> list[Check]:
    name = _group_name(call)
    if not name:
        return [call.check("*")]
    return _group_checks(call, name)


# --- secretsmanager --------------------------------------------------------------
@register("secretsmanager:*")
def _secret(call: Call) -> list[Check]:
    from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

    if call.operation in ("ListSecrets", "GetRandomPassword", "BatchGetSecretValue"):
        return [call.check("*")]
    if call.operation == "CreateSecret":
        name = str(call.params.get("Name", ""))
        tags = {t["Key"]: t["Value"] for t in call.params.get("Tags") or []}
        return [
            call.check(
                call.arn("secretsmanager", f"secret:{name}-??????"),
                context=request_tag_context(tags),
            )
        ]
    secret_id = str(call.params.get("SecretId", ""))
    store = secretsmanager_backends[call.account][call.region].secrets
    if secret_id not in store:
        arn = (
            secret_id
            if secret_id.startswith("arn:")
            else call.arn("secretsmanager", f"secret:{secret_id}-??????")
        )
        return [call.check(arn)]
    secret: Any = store[secret_id]
    context = tag_context(tags_of(secret.tags), "secretsmanager")
    return [
        call.check(
            secret.arn,
            context=context,
            resource_policy=policy_of(
                getattr(secret, "policy", None), f"secret-policy:{secret.name}"
            ),
        )
    ]


# --- ssm -------------------------------------------------------------------------
def parameter_arn(call: Call, name: str) -> str:
    """``parameter/a/b`` for ``/a/b`` and ``parameter/a`` for ``a``, as AWS builds it."""
    if name.startswith("arn:"):
        return name
    return call.arn("ssm", "parameter" + (name if name.startswith("/") else f"/{name}"))


@register(
    "ssm:GetParameter",
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:GetParameterHistory",
    "ssm:LabelParameterVersion",
)
def _parameter(call: Call) -> list[Check]:
    return [call.check(parameter_arn(call, str(call.params.get("Name", ""))))]


@register("ssm:GetParameters", "ssm:DeleteParameters")
def _parameters(call: Call) -> list[Check]:
    return [call.check(parameter_arn(call, str(n))) for n in call.params.get("Names", [])]


@register("ssm:GetParametersByPath")
def _parameters_by_path(call: Call) -> list[Check]:
    path = str(call.params.get("Path", "/")).rstrip("/") or "/"
    return [call.check(parameter_arn(call, path))]


def _document_arn(call: Call, name: str) -> str:
    if name.startswith("arn:"):
        return name
    # Documents AWS owns carry no account in their ARN.
    owned_by_aws = name.startswith(("AWS-", "AWSEC2-", "AWSSupport-", "AmazonCloudWatch-"))
    return call.arn("ssm", f"document/{name}", account=not owned_by_aws)


def instance_check(call: Call, action: str, instance_id: str) -> Check:
    """A check on an EC2 instance with its tags as ``ssm:resourceTag``/``aws:ResourceTag``."""
    from moto.ec2.models import ec2_backends  # noqa: PLC0415

    tags = dict(ec2_backends[call.account][call.region].tags.get(instance_id, {}))
    context = tag_context(tags, "ssm", "ec2")
    return Check(action, call.arn("ec2", f"instance/{instance_id}"), context=context)


@register("ssm:SendCommand")
def _send_command(call: Call) -> list[Check]:
    checks = [call.check(_document_arn(call, str(call.params.get("DocumentName", ""))))]
    checks += [instance_check(call, call.action, i) for i in call.params.get("InstanceIds", [])]
    if call.params.get("Targets"):
        checks.append(call.check(call.arn("ec2", "instance/*")))
    return checks


@register("ssm:StartAssociationsOnce")
def _start_associations(call: Call) -> list[Check]:
    ids = call.params.get("AssociationIds", [])
    return [call.check(call.arn("ssm", f"association/{i}")) for i in ids]


@register("ssm:DescribeAssociation", "ssm:UpdateAssociation", "ssm:DeleteAssociation")
def _association(call: Call) -> list[Check]:
    association = call.params.get("AssociationId")
    if association:
        return [call.check(call.arn("ssm", f"association/{association}"))]
    checks = []
    if call.params.get("Name"):
        checks.append(call.check(_document_arn(call, str(call.params["Name"]))))
    if call.params.get("InstanceId"):
        checks.append(instance_check(call, call.action, str(call.params["InstanceId"])))
    return checks or [call.check("*")]


@register("ssm:CreateAssociation")
def _create_association(call: Call) -> list[Check]:
    return [call.check(_document_arn(call, str(call.params.get("Name", ""))))]


@register("ssm:GetDocument", "ssm:DescribeDocument")
def _document(call: Call) -> list[Check]:
    return [call.check(_document_arn(call, str(call.params.get("Name", ""))))]


always(
    "ssm:ListCommandInvocations",
    "ssm:GetCommandInvocation",
    "ssm:ListCommands",
    "ssm:DescribeParameters",
    "ssm:ListAssociations",
    "ssm:DescribeInstanceInformation",
    "ssm:ListDocuments",
    "ssm:CancelCommand",
)


# --- kms, cloudwatch, codebuild, sns ---------------------------------------------
@register("kms:*")
def _key(call: Call) -> list[Check]:
    key = call.params.get("KeyId")
    if call.operation in ("CreateKey", "ListKeys", "ListAliases", "GenerateRandom") or not key:
        return [call.check("*")]
    key = str(key)
    return [call.check(key if key.startswith("arn:") else call.arn("kms", f"key/{key}"))]


@register("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms")
def _alarms(call: Call) -> list[Check]:
    names = call.params.get("AlarmNames") or [call.params.get("AlarmName")]
    arns = [call.arn("cloudwatch", f"alarm:{n}") for n in names if n]
    return [call.check(arn) for arn in arns] or [call.check("*")]


@register("cloudwatch:TagResource", "cloudwatch:ListTagsForResource", "cloudwatch:UntagResource")
def _cloudwatch_tags(call: Call) -> list[Check]:
    return [call.check(str(call.params.get("ResourceARN", "*")))]


always(
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "cloudwatch:PutDashboard",
    "cloudwatch:GetMetricStatistics",
)


@register("sns:*")
def _topic(call: Call) -> list[Check]:
    if call.operation == "CreateTopic":
        return [call.check(call.arn("sns", str(call.params.get("Name", ""))))]
    arn = call.params.get("TopicArn") or call.params.get("ResourceArn")
    return [call.check(str(arn) if arn else "*")]


def passed_role(role_arn: object, service: str) -> list[Check]:
    """``iam:PassRole`` on ``role_arn`` to ``service`` (when a role is given)."""
    if not role_arn:
        return []
    return [Check("iam:PassRole", str(role_arn), context={"iam:passedtoservice": [service]})]


@register(
    "codebuild:StartBuild",
    "codebuild:BatchGetProjects",
    "codebuild:CreateProject",
    "codebuild:UpdateProject",
)
def _project(call: Call) -> list[Check]:
    names = call.params.get("names") or [call.params.get("projectName") or call.params.get("name")]
    checks = [call.check(call.arn("codebuild", f"project/{n}")) for n in names if n]
    checks += passed_role(call.params.get("serviceRole"), "codebuild.amazonaws.com")
    return checks or [call.check("*")]


@register("lambda:CreateFunction", "lambda:UpdateFunctionConfiguration")
def _function(call: Call) -> list[Check]:
    name = str(call.params.get("FunctionName", ""))
    arn = name if name.startswith("arn:") else call.arn("lambda", f"function:{name}")
    return [call.check(arn), *passed_role(call.params.get("Role"), "lambda.amazonaws.com")]
