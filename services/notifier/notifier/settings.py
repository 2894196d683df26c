"""The notifier's deployment configuration (how each ITSM is written to)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EmailWriteBack", "JiraWriteBack", "NotifierSettings", "Retries", "ServiceNowWriteBack"]

_DEFAULT_STATES = {
    "selfservice.provisioning.started.v1": "2",  # Work in Progress
    "selfservice.provisioning.succeeded.v1": "3",  # Closed Complete
    "selfservice.request.rejected.v1": "4",  # Closed Incomplete
}


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceNowWriteBack(_Settings):
    """``PATCH /api/now/table/sc_req_item/{sys_id}``."""

    auth: Literal["basic", "oauth"] = "basic"
    instance_url: Annotated[str, Field(pattern=r"^https://[^/\s]+$")] | None = None
    """Needed for OAuth: the token endpoint is ``<instance_url>/oauth_token.do``."""
    api_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+$")] | None = None
    """Where the Table API is reached; default: the host in the ticket's URL (the local
    runtime points it at the ITSM sandbox)."""
    journal: Literal["work_notes", "comments", "both"] = "work_notes"
    """Work notes are internal; comments are visible to the requester."""
    tables: Literal["html", "text"] = "html"
    """How a plan's tables are drawn in the journal: ``html`` inside ``[code]`` (a table),
    or ``text`` for an instance that does not render ``[code]`` (aligned, but shown in a
    proportional font)."""
    states: dict[str, str] = Field(default_factory=lambda: dict(_DEFAULT_STATES))
    """Event type → sc_req_item state (a failure leaves the state and adds a note)."""

    @model_validator(mode="after")
    def _oauth_needs_the_instance(self) -> Self:
        if self.auth == "oauth" and self.instance_url is None:
            raise ValueError("servicenow.auth oauth needs servicenow.instance_url")
        return self


class JiraWriteBack(_Settings):
    """Jira Cloud REST v3 comments (ADF) or JSM request comments, and transitions."""

    mode: Literal["comment", "jsm", "email"] = "comment"
    """``email``: send mail to the site's Jira mail handler (see ``email``)."""
    api_url: Annotated[str, Field(pattern=r"^https?://[^/\s]+$")] | None = None
    """Where the REST API is reached; default: the host in the ticket's URL."""
    jsm_public: bool = True
    transitions: dict[str, str] = Field(default_factory=dict)
    """Event type → transition name (ids differ per workflow; looked up by name)."""


class EmailWriteBack(_Settings):
    """SES mail to a Jira mail handler: the issue key leads the subject."""

    from_address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    """A verified SES identity; it must take part in the issues (Jira attaches mail from
    participants only)."""
    to_address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    """The Jira mail handler's address."""


class Retries(_Settings):
    """How hard one invocation tries before handing the retry to the queue."""

    attempts: Annotated[int, Field(ge=1, le=10)] = 4
    base_seconds: Annotated[float, Field(ge=0, le=30)] = 0.5
    cap_seconds: Annotated[float, Field(ge=0, le=60)] = 8.0
    max_inline_wait_seconds: Annotated[float, Field(ge=0, le=60)] = 10.0
    queue_base_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """The first queue retry's wait when the ITSM names none; doubled at each receive."""
    queue_cap_seconds: Annotated[float, Field(ge=0, le=43200)] = 1800.0
    """The longest wait between receives (SQS allows 12 hours)."""


class NotifierSettings(_Settings):
    """The whole document."""

    servicenow: ServiceNowWriteBack = ServiceNowWriteBack()
    jira: JiraWriteBack = JiraWriteBack()
    email: EmailWriteBack | None = None
    retries: Retries = Retries()

    @model_validator(mode="after")
    def _email_mode_needs_addresses(self) -> Self:
        if self.jira.mode == "email" and self.email is None:
            raise ValueError("jira.mode email needs the email section (from and to addresses)")
        return self
