"""Function configuration: one clear error naming every missing or invalid variable."""

from __future__ import annotations

import pytest

from selfservice_runtime.config import (
    ConfigurationError,
    FunctionConfig,
    env_var_names,
    load_config,
)


class SampleConfig(FunctionConfig):
    event_bus_name: str
    retry_attempts: int


COMPLETE = {
    "POWERTOOLS_SERVICE_NAME": "intake",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_METRICS_NAMESPACE": "selfservice",
    "EVENT_BUS_NAME": "selfservice-bus",
    "RETRY_ATTEMPTS": "3",
    "AWS_REGION": "us-east-1",  # the runtime's own variables are ignored
}


def test_the_environment_validates_into_the_model() -> None:
    config = load_config(SampleConfig, COMPLETE)
    assert config.event_bus_name == "selfservice-bus"
    assert config.retry_attempts == 3


def test_variable_names_are_the_upper_case_field_names() -> None:
    assert env_var_names(SampleConfig) == {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_METRICS_NAMESPACE",
        "PYDANTIC_DISABLE_PLUGINS",
        "EVENT_BUS_NAME",
        "RETRY_ATTEMPTS",
    }


def test_missing_variables_are_named_in_one_error() -> None:
    environ = {k: v for k, v in COMPLETE.items() if k not in {"EVENT_BUS_NAME", "RETRY_ATTEMPTS"}}
    with pytest.raises(ConfigurationError) as caught:
        load_config(SampleConfig, environ)
    message = str(caught.value)
    assert message.startswith("SampleConfig: ")
    assert "missing environment variable EVENT_BUS_NAME" in message
    assert "missing environment variable RETRY_ATTEMPTS" in message


def test_invalid_values_are_named_without_echoing_them() -> None:
    environ = {**COMPLETE, "RETRY_ATTEMPTS": "s3cr3t-looking-value", "POWERTOOLS_LOG_LEVEL": "LOUD"}
    with pytest.raises(ConfigurationError) as caught:
        load_config(SampleConfig, environ)
    message = str(caught.value)
    assert "environment variable RETRY_ATTEMPTS" in message
    assert "environment variable POWERTOOLS_LOG_LEVEL" in message
    assert "s3cr3t-looking-value" not in message


def test_lower_case_names_do_not_count() -> None:
    environ = {k: v for k, v in COMPLETE.items() if k != "EVENT_BUS_NAME"}
    environ["event_bus_name"] = "selfservice-bus"
    with pytest.raises(ConfigurationError, match="EVENT_BUS_NAME"):
        load_config(SampleConfig, environ)
