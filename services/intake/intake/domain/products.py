"""Product variables: coerce what ITSM forms send, then validate against the schema.

Forms send numbers and booleans as strings ("1", "true", "1.0"), multi-values as
comma-separated text, unfilled optional variables as "", and choices in whatever case
the form shows ("Dev", "  T3.Small "). Coercion is guided by the product's JSON Schema:
text is trimmed; a whole number is an integer however it is written (``2``, ``2.0``,
``"2.0"``); a value of an enumeration, or of a pattern that admits only lower case, is
folded to its canonical case when only that case is valid. Validation then reports
*every* problem, one reason per variable, in words a requester understands. Schemas
are compiled once per product.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import fastjsonschema

from selfservice_contracts.events import RejectionReason
from selfservice_contracts.products import UnknownProductError, variable_schema

__all__ = ["ProductVariables", "UnknownProductError", "validate_variables"]

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_NUMBER = re.compile(r"^[+-]?(\d{1,30}\.?\d{0,30}|\.\d{1,30})([eE][+-]?\d{1,3})?$")
_LARGEST_INTEGER = 10**15
"""Integers beyond this are not coerced (no variable needs them; floats lose digits)."""


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


def _whole(value: Decimal | float) -> int | None:
    """The integer a number written any way (``2``, ``2.0``, ``2e0``) stands for, if whole."""
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    if abs(number) > _LARGEST_INTEGER:
        return None
    return int(number)


def _canonical_case(text: str, definition: dict[str, Any]) -> str:
    """``text`` in the case the schema accepts, when only another case of it is valid."""
    choices = [c for c in definition.get("enum", []) if isinstance(c, str)]
    if choices and text not in choices:
        folded = [c for c in choices if c.casefold() == text.casefold()]
        if len(folded) == 1:
            return folded[0]
    pattern = definition.get("pattern")
    if pattern and not re.search(pattern, text) and re.search(pattern, text.lower()):
        return text.lower()
    return text


def _coerce(value: Any, definition: dict[str, Any]) -> Any:  # noqa: PLR0911 - a table of cases
    kind = definition.get("type")
    if isinstance(value, str):
        text = value.strip()
        if kind in ("integer", "number") and _NUMBER.match(text):
            if kind == "number":
                return float(text)
            whole = _whole(Decimal(text))
            return text if whole is None else whole
        if kind == "boolean" and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        if kind == "array":
            return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]
        if kind == "string":
            return _canonical_case(text, definition)
        return text
    if kind == "integer" and isinstance(value, float):
        whole = _whole(value)
        return value if whole is None else whole
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind == "array" and isinstance(value, str | int | float):
        return [str(value)]
    return value


def _describe(
    name: str, definition: dict[str, Any], error: fastjsonschema.JsonSchemaValueException
) -> str:
    shown = str(error.value)[:80]
    if error.rule == "pattern":
        # What failed first (the format), then what the variable is, in the schema's words.
        about = definition.get("description")
        return (
            f"{name} {shown!r} does not match the expected format {definition.get('pattern')}"
            + (f" ({about})" if about else "")
        )[:900]
    if error.rule == "enum":
        choices = ", ".join(str(c) for c in definition.get("enum", []))
        return f"{name} {shown!r} must be one of: {choices}"[:900]
    return str(error.message).replace("data", name, 1)[:900]


def validate_variables(
    product: str, raw: dict[str, Any], *, undeclared_remedy: str = ""
) -> tuple[dict[str, Any], list[RejectionReason]]:
    """Coerced variables (with schema defaults) and every reason they are not acceptable.

    ``undeclared_remedy`` is appended to the reason of a variable the product does not
    declare: how the sender stops sending it (it depends on the source).
    """
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
                    message=f"{product} has no variable named {name[:100]!r}{undeclared_remedy}",
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
