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
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import boto3

from selfservice import sam_transform
from selfservice.local.intrinsics import (
    ACCOUNT,
    PARTITION,
    REGION,
    DeploymentError,
    Resolver,
    evaluate_conditions,
    references,
)
from selfservice.local.resource_creator import ResourceCreator
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

# Played by the local runtime itself rather than created in moto.
_RECORDED = {
    "AWS::Serverless::Function",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::LayerVersion",
    "AWS::CodeBuild::Project",
}


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
            return str(Resolver(self, {}).resolve(explicit))
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
    translated = sam_transform.translate(
        body,
        {
            **{k: v for k, v in parameters.items() if isinstance(v, str | int | float | list)},
            **_PSEUDO_FOR_SAM,
            "AWS::StackName": "local",
            "AWS::StackId": "local",
        },
        region=REGION,
    )
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


def _record(
    stack: StackDeployment, logical: str, kind: str, props: dict[str, Any], resolver: Resolver
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
    template: Template, name: str, parameters: dict[str, Any], creator: ResourceCreator
) -> StackDeployment:
    declared = template.body.get("Parameters", {})
    values = {key: spec.get("Default") for key, spec in declared.items() if "Default" in spec}
    values.update(parameters)
    if missing := sorted(set(declared) - set(values)):
        raise DeploymentError(f"{name}: no value for parameter(s) {', '.join(missing)}")
    stack = StackDeployment(name=name, template=template, parameters=values)
    resolver = Resolver(stack, {})
    resolver.conditions = evaluate_conditions(template.body.get("Conditions", {}), resolver)
    generated = sam_generated_roles(template, values)
    resources = {**template.resources(), **generated}
    graph = {
        logical: {dep for dep in references(resource.get("Properties", {})) if dep in resources}
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
    creator = ResourceCreator(session, endpoint_url)
    deployment = Deployment(_deploy(platform, stack_name, parameters or {}, creator))
    products = platform.path.parent / "services/provisioner/products"
    has_provisioner = any(s.name.endswith("Provisioner") for s in deployment.stacks())
    if product_roles and has_provisioner and products.is_dir():
        deploy_product_roles(deployment, products, endpoint_url=endpoint_url)
    return deployment
