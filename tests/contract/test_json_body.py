"""The strict body parser: every way ``json.loads`` can fail, or accept too much, is one error."""

from __future__ import annotations

import json

import pytest

from selfservice_runtime.json_body import (
    MAX_DEPTH,
    InvalidJsonBodyError,
    parse_json_body,
    parse_json_object,
)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper than 64 levels"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper than 64 levels"),
        (b"\x80\xff{}", "not UTF-8"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1e999}', "too large"),
        (b'{"a": ' + b"9" * 5000 + b"}", "digits"),
        (b'{"a": ', "not valid JSON: Expecting value at line 1 column 7"),
        (b"", "not valid JSON"),
    ],
)
def test_each_way_parsing_can_fail_is_an_invalid_body_with_its_reason(
    body: bytes, reason: str
) -> None:
    with pytest.raises(InvalidJsonBodyError) as caught:
        parse_json_body(body)
    assert reason in caught.value.reason
    assert isinstance(caught.value, json.JSONDecodeError)  # Powertools' validation maps it


def test_nesting_up_to_the_limit_and_ordinary_values_parse() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json_body(deep) is not None
    assert parse_json_body('{"n": 2.0, "m": 12345678901234567890}') == {
        "n": 2.0,
        "m": 12345678901234567890,
    }


@pytest.mark.parametrize(
    ("body", "kind"), [("[1]", "an array"), ('"x"', "a string"), ("null", "null")]
)
def test_a_body_that_must_be_an_object_names_what_it_is(body: str, kind: str) -> None:
    with pytest.raises(InvalidJsonBodyError, match=f"must be a JSON object, not {kind}"):
        parse_json_object(body)
