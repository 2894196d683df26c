"""IAM condition operators, set qualifiers and policy variables (pure; no moto, no boto3).

The semantics follow AWS's documented evaluation logic:

- keys are case-insensitive, values of one key are ORed, keys and operators are ANDed;
- a missing key makes a positive operator false and a negated one (``...Not...``) true;
  ``...IfExists`` makes any operator true on a missing key; ``Null`` tests presence;
- ``ForAnyValue:`` is true when at least one request value matches (false when the key
  is missing or empty); ``ForAllValues:`` when every request value matches (true when
  the key is missing or empty);
- policy variables ``${aws:username}`` (with ``${key, 'default'}`` and the ``${*}``,
  ``${?}``, ``${$}`` escapes) are replaced by the request's values; an unresolvable
  variable makes the value match nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

__all__ = [
    "UNRESOLVED",
    "Context",
    "UnsupportedConditionError",
    "condition_holds",
    "glob_match",
    "substitute",
]

# Request context: lower-cased key -> its values (a single-valued key has one).
Context = Mapping[str, Sequence[str]]

# What an unresolvable variable becomes: a character no ARN, tag or name contains.
UNRESOLVED = "\x00"


class UnsupportedConditionError(ValueError):
    """A condition operator this evaluator does not know; the statement never matches."""


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def substitute(value: str, context: Context) -> str:
    """``value`` with its policy variables replaced from ``context``."""
    if "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        if body in _ESCAPES:
            return _ESCAPES[body]
        key, _, default = body.partition(",")
        values = context.get(key.strip().lower())
        if values and len(values) == 1:
            return values[0]
        default = default.strip()
        if len(default) >= 2 and default[0] == default[-1] == "'":  # noqa: PLR2004
            return default[1:-1]
        return UNRESOLVED

    return _VARIABLE.sub(replace, value)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool, arn: bool) -> re.Pattern[str]:
    parts = []
    for index, ch in enumerate(pattern):
        if ch == "?":
            parts.append(".")
        elif ch != "*":
            parts.append(re.escape(ch))
        elif arn and pattern[index + 1 : index + 2] not in ("", ":"):
            # In an ARN a "*" inside a segment stays in it; one that ends a segment
            # may run on past its colons (as IAM documents).
            parts.append("[^:]*")
        else:
            parts.append(".*")
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False, arn: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` any one character.

    With ``arn``, a ``*`` in the middle of an ARN segment does not cross a colon.
    """
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _glob(pattern, ignore_case, arn).fullmatch(value) is not None


def _arn_match(pattern: str, value: str) -> bool:
    return glob_match(pattern, value, arn=True)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    number = _number(text)
    if number is not None:
        return datetime.fromtimestamp(number, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(
    convert: Callable[[str], float | datetime | None],
    test: Callable[[float | datetime, float | datetime], bool],
) -> Callable[[str, str], bool]:
    def match(actual: str, expected: str) -> bool:
        a, e = convert(actual), convert(expected)
        if a is None or e is None:
            return False
        try:
            return test(a, e)
        except TypeError:
            return False

    return match


def _ip_match(actual: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


def _bool_match(actual: str, expected: str) -> bool:
    return actual.lower() == expected.lower()


# Positive matchers; each negated operator is the negation of one of these.
_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "stringequals": lambda a, e: a == e,
    "stringequalsignorecase": lambda a, e: a.lower() == e.lower(),
    "stringlike": lambda a, e: glob_match(e, a),
    "arnequals": lambda a, e: _arn_match(e, a),
    "arnlike": lambda a, e: _arn_match(e, a),
    "numericequals": _compare(_number, lambda a, e: a == e),
    "numericlessthan": _compare(_number, lambda a, e: a < e),  # type: ignore[operator]
    "numericlessthanequals": _compare(_number, lambda a, e: a <= e),  # type: ignore[operator]
    "numericgreaterthan": _compare(_number, lambda a, e: a > e),  # type: ignore[operator]
    "numericgreaterthanequals": _compare(_number, lambda a, e: a >= e),  # type: ignore[operator]
    "dateequals": _compare(_date, lambda a, e: a == e),
    "datelessthan": _compare(_date, lambda a, e: a < e),  # type: ignore[operator]
    "datelessthanequals": _compare(_date, lambda a, e: a <= e),  # type: ignore[operator]
    "dategreaterthan": _compare(_date, lambda a, e: a > e),  # type: ignore[operator]
    "dategreaterthanequals": _compare(_date, lambda a, e: a >= e),  # type: ignore[operator]
    "bool": _bool_match,
    "ipaddress": _ip_match,
    "binaryequals": lambda a, e: a == e,
}
_NEGATED: dict[str, str] = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
    "numericnotequals": "numericequals",
    "datenotequals": "dateequals",
    "notipaddress": "ipaddress",
}
# Operators whose policy values may carry policy variables.
_SUBSTITUTED = ("string", "arn")


def _parse_operator(operator: str) -> tuple[str, str, bool, bool]:
    """(qualifier, base operator, negated, if-exists) of ``ForAnyValue:StringLikeIfExists``."""
    qualifier, _, name = operator.rpartition(":")
    qualifier = qualifier.lower()
    if qualifier not in ("", "foranyvalue", "forallvalues"):
        raise UnsupportedConditionError(operator)
    name = name.lower()
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    if name in _NEGATED:
        return qualifier, _NEGATED[name], True, if_exists
    if name in _MATCHERS or name == "null":
        return qualifier, name, False, if_exists
    raise UnsupportedConditionError(operator)


def _values(raw: object) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    return [str(item).lower() if isinstance(item, bool) else str(item) for item in items]


def condition_holds(  # noqa: PLR0911 - one exit per documented rule
    operator: str, key: str, expected_raw: object, context: Context
) -> bool:
    """Whether one ``{operator: {key: values}}`` entry of a Condition block holds."""
    qualifier, base, negated, if_exists = _parse_operator(operator)
    actual = context.get(key.lower())
    present = actual is not None and len(actual) > 0
    expected = _values(expected_raw)
    if base == "null":
        # "true": the key must be absent; "false": present.
        return any((value.lower() == "true") != present for value in expected)
    if not present:
        if if_exists:
            return True
        if qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return negated
    assert actual is not None  # noqa: S101 - narrowed by `present`
    if base.startswith(_SUBSTITUTED):
        expected = [substitute(value, context) for value in expected]
    matcher = _MATCHERS[base]

    def one(value: str) -> bool:
        hit = any(matcher(value, wanted) for wanted in expected)
        return not hit if negated else hit

    if qualifier == "forallvalues":
        return all(one(value) for value in actual)
    if qualifier == "foranyvalue":
        return any(one(value) for value in actual)
    # A single-valued use of a multi-valued key: positive operators need one match,
    # negated ones need every value to miss.
    if negated:
        return all(one(value) for value in actual)
    return any(one(value) for value in actual)
