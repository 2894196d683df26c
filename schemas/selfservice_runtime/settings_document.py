"""A service's deployment configuration: a JSON document in SSM Parameter Store.

Fetched through Powertools parameters (cached ``CACHE_SECONDS``, so an edit takes
effect within a minute, without a deployment) and validated by the service's model;
a document is validated once, however often it is fetched. A missing or invalid
document is an error the service maps to its own refusal: nothing ever falls back to
a looser default.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, TypeVar

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import BaseModel, ValidationError

__all__ = ["CACHE_SECONDS", "SettingsDocumentError", "clear_cache", "load_document"]

CACHE_SECONDS = 60

Model = TypeVar("Model", bound=BaseModel)


class SettingsDocumentError(Exception):
    """The document cannot be used: ``unavailable`` (not readable) or ``invalid``."""

    def __init__(self, reason: Literal["unavailable", "invalid"]) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=8)
def _validated(model: type[BaseModel], document: str) -> BaseModel:
    return model.model_validate_json(document)


def load_document(ssm: SSMProvider, parameter_name: str, model: type[Model]) -> Model:
    """The current document as ``model``, or :class:`SettingsDocumentError`."""
    try:
        document = ssm.get(parameter_name, max_age=CACHE_SECONDS)
    except GetParameterError as exc:
        raise SettingsDocumentError("unavailable") from exc
    try:
        return _validated(model, str(document))  # type: ignore[return-value]
    except ValidationError as exc:
        raise SettingsDocumentError("invalid") from exc


def clear_cache() -> None:
    """Forget validated documents (tests that rewrite a document in place)."""
    _validated.cache_clear()
