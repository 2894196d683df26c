"""Intake's configuration document from SSM Parameter Store, cached and validated."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError

from intake.domain.errors import ConfigurationUnavailableError
from intake.settings import IntakeSettings

__all__ = ["load_settings"]

CACHE_SECONDS = 60


@lru_cache(maxsize=4)
def _validated(document: str) -> IntakeSettings:
    return IntakeSettings.model_validate_json(document)


def load_settings(ssm: SSMProvider, parameter_name: str) -> IntakeSettings:
    """The current settings; a 503 (and the reason in the log) when missing or invalid."""
    try:
        document = ssm.get(parameter_name, max_age=CACHE_SECONDS)
    except GetParameterError as exc:
        raise ConfigurationUnavailableError("intake configuration is unavailable") from exc
    try:
        return _validated(str(document))
    except ValidationError as exc:
        raise ConfigurationUnavailableError("intake configuration is invalid") from exc
