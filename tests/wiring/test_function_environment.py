"""Tests and benchmarks take a function's environment from its template, never by hand."""

from __future__ import annotations

import pytest

from selfservice.templates import Template, TemplateError


def test_literals_parameter_defaults_and_placeholders(platform: Template) -> None:
    environment = platform.function_environment("WriteBackFunction")
    assert environment["POWERTOOLS_SERVICE_NAME"] == "notifier"  # a literal, from Globals
    assert environment["POWERTOOLS_LOG_LEVEL"] == "INFO"  # Ref to a parameter: its default
    assert environment["IDEMPOTENCY_TABLE_NAME"] == "local-idempotencytable"  # a resource
    assert all(isinstance(value, str) for value in environment.values())


def test_given_values_replace_placeholders(platform: Template) -> None:
    environment = platform.function_environment("OpsApiFunction", {"OPS_CONFIG_PARAMETER": "/x"})
    assert environment["OPS_CONFIG_PARAMETER"] == "/x"


def test_a_variable_the_template_does_not_set_is_refused(platform: Template) -> None:
    with pytest.raises(TemplateError, match="sets no NOT_IN_THE_TEMPLATE"):
        platform.function_environment("OpsApiFunction", {"NOT_IN_THE_TEMPLATE": "1"})
    with pytest.raises(TemplateError, match="no function Missing"):
        platform.function_environment("Missing")
