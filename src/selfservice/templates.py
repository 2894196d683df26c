"""Read the SAM templates the way SAM does: the single source of the platform's wiring.

Tests and the local runtime use this module to find every function's code, handler,
environment, layers and event sources, so nothing is listed twice and a template that
disagrees with the code fails a test instead of a deployment.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

__all__ = [
    "FunctionSpec",
    "LayerSpec",
    "Template",
    "TemplateError",
    "load_platform",
    "load_template",
    "merge_globals",
]

FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
APPLICATION_TYPE = "AWS::Serverless::Application"


class TemplateError(ValueError):
    """A template cannot be read or does not have the shape SAM requires."""


def _plain(value: Any) -> Any:
    """cfn-lint's node classes → plain dicts, lists and strings (keeps intrinsics as dicts)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def merge_globals(global_value: Any, resource_value: Any) -> Any:
    """SAM's Globals rule: maps merge (resource wins), lists concatenate, scalars override."""
    if isinstance(global_value, dict) and isinstance(resource_value, dict):
        merged = dict(global_value)
        for key, value in resource_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(resource_value, list):
        return global_value + resource_value
    return resource_value


@dataclass(frozen=True)
class LayerSpec:
    """A layer built from this repository (``AWS::Serverless::LayerVersion``)."""

    logical_id: str
    content_uri: Path
    template: Path
    """The template that declares (and deploys) the layer."""


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` with Globals applied and local paths resolved."""

    logical_id: str
    template: Path
    properties: dict[str, Any]
    code_uri: Path
    handler: str
    layers: tuple[LayerSpec, ...]

    @property
    def environment(self) -> dict[str, Any]:
        """``Environment.Variables`` as written (intrinsic functions kept as dicts)."""
        variables: dict[str, Any] = self.properties.get("Environment", {}).get("Variables", {})
        return variables

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """Event sources by name (``Type`` and ``Properties``)."""
        events: dict[str, dict[str, Any]] = self.properties.get("Events", {})
        return events

    @property
    def handler_module(self) -> str:
        """Module part of ``Handler`` (``intake.handlers.webhook``)."""
        return self.handler.rpartition(".")[0]

    @property
    def handler_attribute(self) -> str:
        """Callable part of ``Handler`` (``lambda_handler``)."""
        return self.handler.rpartition(".")[2]

    @property
    def import_paths(self) -> tuple[Path, ...]:
        """What Lambda puts on ``sys.path``: the code, then each layer's content."""
        return (self.code_uri, *(layer.content_uri for layer in self.layers))

    def describe(self) -> str:
        """``WebhookFunction (sam/intake.yaml)``: how messages name a function."""
        return f"{self.logical_id} ({self.template.name})"


@dataclass(frozen=True)
class Template:
    """One parsed template file.

    ``passed_layers`` are the layers a parent template hands this one through parameters
    (``ContractsLayerArn: !Ref ContractsLayer``), by parameter name; ``passed`` is every
    parameter the parent sets, as written (empty for a template deployed alone).
    """

    path: Path
    body: dict[str, Any]
    nested: tuple[Template, ...] = field(default=())
    passed: Mapping[str, Any] = field(default_factory=dict)
    passed_layers: Mapping[str, LayerSpec] = field(default_factory=dict)

    def resources(self, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
        """Resources of this template (optionally of one type), by logical id."""
        resources: dict[str, dict[str, Any]] = self.body.get("Resources", {})
        return {
            logical_id: resource
            for logical_id, resource in resources.items()
            if resource_type is None or resource.get("Type") == resource_type
        }

    def walk(self) -> Iterator[Template]:
        """This template, then every nested application's template, depth first."""
        yield self
        for child in self.nested:
            yield from child.walk()

    def function_environment(
        self, logical_id: str, values: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A function's environment as this template (or one it nests) gives it, for
        running the function outside AWS.

        Literal values are kept as written, a reference to a parameter becomes the
        parameter's default, and any other reference (a resource's name or ARN) is
        taken from ``values`` or, absent there, is a placeholder naming it
        (``local-idempotencytable``). A name in ``values`` the template does not set is
        an error, so a test or benchmark cannot drift from the template.
        """
        for template in self.walk():
            for spec in template.functions():
                if spec.logical_id == logical_id:
                    return template._environment_of(spec, dict(values or {}))
        raise TemplateError(f"no function {logical_id} in {self.path.name} or its nested stacks")

    def _environment_of(self, spec: FunctionSpec, values: dict[str, str]) -> dict[str, str]:
        if unknown := sorted(set(values) - set(spec.environment)):
            raise TemplateError(
                f"{spec.describe()} sets no {', '.join(unknown)}: the template is the truth"
            )
        parameters = self.body.get("Parameters", {})
        environment = {}
        for name, value in spec.environment.items():
            ref = value.get("Ref") if isinstance(value, dict) else None
            if name in values:
                environment[name] = values[name]
            elif not isinstance(value, dict):
                environment[name] = str(value).lower() if isinstance(value, bool) else str(value)
            elif isinstance(ref, str) and "Default" in parameters.get(ref, {}):
                environment[name] = str(parameters[ref]["Default"])
            else:
                attribute = value.get("Fn::GetAtt")
                target = ref or (".".join(attribute) if isinstance(attribute, list) else name)
                environment[name] = f"local-{target.lower()}"
        return environment

    def layers(self) -> dict[str, LayerSpec]:
        """Layers built from local content, by logical id."""
        layers = {}
        for logical_id, resource in self.resources(LAYER_TYPE).items():
            content = resource.get("Properties", {}).get("ContentUri")
            if isinstance(content, str) and not content.startswith("s3://"):
                layers[logical_id] = LayerSpec(
                    logical_id, (self.path.parent / content).resolve(), self.path
                )
        return layers

    def condition(self, name: str) -> bool:
        """Evaluate condition ``name`` from the parameters' known values.

        A parameter's value is known when it keeps its default, is set by the parent to a
        literal, or is a layer the parent passes (an ARN: never empty). Conditions over
        values only known at deploy time raise :class:`TemplateError`.
        """
        conditions = self.body.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"{self.path.name}: no condition {name}")
        return bool(self._evaluate(conditions[name], name))

    def _parameter(self, name: str, condition: str) -> Any:
        if name in self.passed_layers:
            return f"<{self.passed_layers[name].logical_id} version ARN>"
        if name in self.passed:
            value = self.passed[name]
            if isinstance(value, str | int | float | bool):
                return value
        elif "Default" in self.body.get("Parameters", {}).get(name, {}):
            return self.body["Parameters"][name]["Default"]
        raise TemplateError(f"{self.path.name}: condition {condition} depends on {name}")

    def _evaluate(self, expression: Any, condition: str) -> Any:  # noqa: PLR0911 - one per intrinsic
        if not isinstance(expression, dict) or len(expression) != 1:
            return expression
        ((key, argument),) = expression.items()
        if key == "Ref":
            return self._parameter(str(argument), condition)
        if key == "Condition":
            return self.condition(str(argument))
        if key == "Fn::Equals":
            left, right = (self._evaluate(item, condition) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._evaluate(argument[0], condition)
        if key == "Fn::And":
            return all(self._evaluate(item, condition) for item in argument)
        if key == "Fn::Or":
            return any(self._evaluate(item, condition) for item in argument)
        raise TemplateError(f"{self.path.name}: condition {condition} uses {key}")

    def _function_layers(self, entries: list[Any], local: dict[str, LayerSpec]) -> list[LayerSpec]:
        """The layers a function's ``Layers`` resolve to: local ones, or passed by the parent."""
        found = []
        for entry in entries:
            chosen = entry
            while isinstance(chosen, dict) and "Fn::If" in chosen:
                condition, then, otherwise = chosen["Fn::If"]
                chosen = then if self.condition(condition) else otherwise
            ref = str(chosen.get("Ref")) if isinstance(chosen, dict) else ""
            if ref in local:
                found.append(local[ref])
            elif ref in self.passed_layers:
                found.append(self.passed_layers[ref])
        return found

    def functions(self) -> list[FunctionSpec]:
        """Functions of this template with Globals merged, CodeUri and layers resolved."""
        globals_ = self.body.get("Globals", {}).get("Function", {})
        layers = self.layers()
        specs = []
        for logical_id, resource in self.resources(FUNCTION_TYPE).items():
            properties = merge_globals(copy.deepcopy(globals_), resource.get("Properties", {}))
            code_uri = properties.get("CodeUri")
            handler = properties.get("Handler")
            if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
                raise TemplateError(
                    f"{logical_id} ({self.path.name}): needs a local CodeUri and a "
                    f"module.function Handler, got CodeUri={code_uri!r} Handler={handler!r}"
                )
            function_layers = self._function_layers(properties.get("Layers", []), layers)
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    template=self.path,
                    properties=properties,
                    code_uri=(self.path.parent / code_uri).resolve(),
                    handler=handler,
                    layers=tuple(function_layers),
                )
            )
        return specs


def load_template(path: Path) -> Template:
    """Parse one template file (CloudFormation short-form tags understood)."""
    try:
        body = cfn_yaml.load(str(path))
    except (OSError, cfn_yaml.CfnParseError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    return Template(path=path.resolve(), body=_plain(body))


def load_platform(
    root: Path,
    passed: Mapping[str, Any] | None = None,
    passed_layers: Mapping[str, LayerSpec] | None = None,
) -> Template:
    """Load ``template.yaml`` and, recursively, the local templates it nests.

    A nested template learns which parameters its parent sets and which of them carry one
    of the parent's layers, so its functions resolve to the layer actually deployed.
    """
    loaded = load_template(root)
    template = Template(
        path=loaded.path,
        body=loaded.body,
        passed=dict(passed or {}),
        passed_layers=dict(passed_layers or {}),
    )
    available = {**template.layers(), **template.passed_layers}
    nested = []
    for logical_id, resource in template.resources(APPLICATION_TYPE).items():
        properties = resource.get("Properties", {})
        location = properties.get("Location")
        if not isinstance(location, str):
            continue  # a Serverless Application Repository app: not ours to load
        child = (template.path.parent / location).resolve()
        if not child.is_file():
            raise TemplateError(f"{logical_id} ({root.name}): Location {location} does not exist")
        parameters = properties.get("Parameters", {})
        layers = {
            name: available[value["Ref"]]
            for name, value in parameters.items()
            if isinstance(value, dict) and value.get("Ref") in available
        }
        nested.append(load_platform(child, parameters, layers))
    return Template(
        path=template.path,
        body=template.body,
        nested=tuple(nested),
        passed=template.passed,
        passed_layers=template.passed_layers,
    )
