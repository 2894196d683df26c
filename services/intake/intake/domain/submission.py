"""What a delivery says, once its source-specific shape is gone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import ErrorDetails

from intake.domain.errors import FieldError, MalformedPayloadError
from selfservice_contracts.request import Action, ApprovalState, Requester, TicketRef

__all__ = ["Ignored", "Submission", "malformed_from_validation"]


@dataclass(frozen=True)
class Submission:
    """A ticket's request as the ITSM states it, before product validation and policy.

    ``product`` is None when no mapping matched (the ticket is told). ``variables`` are
    canonical names with values not yet coerced to the product's types.
    """

    ticket: TicketRef
    product: str | None
    action: Action
    variables: dict[str, Any]
    requester: Requester
    itsm_approval: ApprovalState
    instance: TicketRef | None = None
    delivery_id: str | None = None
    problems: list[FieldError] = field(default_factory=list)
    """Mapping problems found while normalizing (reported with the schema violations)."""


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery that asks for nothing (a comment, an unrelated update)."""

    reason: str


def malformed_from_validation(source: str, errors: Sequence[ErrorDetails]) -> MalformedPayloadError:
    """A 400 listing each pydantic error as ``field: message`` (input values not echoed)."""
    field_errors = [
        FieldError(".".join(str(p) for p in error["loc"]) or "body", error["msg"])
        for error in errors
    ]
    return MalformedPayloadError(f"not a valid {source} delivery", field_errors)
