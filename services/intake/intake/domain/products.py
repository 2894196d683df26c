"""Product variables: coerce what ITSM forms send, then validate against the schema.

Forms send numbers and booleans as strings ("1", "true"), multi-values as
comma-separated text, and unfilled optional variables as "". Coercion is guided by the
product's JSON Schema; validation then reports *every* problem, one reason per
variable, in words a requester understands. Schemas are compiled once per product.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fastjsonschema

from selfservice_contracts.events import RejectionReason
from selfservice_contracts.products import UnknownProductError, variable_schema

__all__ = ["ProductVariables", "UnknownProductError", "validate_variables"]

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_INTEGER = re.compile(r"^[+-]?\d{1,15}$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class ProductVariables:
    """A product's compiled validators."""

    product: str
    schema: dict[str, Any]
    validators: dict[str, Callable[[Any], Any]]

    @property
    def properties(self) -> dict[str, Any]:
        """The variables the product declares."""
        properties: dict[str, Any] = self.schema["properties"]
        return properties


@cache
def _compiled(product: str) -> ProductVariables:
    schema = variable_schema(product)
    validators = {
        name: fastjsonschema.compile(definition)
        for name, definition in schema["properties"].items()
    }
    return ProductVariables(product, schema, validators)


def _coerce(value: Any, definition: dict[str, Any]) -> Any:  # noqa: PLR0911 - a table of cases
    kind = definition.get("type")
    if isinstance(value, str):
        text = value.strip()
        if kind == "integer" and _INTEGER.match(text):
            return int(text)
        if kind == "number" and _NUMBER.match(text):
            return float(text)
        if kind == "boolean" and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        if kind == "array":
            return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]
        return text
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind == "array" and isinstance(value, str | int | float):
        return [str(value)]
    return value


def _describe(
    name: str, definition: dict[str, Any], error: fastjsonschema.JsonSchemaValueException
) -> str:
    if error.rule == "pattern":
        # A regular expression helps nobody on a ticket; the variable's description does.
        shown = str(error.value)[:80]
        return f"{name} {shown!r} is not valid: {definition.get('description', 'bad format')}"
    return str(error.message).replace("data", name, 1)[:900]


def validate_variables(
    product: str, raw: dict[str, Any]
) -> tuple[dict[str, Any], list[RejectionReason]]:
    """Coerced variables (with schema defaults) and every reason they are not acceptable."""
    compiled = _compiled(product)
    reasons: list[RejectionReason] = []
    variables: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # an unfilled optional variable
        definition = compiled.properties.get(name)
        if definition is None:
            reasons.append(
                RejectionReason(
                    code="schema_violation",
                    field=name[:128],
                    message=f"{product} has no variable named {name[:100]!r}",
                )
            )
            continue
        variables[name] = _coerce(value, definition)
    for name in compiled.schema.get("required", []):
        if name not in variables:
            reasons.append(
                RejectionReason(code="schema_violation", field=name, message=f"{name} is required")
            )
    for name, value in variables.items():
        try:
            compiled.validators[name](value)
        except fastjsonschema.JsonSchemaValueException as error:
            reasons.append(
                RejectionReason(
                    code="schema_violation",
                    field=name,
                    message=_describe(name, compiled.properties[name], error),
                )
            )
    for name, definition in compiled.properties.items():
        if name not in variables and "default" in definition:
            variables[name] = definition["default"]
    return variables, reasons
