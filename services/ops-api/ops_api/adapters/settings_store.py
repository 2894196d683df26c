"""The ops configuration document from SSM Parameter Store, cached and validated."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import ValidationError

from ops_api.domain.errors import SsmFailureError
from ops_api.settings import OpsSettings

__all__ = ["load_settings"]

CACHE_SECONDS = 60


@lru_cache(maxsize=4)
def _validated(document: str) -> OpsSettings:
    return OpsSettings.model_validate_json(document)


def load_settings(ssm: SSMProvider, parameter_name: str) -> OpsSettings:
    """The current settings; a 502 naming the cause when missing or invalid.

    An invalid document never falls back to a looser default: nothing runs until the
    platform team fixes it.
    """
    try:
        document = ssm.get(parameter_name, max_age=CACHE_SECONDS)
    except GetParameterError as exc:
        raise SsmFailureError("the ops configuration is unavailable") from exc
    try:
        return _validated(str(document))
    except ValidationError as exc:
        raise SsmFailureError("the ops configuration is invalid; see the function's log") from exc
