"""Intake's configuration document from SSM Parameter Store, cached and validated."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SSMProvider

from intake.domain.errors import ConfigurationUnavailableError
from intake.settings import IntakeSettings
from selfservice_runtime.settings_document import SettingsDocumentError, load_document

__all__ = ["load_settings"]


def load_settings(ssm: SSMProvider, parameter_name: str) -> IntakeSettings:
    """The current settings; a 503 (and the reason in the log) when missing or invalid."""
    try:
        return load_document(ssm, parameter_name, IntakeSettings)
    except SettingsDocumentError as exc:
        raise ConfigurationUnavailableError(f"intake configuration is {exc.reason}") from exc
