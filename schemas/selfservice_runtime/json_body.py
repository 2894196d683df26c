"""Strict parsing of HTTP request bodies: every way a body can fail is one ``ValueError``.

``json.loads`` alone fails in more ways than ``JSONDecodeError``: a body nested a few
thousand levels deep raises ``RecursionError`` (a 500 if uncaught), bytes that are not
UTF-8 raise ``UnicodeDecodeError``, an integer of more than 4,300 digits raises a plain
``ValueError``, and ``NaN``, ``Infinity`` or ``1e999`` are accepted as floats that no
JSON document can hold. Both HTTP services (intake's webhooks, the ops API) parse with
:func:`parse_json_body`, so a bad body is always a 400 with the reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_DEPTH", "InvalidJsonBodyError", "parse_json_body", "parse_json_object"]

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a body may have (real payloads stay under 20)."""


class InvalidJsonBodyError(json.JSONDecodeError):
    """The body is not a JSON document this platform accepts; ``reason`` says why.

    A ``JSONDecodeError`` (so a ``ValueError``), so callers that already treat a decode
    error as a bad request — Powertools' validation among them — treat this one alike.
    """

    def __init__(self, reason: str, document: str = "", position: int = 0) -> None:
        super().__init__(reason, document, position)
        self.reason = reason


def _refuse_constant(name: str) -> Any:
    raise InvalidJsonBodyError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJsonBodyError(f"the number {text[:20]} is too large")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, computed without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_body(body: bytes | str) -> Any:
    """The JSON value of ``body``; raises :class:`InvalidJsonBodyError` whatever went wrong."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise InvalidJsonBodyError("the body is not UTF-8 encoded") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidJsonBodyError:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidJsonBodyError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", text, exc.pos
        ) from None
    except RecursionError:
        raise InvalidJsonBodyError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer beyond the interpreter's digit limit
        raise InvalidJsonBodyError(f"not valid JSON: {str(exc)[:120]}") from None
    if _depth(value) > MAX_DEPTH:
        raise InvalidJsonBodyError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def parse_json_object(body: bytes | str) -> dict[str, Any]:
    """Like :func:`parse_json_body`, for bodies that must be one JSON object."""
    value = parse_json_body(body)
    if not isinstance(value, dict):
        raise InvalidJsonBodyError(f"the body must be a JSON object, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
