"""Resolvers for what Terraform calls for the products: ec2, autoscaling,
elasticloadbalancing, iam, organizations (see :mod:`selfservice.local.iam.resources`).

Implicit authorizations AWS makes are added: ``iam:PassRole`` (with
``iam:PassedToService``) when an instance profile reaches EC2 (``RunInstances``, an
Auto Scaling group's launch template, ``AddRoleToInstanceProfile``); ``ec2:CreateTags``
with ``ec2:CreateAction`` for tags given at creation; ``iam:CreateServiceLinkedRole``
with ``iam:AWSServiceName`` the first time Auto Scaling or ELB needs its role.
"""

from __future__ import annotations

from typing import Any

from selfservice.local.iam.resources import (
    Call,
    Check,
    no_resource_types,
    register,
    request_tag_context,
    tag_context,
    tags_of,
)

__all__: list[str] = []

# EC2 id prefix -> IAM resource type.
_EC2_TYPES = {
    "i": "instance",
    "vol": "volume",
    "sg": "security-group",
    "subnet": "subnet",
    "vpc": "vpc",
    "igw": "internet-gateway",
    "rtb": "route-table",
    "eni": "network-interface",
    "lt": "launch-template",
    "eipalloc": "elastic-ip",
    "nat": "natgateway",
    "fl": "vpc-flow-log",
    "acl": "network-acl",
    "rtbassoc": "route-table",
}
# TagSpecification ResourceType -> IAM resource type.
_TAG_TYPES = {
    "natgateway": "natgateway",
    "elastic-ip": "elastic-ip",
    "vpc-flow-log": "vpc-flow-log",
}


def _ec2_backend(call: Call) -> Any:
    from moto.ec2.models import ec2_backends  # noqa: PLC0415 - moto only at request time

    return ec2_backends[call.account][call.region]


def _ec2_arn(call: Call, resource_id: str) -> str:
    if resource_id.startswith("ami-"):
        return call.arn("ec2", f"image/{resource_id}", account=False)
    kind = _EC2_TYPES.get(resource_id.split("-", 1)[0], "*")
    return call.arn("ec2", f"{kind}/{resource_id}")


def _ec2_check(call: Call, action: str, resource_id: str, extra: dict[str, list[str]]) -> Check:
    tags = dict(_ec2_backend(call).tags.get(resource_id, {}))
    return Check(action, _ec2_arn(call, resource_id), context=tag_context(tags, "ec2", base=extra))


def _tag_specs(call: Call) -> dict[str, dict[str, str]]:
    specs: dict[str, dict[str, str]] = {}
    for spec in call.params.get("TagSpecifications") or []:
        tags = {str(t["Key"]): str(t.get("Value", "")) for t in spec.get("Tags") or []}
        specs.setdefault(str(spec.get("ResourceType", "")), {}).update(tags)
    return specs


def _created_tags(call: Call, specs: dict[str, dict[str, str]]) -> list[Check]:
    """``ec2:CreateTags`` on each resource tagged at creation, with ``ec2:CreateAction``."""
    checks = []
    for kind, tags in specs.items():
        context = {**request_tag_context(tags), "ec2:createaction": [call.operation]}
        arn = call.arn("ec2", f"{_TAG_TYPES.get(kind, kind)}/*")
        checks.append(Check("ec2:CreateTags", arn, context=context))
    return checks


def pass_role_checks(call: Call, profile: Any, service: str) -> list[Check]:
    """``iam:PassRole`` for each role of an instance profile (given by name or ARN)."""
    from moto.iam.models import iam_backends  # noqa: PLC0415

    if not profile:
        return []
    backend = iam_backends[call.account]["aws"]
    profiles = list(backend.instance_profiles.values())
    found = next((p for p in profiles if profile in (p.name, p.arn)), None)
    if found is None:
        return []
    context = {"iam:passedtoservice": [service]}
    return [Check("iam:PassRole", role.arn, context=context) for role in found.roles]


