"""The configuration document: the shipped example is valid, mistakes are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from intake.settings import IntakeSettings
from tests.intake.conftest import ROOT


def _example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "config/intake.example.json").read_text())
    return document


def test_the_example_configuration_is_valid_and_fits_an_ssm_parameter() -> None:
    raw = (ROOT / "config/intake.example.json").read_text()
    settings = IntakeSettings.model_validate_json(raw)
    assert settings.servicenow is not None
    assert settings.jira is not None
    assert set(settings.policies) == {"ec2-app", "aws-account"}
    # Intelligent-Tiering parameters hold up to 8 KB (advanced tier).
    assert len(json.dumps(json.loads(raw), separators=(",", ":"))) < 8192


def test_the_stack_default_enables_nothing() -> None:
    settings = IntakeSettings.model_validate_json('{"version": 1}')
    assert settings.servicenow is None
    assert settings.jira is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("servicenow", "auth"), {"hmac": False, "basic": False}),
        (("jira", "auth"), {"hub_signature": False}),
        (("servicenow", "instance_url"), "http://acme.service-now.com"),
        (("jira", "fields"), {"not a field id": "region"}),
        (("policies", "ec2-app", "environments", "dev", "desired_capacity"), {"min": 5, "max": 1}),
        (("policies", "ec2-app", "environments", "dev", "cost_center_pattern"), "(unclosed"),
        (("servicenow", "catalog"), {}),
        (("unknown_key",), True),
    ],
)
def test_mistakes_are_refused(path: tuple[str, ...], value: Any) -> None:
    document = _example()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        IntakeSettings.model_validate(document)
