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
    """One parsed template file."""

    path: Path
    body: dict[str, Any]
    nested: tuple[Template, ...] = field(default=())

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
                layers[logical_id] = LayerSpec(logical_id, (self.path.parent / content).resolve())
        return layers

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
            function_layers = []
            for layer in properties.get("Layers", []):
                ref = layer.get("Ref") if isinstance(layer, dict) else None
                if ref in layers:
                    function_layers.append(layers[ref])
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


def load_platform(root: Path) -> Template:
    """Load ``template.yaml`` and, recursively, the local templates it nests."""
    template = load_template(root)
    nested = []
    for logical_id, resource in template.resources(APPLICATION_TYPE).items():
        location = resource.get("Properties", {}).get("Location")
        if not isinstance(location, str):
            continue  # a Serverless Application Repository app: not ours to load
        child = (template.path.parent / location).resolve()
        if not child.is_file():
            raise TemplateError(f"{logical_id} ({root.name}): Location {location} does not exist")
        nested.append(load_platform(child))
    return Template(path=template.path, body=template.body, nested=tuple(nested))