def _template_profile(call: Call, template: dict[str, Any] | None) -> Any:
    if not template:
        return None
    backend = _ec2_backend(call)
    template_id = template.get("LaunchTemplateId") or backend.launch_template_name_to_ids.get(
        template.get("LaunchTemplateName")
    )
    found = backend.launch_templates.get(template_id)
    if found is None:
        return None
    version = template.get("Version")
    try:
        chosen = found.get_version(version) if version not in (None, "$Default") else None
    except Exception:  # noqa: BLE001 - "$Latest" or a missing version
        chosen = None
    data = (chosen or found.latest_version()).data
    profile = data.get("IamInstanceProfile") or {}
    return profile.get("Arn") or profile.get("Name")


@register("ec2:RunInstances")
def _run_instances(call: Call) -> list[Check]:
    p = call.params
    specs = _tag_specs(call)
    action = call.action
    checks = []
    for kind in ("instance", "volume", "network-interface"):
        context = request_tag_context(specs.get(kind, {}))
        checks.append(Check(action, call.arn("ec2", f"{kind}/*"), context=context))
    interfaces = p.get("NetworkInterfaces") or [{}]
    subnet = p.get("SubnetId") or interfaces[0].get("SubnetId")
    checks.append(Check(action, call.arn("ec2", f"subnet/{subnet or '*'}")))
    groups = list(p.get("SecurityGroupIds") or []) + list(interfaces[0].get("Groups") or [])
    for group in groups or ["*"]:
        checks.append(Check(action, call.arn("ec2", f"security-group/{group}")))
    if p.get("ImageId"):
        checks.append(Check(action, call.arn("ec2", f"image/{p['ImageId']}", account=False)))
    template = p.get("LaunchTemplate")
    if template:
        template_id = template.get("LaunchTemplateId") or template.get("LaunchTemplateName")
        checks.append(Check(action, call.arn("ec2", f"launch-template/{template_id}")))
    if p.get("KeyName"):
        checks.append(Check(action, call.arn("ec2", f"key-pair/{p['KeyName']}")))
    profile = (p.get("IamInstanceProfile") or {}).get("Arn") or (
        p.get("IamInstanceProfile") or {}
    ).get("Name")
    profile = profile or _template_profile(call, template)
    checks += pass_role_checks(call, profile, "ec2.amazonaws.com")
    return checks + _created_tags(call, specs)


@register("ec2:CreateTags", "ec2:DeleteTags")
def _tags(call: Call) -> list[Check]:
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in call.params.get("Tags") or []}
    extra = request_tag_context(tags)
    return [_ec2_check(call, call.action, str(r), extra) for r in call.params.get("Resources", [])]


_CREATES = {
    "CreateVpc": "vpc",
    "CreateSubnet": "subnet",
    "CreateSecurityGroup": "security-group",
    "CreateLaunchTemplate": "launch-template",
    "CreateInternetGateway": "internet-gateway",
    "CreateRouteTable": "route-table",
    "CreateNatGateway": "natgateway",
    "AllocateAddress": "elastic-ip",
    "CreateFlowLogs": "vpc-flow-log",
    "CreateVolume": "volume",
}


@register("ec2:*")
def _ec2(call: Call) -> list[Check]:
    if call.operation.startswith(("Describe", "Get")):
        return [call.check("*")]
    specs = _tag_specs(call)
    checks: list[Check] = []
    if call.operation in _CREATES:
        kind = _CREATES[call.operation]
        context = request_tag_context(specs.get(kind, {}))
        checks.append(call.check(call.arn("ec2", f"{kind}/*"), context=context))
    ids: list[str] = []
    for name, value in call.params.items():
        if name.endswith("Id") and isinstance(value, str) and "-" in value:
            ids.append(value)
        elif name.endswith("Ids") and isinstance(value, list):
            ids += [v for v in value if isinstance(v, str)]
    checks += [_ec2_check(call, call.action, i, {}) for i in ids]
    role = call.params.get("DeliverLogsPermissionArn")
    if role:  # a flow log's delivery role is passed to the flow-logs service
        context = {"iam:passedtoservice": ["vpc-flow-logs.amazonaws.com"]}
        checks.append(Check("iam:PassRole", str(role), context=context))
    return (checks or [call.check("*")]) + _created_tags(call, specs)


