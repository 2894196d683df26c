"""Webhook secrets from Secrets Manager or SSM SecureString, cached by Powertools.

A secret's value is one of:

- a plain string (one accepted value);
- ``{"current": X, "previous": Y}`` during a rotation (both accepted; ``previous`` may
  be absent or empty);
- ``{"username": U, "password": P}`` for basic auth (accepted as ``U:P``), also allowed
  as the X and Y above.

Ids that start with ``/`` or ``arn:aws:ssm:`` are SSM SecureString parameters (read
with decryption); any other id is a Secrets Manager secret name or ARN.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from intake.domain.errors import ConfigurationUnavailableError

__all__ = ["CACHE_SECONDS", "ParameterSecretStore", "accepted_values"]

CACHE_SECONDS = 300


def _one(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict) and isinstance(value.get("username"), str):
        return f"{value['username']}:{value.get('password', '')}"
    return None


def accepted_values(raw: str) -> list[str]:
    """The values a secret document accepts, current first."""
    try:
        document = json.loads(raw)
    except ValueError:
        return [raw] if raw else []
    if isinstance(document, dict) and "current" in document:
        values = [_one(document.get("current")), _one(document.get("previous"))]
        return [value for value in values if value]
    single = _one(document) if isinstance(document, dict) else None
    return [single] if single else [raw]


class ParameterSecretStore:
    """Reads secrets through Powertools providers (cached for :data:`CACHE_SECONDS`)."""

    def __init__(self, ssm: SSMProvider, secrets: SecretsProvider) -> None:
        self._ssm = ssm
        self._secrets = secrets

    def values(self, secret_id: str) -> list[str]:
        """Accepted values of ``secret_id``; a 503 if it cannot be read."""
        try:
            if secret_id.startswith(("/", "arn:aws:ssm:")):
                raw = self._ssm.get(secret_id, decrypt=True, max_age=CACHE_SECONDS)
            else:
                raw = self._secrets.get(secret_id, max_age=CACHE_SECONDS)
        except GetParameterError as exc:
            raise ConfigurationUnavailableError("a webhook secret cannot be read") from exc
        values = accepted_values(str(raw))
        if not values:
            raise ConfigurationUnavailableError("a webhook secret is empty")
        return values
