"""The ops configuration document from SSM Parameter Store, cached and validated."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SSMProvider

from ops_api.domain.errors import SsmFailureError
from ops_api.settings import OpsSettings
from selfservice_runtime.settings_document import SettingsDocumentError, load_document

__all__ = ["load_settings"]


def load_settings(ssm: SSMProvider, parameter_name: str) -> OpsSettings:
    """The current settings; a 502 naming the cause when missing or invalid.

    An invalid document never falls back to a looser default: nothing runs until the
    platform team fixes it.
    """
    try:
        return load_document(ssm, parameter_name, OpsSettings)
    except SettingsDocumentError as exc:
        detail = "; see the function's log" if exc.reason == "invalid" else ""
        raise SsmFailureError(f"the ops configuration is {exc.reason}{detail}") from exc