# --- autoscaling -----------------------------------------------------------------
def _group_arn(call: Call, name: str) -> str:
    return call.arn("autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{name}")


def service_linked_role(call: Call, service: str, role_name: str) -> list[Check]:
    """``iam:CreateServiceLinkedRole`` when the service's role does not exist yet.

    AWS creates the role on the first use of the service in an account, as the caller.
    """
    from moto.iam.models import iam_backends  # noqa: PLC0415

    backend = iam_backends[call.account]["aws"]
    if any(role.name == role_name for role in list(backend.roles.values())):
        return []
    arn = f"arn:aws:iam::{call.account}:role/aws-service-role/{service}/{role_name}"
    context = {"iam:awsservicename": [service]}

    def create() -> object:
        if not any(role.name == role_name for role in list(backend.roles.values())):
            backend.create_service_linked_role(service, "", "")
        return None

    return [Check("iam:CreateServiceLinkedRole", arn, context=context, after=create)]


@register("autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup")
def _asg(call: Call) -> list[Check]:
    name = str(call.params.get("AutoScalingGroupName", ""))
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in call.params.get("Tags") or []}
    checks = [call.check(_group_arn(call, name), context=request_tag_context(tags))]
    template = call.params.get("LaunchTemplate") or (
        (call.params.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    ).get("LaunchTemplateSpecification")
    if template:
        template_id = template.get("LaunchTemplateId") or template.get("LaunchTemplateName")
        lt_arn = call.arn("ec2", f"launch-template/{template_id}")
        checks.append(Check("ec2:RunInstances", lt_arn))
        profile = _template_profile(call, template)
        checks += pass_role_checks(call, profile, "ec2.amazonaws.com")
    if call.operation == "CreateAutoScalingGroup":
        checks += service_linked_role(
            call, "autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling"
        )
    return checks


@register("autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags")
def _asg_tags(call: Call) -> list[Check]:
    names = {str(t.get("ResourceId", "")) for t in call.params.get("Tags") or []}
    return [call.check(_group_arn(call, n)) for n in sorted(names)] or [call.check("*")]


@register("autoscaling:*")
def _autoscaling(call: Call) -> list[Check]:
    name = call.params.get("AutoScalingGroupName")
    if call.operation.startswith("Describe") or not name:
        return [call.check("*")]
    return [call.check(_group_arn(call, str(name)))]


# --- elasticloadbalancing (v2) ---------------------------------------------------
@register("elasticloadbalancing:*")
def _elb(call: Call) -> list[Check]:
    p = call.params
    if call.operation.startswith("Describe"):
        return [call.check("*")]
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in p.get("Tags") or []}
    context = request_tag_context(tags)
    if call.operation == "CreateLoadBalancer":
        kind = {"network": "net", "gateway": "gwy"}.get(str(p.get("Type", "")), "app")
        arn = call.arn("elasticloadbalancing", f"loadbalancer/{kind}/{p.get('Name')}/*")
        linked = service_linked_role(
            call, "elasticloadbalancing.amazonaws.com", "AWSServiceRoleForElasticLoadBalancing"
        )
        return [call.check(arn, context=context), *linked]
    if call.operation == "CreateTargetGroup":
        arn = call.arn("elasticloadbalancing", f"targetgroup/{p.get('Name')}/*")
        return [call.check(arn, context=context)]
    if call.operation == "CreateListener":
        balancer = str(p.get("LoadBalancerArn", ""))
        return [
            call.check(balancer.replace(":loadbalancer/", ":listener/") + "/*", context=context)
        ]
    arns = list(p.get("ResourceArns") or [])
    for name in ("ListenerArn", "TargetGroupArn", "LoadBalancerArn", "RuleArn"):
        if p.get(name):
            arns.append(p[name])
    return [call.check(str(a), context=context) for a in arns] or [call.check("*")]


# --- iam -------------------------------------------------------------------------
def _iam_arn(call: Call, kind: str, name: str, path: str | None = None) -> str:
    return f"arn:aws:iam::{call.account}:{kind}{path or '/'}{name}"


