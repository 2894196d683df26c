"""The ops function's role says what the code enforces, and grants every call the code makes.

``ssm:SendCommand`` reaches only instances carrying the allow tag; ``ssm:StartAssociationsOnce``
only associations carrying it (IAM cannot see an association's instances: the code checks
them, with ``ssm:DescribeAssociation``). Both hold without the code.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from selfservice.templates import load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "sam/ops-api.yaml")
ADAPTER = ROOT / "services/ops-api/ops_api/adapters/aws.py"
SUBSTITUTIONS = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AllowTagKey": "SSMRunAllowed",
    "AllowTagValue": "true",
    "EventBusName": "bus",
    "OpsConfig": "/selfservice/ops-api/config",
}


def _resolve(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        return re.sub(r"\$\{([^}]+)\}", lambda m: SUBSTITUTIONS[m.group(1)], text)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return SUBSTITUTIONS[value["Ref"]]
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    return value


def _statements() -> Iterator[dict[str, Any]]:
    resources = TEMPLATE.resources()
    for policy in resources["OpsApiFunction"]["Properties"]["Policies"]:
        yield from _resolve(policy["Statement"])
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::RolePolicy":
            assert resource["Properties"]["RoleName"] == {"Ref": "OpsApiFunctionRole"}
            yield from json.loads(_resolve(resource["Properties"]["PolicyDocument"]))["Statement"]


def _granting(action: str) -> list[dict[str, Any]]:
    found = []
    for statement in _statements():
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        if action in (actions if isinstance(actions, list) else [actions]):
            found.append(statement)
    return found


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def test_start_associations_once_is_granted_only_on_allow_tagged_associations() -> None:
    (statement,) = _granting("ssm:StartAssociationsOnce")
    assert _resources(statement) == ["arn:aws:ssm:eu-west-1:123456789012:association/*"]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/SSMRunAllowed": "true"}}


def test_the_role_can_read_an_association_before_starting_it() -> None:
    (statement,) = _granting("ssm:DescribeAssociation")
    assert _resources(statement) == ["arn:aws:ssm:eu-west-1:123456789012:association/*"]


def test_send_command_reaches_only_allow_tagged_instances_with_the_shell_documents() -> None:
    statements = _granting("ssm:SendCommand")
    instances = [s for s in statements if any(":instance/" in r for r in _resources(s))]
    (on_instances,) = instances
    assert _resources(on_instances) == ["arn:aws:ec2:eu-west-1:123456789012:instance/*"]
    assert on_instances["Condition"] == {"StringEquals": {"ssm:resourceTag/SSMRunAllowed": "true"}}
    documents = {r for s in statements for r in _resources(s) if ":document/" in r}
    assert documents == {
        "arn:aws:ssm:eu-west-1::document/AWS-RunShellScript",
        "arn:aws:ssm:eu-west-1::document/AWS-RunPowerShellScript",
    }
    # No statement grants SendCommand on every resource, so the condition cannot be sidestepped.
    assert all("*" not in _resources(s) for s in statements)


def _client_calls() -> set[str]:
    """Every boto3 operation the adapters call (``self._client.<operation>`` or a paginator)."""
    calls = set()
    for node in ast.walk(ast.parse(ADAPTER.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Attribute) and target.attr == "_client":
                if node.func.attr == "get_paginator":
                    first = node.args[0]
                    assert isinstance(first, ast.Constant)
                    calls.add(str(first.value))
                else:
                    calls.add(node.func.attr)
    return calls


def test_every_call_the_adapters_make_is_granted() -> None:
    calls = _client_calls()
    assert "describe_association" in calls
    for call in calls:
        service = "ec2" if call == "describe_instances" else "ssm"
        action = f"{service}:{''.join(part.title() for part in call.split('_'))}"
        assert _granting(action), f"{action} is called but not granted"
