"""Request bodies, the ports' value types, and the results the API returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "TERMINAL_STATUSES",
    "Association",
    "AssociationTarget",
    "Instance",
    "Invocation",
    "InvocationResult",
    "RunCommandsBody",
    "StartAssociationBody",
]

InstanceId = Annotated[str, Field(pattern=r"^(i|mi)-[0-9a-f]{8,17}$")]
TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w .:/=+@-]+$")]
TagValue = Annotated[str, Field(max_length=256, pattern=r"^[\w .:/=+@-]*$")]

AssociationId = Annotated[str, Field(pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")]

TERMINAL_STATUSES = frozenset({"Success", "Failed", "Cancelled", "TimedOut"})
"""Command invocation states after which nothing changes (SSM's ``Status``)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunCommandsBody(_Body):
    """``POST /run-commands``: one instance, or the eligible instances carrying tags."""

    instance_id: InstanceId | None = None
    tags: dict[TagKey, TagValue] | None = Field(default=None, min_length=1, max_length=10)
    commands: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = Field(
        default=None, min_length=1, max_length=20
    )
    """Omitted: the configured diagnostic set."""
    wait_seconds: float | None = Field(default=None, gt=0, le=25)
    """How long to wait for results (at most the configured wait)."""
    comment: Annotated[str, Field(max_length=100)] = ""

    @model_validator(mode="after")
    def _one_target_form(self) -> Self:
        if (self.instance_id is None) == (self.tags is None):
            raise ValueError("give exactly one of instance_id or tags")
        return self


class StartAssociationBody(_Body):
    """``POST /start-association``: State Manager associations to apply once, now."""

    association_ids: list[AssociationId] = Field(min_length=1, max_length=10)


@dataclass(frozen=True)
class Instance:
    """What EC2 says about a target."""

    instance_id: str
    state: str
    platform: Literal["linux", "windows"]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AssociationTarget:
    """One entry of an association's ``Targets`` (``InstanceIds``, ``tag:<key>``, …)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Association:
    """What ``DescribeAssociation`` says about a State Manager association."""

    association_id: str
    document_name: str
    parameters: dict[str, list[str]] = field(default_factory=dict)
    instance_id: str | None = None
    """The legacy single-instance form (``InstanceId``), when the association has it."""
    targets: tuple[AssociationTarget, ...] = ()
    elsewhere: bool = False
    """It also targets other accounts or regions (``TargetLocations``) or ``TargetMaps``."""


@dataclass(frozen=True)
class Invocation:
    """One instance's side of a command, as SSM reports it."""

    command_id: str
    instance_id: str
    status: str
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    stdout_url: str = ""
    stderr_url: str = ""

    @property
    def terminal(self) -> bool:
        """Whether the invocation has finished."""
        return self.status in TERMINAL_STATUSES


class InvocationResult(BaseModel):
    """One instance's result in a response."""

    instance_id: str
    command_id: str
    status: str
    response_code: int
    stdout: str
    stderr: str
    truncated: bool
    """stdout or stderr was cut to the configured limit (the full text is at the URLs)."""
    stdout_url: str | None = None
    stderr_url: str | None = None

    @classmethod
    def of(cls, invocation: Invocation, limit: int) -> InvocationResult:
        """Truncate the invocation's output to ``limit`` characters per stream."""
        return cls(
            instance_id=invocation.instance_id,
            command_id=invocation.command_id,
            status=invocation.status,
            response_code=invocation.response_code,
            stdout=invocation.stdout[:limit],
            stderr=invocation.stderr[:limit],
            truncated=len(invocation.stdout) > limit or len(invocation.stderr) > limit,
            stdout_url=invocation.stdout_url or None,
            stderr_url=invocation.stderr_url or None,
        )