def _role_check(call: Call, action: str, name: str, extra: dict[str, list[str]]) -> Check:
    from moto.iam.models import iam_backends  # noqa: PLC0415

    backend = iam_backends[call.account]["aws"]
    role = next((r for r in list(backend.roles.values()) if r.name == name), None)
    if role is None:
        return Check(action, _iam_arn(call, "role", name, call.params.get("Path")), context=extra)
    context = tag_context(tags_of(role.tags), "iam", base=extra)
    return Check(action, role.arn, context=context)


@register("iam:*")
def _iam(call: Call) -> list[Check]:  # noqa: PLR0911 - one exit per kind of IAM resource
    p = call.params
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in p.get("Tags") or []}
    extra = request_tag_context(tags)
    if p.get("PolicyArn"):
        extra["iam:policyarn"] = [str(p["PolicyArn"])]
    if call.operation == "CreateServiceLinkedRole":
        service = str(p.get("AWSServiceName", ""))
        arn = _iam_arn(call, "role", f"{service}/*", "/aws-service-role/")
        return [call.check(arn, context={"iam:awsservicename": [service]})]
    checks: list[Check] = []
    if p.get("InstanceProfileName"):
        arn = _iam_arn(call, "instance-profile", str(p["InstanceProfileName"]), p.get("Path"))
        checks.append(call.check(arn, context=extra))
        if call.operation == "AddRoleToInstanceProfile" and p.get("RoleName"):
            passed = {"iam:passedtoservice": ["ec2.amazonaws.com"]}
            checks.append(_role_check(call, "iam:PassRole", str(p["RoleName"]), passed))
        return checks
    if p.get("RoleName"):
        return [_role_check(call, call.action, str(p["RoleName"]), extra)]
    if p.get("UserName"):
        return [
            call.check(_iam_arn(call, "user", str(p["UserName"]), p.get("Path")), context=extra)
        ]
    if p.get("GroupName"):
        return [call.check(_iam_arn(call, "group", str(p["GroupName"]), p.get("Path")))]
    if p.get("PolicyArn"):
        return [call.check(str(p["PolicyArn"]), context=extra)]
    if call.operation == "CreatePolicy":
        return [call.check(_iam_arn(call, "policy", str(p.get("PolicyName")), p.get("Path")))]
    return [call.check("*", context=extra)]


# --- organizations ---------------------------------------------------------------
@register(
    "organizations:MoveAccount",
    "organizations:DescribeAccount",
    "organizations:CloseAccount",
    "organizations:ListParents",
)
def _account(call: Call) -> list[Check]:
    from moto.organizations.models import organizations_backends  # noqa: PLC0415

    account_id = call.params.get("AccountId") or call.params.get("ChildId")
    backend = organizations_backends[call.account]["aws"]
    found = next((a for a in backend.accounts if a.id == account_id), None)
    # The account's own tags are its aws:ResourceTag (MoveAccount, CloseAccount, tagging).
    tags = tags_of(getattr(found, "tags", {})) if found is not None else {}
    checks = [call.check(found.arn if found is not None else "*", context=tag_context(tags))]
    for name in ("SourceParentId", "DestinationParentId"):
        if call.params.get(name) and backend.org is not None:
            parent = str(call.params[name])
            kind = "root" if parent.startswith("r-") else "ou"
            org = backend.org
            arn = f"arn:aws:organizations::{org.master_account_id}:{kind}/{org.id}/{parent}"
            checks.append(call.check(arn))
    return checks


no_resource_types(
    "organizations:CreateAccount",
    "organizations:CreateOrganization",
    "organizations:EnableAWSServiceAccess",
    "organizations:DisableAWSServiceAccess",
)


@register("organizations:*")
def _organizations(call: Call) -> list[Check]:
    # CreateAccount, DescribeCreateAccountStatus, DescribeOrganization, List*: no
    # resource-level permissions.
    tags = {str(t["Key"]): str(t.get("Value", "")) for t in call.params.get("Tags") or []}
    return [call.check("*", context=request_tag_context(tags))]
