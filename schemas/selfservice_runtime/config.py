"""Typed function configuration: the environment a template gives a function, as a model.

Each handler declares one :class:`FunctionConfig` subclass whose fields are exactly the
environment variables its template sets (field ``event_bus_name`` ↔ ``EVENT_BUS_NAME``).
``tests/wiring`` checks that the two sets are equal for every function, and
:func:`load_config` validates the environment once, at cold start, with an error that
names every missing or invalid variable instead of a ``KeyError`` at request time.

Secrets never travel in environment variables: a config field may hold the *name* or
ARN of a secret or SecureString parameter, never its value.
"""

# No `from __future__ import annotations` here: pydantic would then evaluate every field
# annotation from its string when the models are defined, at each cold start.

import os
from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["ConfigurationError", "FunctionConfig", "env_var_names", "load_config"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _env_name(field_name: str) -> str:
    return field_name.upper()


class FunctionConfig(BaseModel):
    """Environment every function has; Powertools and pydantic read these themselves."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",  # the Lambda runtime adds its own AWS_* variables
        alias_generator=_env_name,
        validate_by_alias=True,
        validate_by_name=False,
        str_strip_whitespace=True,
    )

    powertools_service_name: str
    powertools_log_level: LogLevel
    powertools_metrics_namespace: str
    pydantic_disable_plugins: Literal["__all__"] | None = None
    """pydantic scans every installed distribution for plugins at the first model it
    builds (~10-40 ms of each cold start); the platform uses none. Every template sets
    it (the wiring check requires each declared variable); tests may leave it out."""


ConfigT = TypeVar("ConfigT", bound=FunctionConfig)


class ConfigurationError(RuntimeError):
    """The function's environment does not satisfy its configuration model."""


def env_var_names(model: type[FunctionConfig]) -> set[str]:
    """The environment variable names a configuration model reads."""
    return {field.alias or _env_name(name) for name, field in model.model_fields.items()}


def load_config(model: type[ConfigT], environ: Mapping[str, str] | None = None) -> ConfigT:
    """Validate the environment into ``model``; raise one error naming every bad variable."""
    source = os.environ if environ is None else environ
    try:
        return model.model_validate(dict(source))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            if error["type"] == "missing":
                problems.append(f"missing environment variable {name}")
            else:
                problems.append(f"environment variable {name}: {error['msg']}")
        raise ConfigurationError(f"{model.__name__}: " + "; ".join(problems)) from None
