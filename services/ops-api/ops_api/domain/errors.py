"""Refusals of the ops API: each knows its HTTP status and its audit outcome."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

__all__ = [
    "CommandNotAllowedError",
    "InstanceNotEligibleError",
    "InvalidRequestError",
    "NotFoundError",
    "OpsError",
    "Outcome",
    "SsmFailureError",
    "UnsupportedMediaTypeError",
    "WaitTimeoutError",
]

Outcome = Literal["succeeded", "failed", "denied", "invalid", "timed_out", "not_found"]


class OpsError(Exception):
    """A known condition that ends a call with ``status`` and a JSON body."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    outcome: ClassVar[Outcome] = "failed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """What the caller receives."""
        return {"error": self.code, "message": self.message, **self.details}


class InvalidRequestError(OpsError):
    """The body is not a valid request (400)."""

    status = 400
    code = "InvalidRequest"
    outcome = "invalid"


class UnsupportedMediaTypeError(OpsError):
    """The body is sent as something other than JSON (415)."""

    status = 415
    code = "UnsupportedMediaType"
    outcome = "invalid"


class CommandNotAllowedError(OpsError):
    """A command is not on the allow-list or carries shell metacharacters (403)."""

    status = 403
    code = "CommandNotAllowed"
    outcome = "denied"


class InstanceNotEligibleError(OpsError):
    """A target lacks the allow tag, is not running, or IAM refused it (403)."""

    status = 403
    code = "InstanceNotEligible"
    outcome = "denied"


class NotFoundError(OpsError):
    """Unknown instance, command or association, or no eligible instance matches (404)."""

    status = 404
    code = "NotFound"
    outcome = "not_found"


class WaitTimeoutError(OpsError):
    """The command was still running when the wait ended (504); fetch it later."""

    status = 504
    code = "Timeout"
    outcome = "timed_out"


class SsmFailureError(OpsError):
    """SSM or EC2 failed or refused in a way the caller cannot fix (502)."""

    status = 502
    code = "SsmFailure"
    outcome = "failed"
