"""The CloudFormation intrinsic resolver on its own: no embedded AWS, no socket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from selfservice.local.intrinsics import (
    ACCOUNT,
    REGION,
    DeploymentError,
    Resolver,
    evaluate_conditions,
    references,
)
from selfservice.templates import load_template
from tests.conftest import ROOT


@dataclass
class Nested:
    outputs: dict[str, Any]


@dataclass
class Stack:
    """What a deployment knows of a stack, as the resolver reads it."""

    name: str = "selfservice-Provisioner"
    parameters: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    nested: dict[str, Nested] = field(default_factory=dict)


def resolver(conditions: Mapping[str, bool] | None = None, **stack: Any) -> Resolver:
    return Resolver(Stack(**stack), dict(conditions or {}))


def test_ref_reads_pseudo_parameters_parameters_and_created_resources() -> None:
    r = resolver(parameters={"Stage": "dev"}, refs={"Queue": "https://queue"})
    assert r.resolve({"Ref": "AWS::Region"}) == REGION
    assert r.resolve({"Ref": "AWS::AccountId"}) == ACCOUNT
    assert r.resolve({"Ref": "AWS::StackName"}) == "selfservice-Provisioner"
    assert r.resolve({"Ref": "AWS::StackId"}) == (
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/selfservice-Provisioner/local"
    )
    assert r.resolve({"Ref": "Stage"}) == "dev"
    assert r.resolve({"Ref": "Queue"}) == "https://queue"


def test_a_parameter_wins_over_a_resource_of_the_same_name() -> None:
    assert resolver(parameters={"X": "param"}, refs={"X": "res"}).resolve({"Ref": "X"}) == "param"


def test_ref_to_what_is_not_created_yet_names_the_stack_and_the_ref() -> None:
    with pytest.raises(DeploymentError, match="selfservice-Provisioner: Ref Table is not"):
        resolver().resolve({"Ref": "Table"})


def test_getatt_in_both_forms_and_a_nested_stacks_outputs() -> None:
    r = resolver(
        attrs={"Queue": {"Arn": "arn:aws:sqs:us-east-1:123456789012:q"}},
        nested={"Notifier": Nested({"QueueUrl": "https://notifier"})},
    )
    assert r.resolve({"Fn::GetAtt": ["Queue", "Arn"]}).endswith(":q")
    assert r.resolve({"Fn::GetAtt": "Queue.Arn"}).endswith(":q")
    assert r.resolve({"Fn::GetAtt": ["Notifier", "Outputs.QueueUrl"]}) == "https://notifier"
    with pytest.raises(DeploymentError, match=r"GetAtt Queue\.QueueUrl"):
        r.resolve({"Fn::GetAtt": ["Queue", "QueueUrl"]})


def test_sub_with_references_attributes_variables_and_literals() -> None:
    r = resolver(
        parameters={"Stage": "dev"},
        refs={"Bus": "selfservice-bus"},
        attrs={"Bus": {"Arn": "arn:bus"}},
    )
    assert r.resolve({"Fn::Sub": "${AWS::StackName}-${Stage}"}) == "selfservice-Provisioner-dev"
    assert r.resolve({"Fn::Sub": "${Bus} is ${Bus.Arn}"}) == "selfservice-bus is arn:bus"
    assert r.resolve({"Fn::Sub": ["${Name}/${Stage}", {"Name": {"Ref": "Bus"}}]}) == (
        "selfservice-bus/dev"
    )
    assert r.resolve({"Fn::Sub": "${!Literal} in ${AWS::Region}"}) == f"${{Literal}} in {REGION}"


def test_join_resolves_its_items() -> None:
    r = resolver(parameters={"Stage": "dev"})
    assert r.resolve({"Fn::Join": [":", ["a", {"Ref": "Stage"}, 3]]}) == "a:dev:3"


def test_if_picks_by_condition_and_no_value_drops_the_key_or_item() -> None:
    r = resolver(conditions={"IsProd": False, "IsDev": True})
    fragment = {
        "Name": "q",
        "Kms": {"Fn::If": ["IsProd", "alias/key", {"Ref": "AWS::NoValue"}]},
        "Items": [1, {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, 2]}, 3],
        "Stage": {"Fn::If": ["IsDev", "dev", "prod"]},
    }
    assert r.resolve(fragment) == {"Name": "q", "Items": [1, 3], "Stage": "dev"}


def test_equals_compares_as_strings_as_cloudformation_does() -> None:
    r = resolver(parameters={"Count": 0, "Enabled": True, "Name": ""})
    assert r.resolve({"Fn::Equals": [{"Ref": "Count"}, "0"]}) is True
    assert r.resolve({"Fn::Equals": [{"Ref": "Enabled"}, "true"]}) is True
    assert r.resolve({"Fn::Equals": [{"Ref": "Name"}, ""]}) is True
    assert r.resolve({"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]}) is False


def test_conditions_are_evaluated_in_order_each_using_those_before() -> None:
    r = resolver(parameters={"ContractsLayerArn": ""})
    declared = {
        "BuildsOwnContractsLayer": {"Fn::Equals": [{"Ref": "ContractsLayerArn"}, ""]},
        "UsesGivenLayer": {"Fn::Not": [{"Fn::If": ["BuildsOwnContractsLayer", True, False]}]},
    }
    conditions = evaluate_conditions(declared, r)
    assert conditions == {"BuildsOwnContractsLayer": True, "UsesGivenLayer": False}
    assert r.resolve({"Fn::If": ["UsesGivenLayer", "given", "own"]}) == "own"


def test_a_map_of_several_keys_is_not_an_intrinsic() -> None:
    fragment = {"Ref": "X", "Other": {"Ref": "AWS::Partition"}}
    assert resolver().resolve(fragment) == {"Ref": "X", "Other": "aws"}


def test_references_find_what_a_fragment_depends_on() -> None:
    fragment = {
        "QueueUrl": {"Ref": "Queue"},
        "Arn": {"Fn::GetAtt": "Topic.TopicArn"},
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "Text": {"Fn::Sub": "${Bus}/${Table.Arn}/${!NotThis}"},
        "List": [{"Ref": "Stage"}],
    }
    assert references(fragment) == {"Queue", "Topic", "Role", "Bus", "Table", "Stage"}


def test_the_provisioner_templates_conditions_with_defaults_and_with_a_build_limit() -> None:
    """A real template's conditions: Number parameters compared as strings, as in AWS."""
    template = load_template(ROOT / "sam/provisioner.yaml")
    declared = template.body["Conditions"]
    defaults = {
        name: spec["Default"]
        for name, spec in template.body["Parameters"].items()
        if "Default" in spec
    }
    conditions = evaluate_conditions(declared, resolver(parameters=defaults))
    assert conditions["BuildsOwnContractsLayer"] is True
    assert conditions["LimitsConcurrentBuilds"] is False
    assert conditions["HasAlarmTopic"] is False

    limited = resolver(parameters={**defaults, "ConcurrentBuildLimit": 3})
    limited.conditions = evaluate_conditions(declared, limited)
    assert limited.conditions["LimitsConcurrentBuilds"] is True
    project = template.resources()["ProvisionProject"]["Properties"]
    assert limited.resolve(project["ConcurrentBuildLimit"]) == 3
    unlimited = resolver(parameters=defaults)
    unlimited.conditions = conditions
    assert "ConcurrentBuildLimit" not in unlimited.resolve(
        {"ConcurrentBuildLimit": project["ConcurrentBuildLimit"]}
    )
