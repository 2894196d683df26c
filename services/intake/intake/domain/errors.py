"""Typed outcomes that are not a 202. The HTTP layer maps each to one status code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthFailure = Literal[
    "missing_credentials",
    "bad_signature",
    "stale_timestamp",
    "bad_token",
    "bad_basic_auth",
    "malformed_credentials",
]


class IntakeError(Exception):
    """Base of every refusal intake answers with a 4xx or 503."""

    status_code = 400

    def body(self) -> dict[str, object]:
        """The JSON body of the response."""
        return {"message": str(self)}


class SourceDisabledError(IntakeError):
    """The source has no configuration, so its endpoint does not exist."""

    status_code = 404


class AuthenticationError(IntakeError):
    """The delivery did not prove its origin. The reason goes to metrics, never to the caller."""

    status_code = 401

    def __init__(self, reason: AuthFailure) -> None:
        super().__init__("unauthorized")
        self.reason: AuthFailure = reason


class PayloadTooLargeError(IntakeError):
    """The body exceeds the configured limit."""

    status_code = 413


class UnsupportedMediaTypeError(IntakeError):
    """The body is not JSON."""

    status_code = 415


@dataclass(frozen=True)
class FieldError:
    """One precise problem with the payload."""

    field: str
    message: str


class MalformedPayloadError(IntakeError):
    """The body is not something a ticket could have produced; no ticket is known."""

    status_code = 400

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    def body(self) -> dict[str, object]:
        """Message plus field-level errors."""
        return {
            "message": str(self),
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }


class BusUnavailableError(IntakeError):
    """The event could not be published; the sender should retry."""

    status_code = 503


class DeliveryInProgressError(IntakeError):
    """An identical delivery is being processed right now; the sender should retry."""

    status_code = 503


class DeduplicationStoreUnavailableError(IntakeError):
    """Intake cannot tell whether it saw this delivery before; the sender should retry."""

    status_code = 503


class ConfigurationUnavailableError(IntakeError):
    """Intake's configuration or a secret could not be loaded; the sender should retry."""

    status_code = 503
