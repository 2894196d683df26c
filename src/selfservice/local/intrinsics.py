"""CloudFormation's intrinsic functions and conditions, resolved as CloudFormation does.

Pure: no AWS client, no network. A :class:`Resolver` reads what a stack's deployment
knows so far through a :class:`Scope` — its parameters, the ``Ref`` value and the
attributes of each resource already created, its nested stacks' outputs — and turns a
template fragment into plain values: ``Ref`` (pseudo parameters included), ``Fn::GetAtt``
(``Outputs.<name>`` of a nested stack too), ``Fn::Sub`` (with its variable map and
``${!literal}``), ``Fn::Join``, ``Fn::If``, ``Fn::Equals``, ``Fn::Not`` and
``AWS::NoValue`` (the key or list item is dropped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "ACCOUNT",
    "NO_VALUE",
    "PARTITION",
    "REGION",
    "DeploymentError",
    "Resolver",
    "Scope",
    "evaluate_conditions",
    "references",
]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
NO_VALUE = object()
"""What ``Ref: AWS::NoValue`` resolves to: removed from the enclosing map or list."""


class DeploymentError(RuntimeError):
    """A template cannot be deployed locally (unknown resource type, bad intrinsic)."""


class Outputs(Protocol):
    """A nested stack, as its parent's ``Fn::GetAtt <Stack>.Outputs.<name>`` sees it."""

    @property
    def outputs(self) -> Mapping[str, Any]:
        """Output name → value."""
        ...


class Scope(Protocol):
    """What a stack's deployment knows so far; read, never written, by the resolver."""

    @property
    def name(self) -> str:
        """The stack's name (``AWS::StackName``)."""
        ...

    @property
    def parameters(self) -> Mapping[str, Any]:
        """Parameter values, defaults applied."""
        ...

    @property
    def refs(self) -> Mapping[str, Any]:
        """Logical id → ``Ref`` value of each resource created."""
        ...

    @property
    def attrs(self) -> Mapping[str, Mapping[str, Any]]:
        """Logical id → its ``Fn::GetAtt`` attributes."""
        ...

    @property
    def nested(self) -> Mapping[str, Outputs]:
        """Logical id → the nested stack deployed for it."""
        ...


def references(value: Any) -> set[str]:
    """The logical ids (and parameters) a fragment names through Ref, GetAtt and Sub."""
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
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def _as_string(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


class Resolver:
    """Resolves template fragments of one stack against its :class:`Scope`."""

    def __init__(self, stack: Scope, conditions: dict[str, bool]) -> None:
        self.stack = stack
        self.conditions = conditions
        """Condition name → value, for ``Fn::If`` (see :func:`evaluate_conditions`)."""

    def pseudo(self, name: str) -> Any:
        """A pseudo parameter's value (None for one it does not know)."""
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
        """``Ref``: a pseudo parameter, a parameter, or a resource created before."""
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        if name in self.stack.refs:
            return self.stack.refs[name]
        raise DeploymentError(f"{self.stack.name}: Ref {name} is not resolved yet")

    def getatt(self, logical: str, attribute: str) -> Any:
        """``Fn::GetAtt``: a resource's attribute, or a nested stack's ``Outputs.<name>``."""
        if logical in self.stack.nested and attribute.startswith("Outputs."):
            return self.stack.nested[logical].outputs[attribute.removeprefix("Outputs.")]
        try:
            return self.stack.attrs[logical][attribute]
        except KeyError:
            raise DeploymentError(f"{self.stack.name}: GetAtt {logical}.{attribute}") from None

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        """``value`` with every intrinsic function in it replaced by its result."""
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
        """``Fn::Sub``, in its string and its ``[string, variables]`` forms."""
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


def evaluate_conditions(declared: Mapping[str, Any], resolver: Resolver) -> dict[str, bool]:
    """The template's ``Conditions``, in order, each able to use the ones before it."""
    conditions: dict[str, bool] = {}
    for name, expression in declared.items():
        resolver.conditions = conditions
        conditions[name] = bool(resolver.resolve(expression))
    return conditions
