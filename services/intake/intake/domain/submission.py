"""What a delivery says, once its source-specific shape is gone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from intake.domain.errors import FieldError, MalformedPayloadError
from selfservice_contracts.request import (
    EMAIL_PATTERN,
    Action,
    ApprovalState,
    Requester,
    TicketRef,
)

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
    approval_given: bool = False
    """This delivery is the approval being given (the ITSM's approval changed to approved):
    each one is its own approval, its retries (the same delivery id) are not."""
    problems: list[FieldError] = field(default_factory=list)
    """Mapping problems found while normalizing (reported with the schema violations)."""


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery that asks for nothing (a comment, an unrelated update)."""

    reason: str


_EMAIL = re.compile(EMAIL_PATTERN)


def requester(source: str, user_id: str, name: str | None, email: str | None) -> Requester:
    """Who asked, or a 400 naming what is wrong with it.

    The e-mail address is optional in both ITSMs (Jira hides it by default): a value
    that is not an address the contracts accept is dropped rather than refused.
    """
    usable = email if email and len(email) <= 320 and _EMAIL.fullmatch(email) else None  # noqa: PLR2004
    try:
        return Requester(id=user_id, name=name, email=usable)
    except ValidationError as exc:
        errors = [{**e, "loc": ("requester", *e["loc"])} for e in exc.errors()]
        raise malformed_from_validation(source, errors) from None  # type: ignore[arg-type]


def malformed_from_validation(source: str, errors: Sequence[ErrorDetails]) -> MalformedPayloadError:
    """A 400 listing each pydantic error as ``field: message`` (input values not echoed)."""
    field_errors = [
        FieldError(".".join(str(p) for p in error["loc"]) or "body", error["msg"])
        for error in errors
    ]
    return MalformedPayloadError(f"not a valid {source} delivery", field_errors)
