"""What the ops service needs from AWS, as interfaces (adapters in ``ops_api.adapters``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ops_api.domain.models import Association, Instance, Invocation

__all__ = [
    "AssociationNotFoundError",
    "CommandNotFoundError",
    "Commands",
    "Instances",
    "InvocationNotReadyError",
    "SsmDeniedError",
    "SsmUnavailableError",
    "TargetNotManagedError",
]


class InvocationNotReadyError(Exception):
    """SSM has not registered the invocation yet (``InvocationDoesNotExist``): poll again."""


class CommandNotFoundError(Exception):
    """No such command id."""


class AssociationNotFoundError(Exception):
    """No such association id."""


class TargetNotManagedError(Exception):
    """SSM cannot reach the instance (not managed, not running)."""


class SsmDeniedError(Exception):
    """IAM refused the call (e.g. the allow-tag condition on ssm:SendCommand)."""


class SsmUnavailableError(Exception):
    """SSM or EC2 failed after the SDK's retries."""


class Instances(Protocol):
    """EC2's view of targets."""

    def get(self, instance_ids: Sequence[str]) -> list[Instance]:
        """The instances that exist among ``instance_ids``."""
        ...

    def find(self, tags: Mapping[str, str], *, limit: int) -> list[Instance]:
        """Running instances carrying every tag, at most ``limit`` + 1 of them."""
        ...

    def select(self, filters: Mapping[str, Sequence[str]], *, limit: int) -> list[Instance]:
        """Instances in any state but terminated matching EC2 ``filters`` (any value of
        each, every filter), at most ``limit`` + 1 of them."""
        ...


class Commands(Protocol):
    """SSM Run Command and State Manager."""

    def send(
        self,
        instance_ids: Sequence[str],
        *,
        document: str,
        commands: Sequence[str],
        execution_timeout: int,
        comment: str,
        output_s3_bucket: str | None,
        output_s3_prefix: str,
    ) -> str:
        """Send the command; its id."""
        ...

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        """One invocation (raises :class:`InvocationNotReadyError` while unknown)."""
        ...

    def invocations(self, command_id: str) -> list[Invocation]:
        """Every invocation of a command (raises :class:`CommandNotFoundError`)."""
        ...

    def association(self, association_id: str) -> Association:
        """One association's document, parameters and targets (raises
        :class:`AssociationNotFoundError`)."""
        ...

    def start_associations_once(self, association_ids: Sequence[str]) -> None:
        """Apply associations now (raises :class:`AssociationNotFoundError`)."""
        ...
