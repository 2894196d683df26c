"""The audit trail: every call ends in exactly one ``OpsCommandExecuted`` event.

Whatever its outcome (refused, not found, timed out, failed, succeeded), the event
carries the caller's IAM identity, the targets and the commands. A call's answer
stands when its audit event cannot be published; the failure is reported instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ops_api.domain.errors import OpsError, Outcome
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import IamCaller, OpsCommandExecuted, OpsTargets
from selfservice_runtime.publisher import EventPublisher, PublishError

__all__ = ["Audit", "Operation", "audited", "publish_audit"]

Operation = Literal["run-commands", "get-command", "start-association"]


@dataclass
class Audit:
    """What a call is known to touch so far; filled in as the call proceeds."""

    operation: Operation
    caller: IamCaller
    targets: OpsTargets = field(default_factory=OpsTargets)
    commands: list[str] = field(default_factory=list)
    document_name: str | None = None
    command_id: str | None = None
    association_ids: list[str] = field(default_factory=list)

    def record(self, outcome: Outcome, status: int, detail: str | None) -> OpsCommandExecuted:
        """The audit event's data for the call's end."""
        return OpsCommandExecuted(
            operation=self.operation,
            caller=self.caller,
            targets=self.targets,
            commands=self.commands,
            document_name=self.document_name,
            command_id=self.command_id,
            association_ids=self.association_ids,
            outcome=outcome,
            status_code=status,
            detail=detail[:1000] if detail else None,
        )


Publish = Callable[[Audit, Outcome, int, str | None], None]


@contextmanager
def audited(audit: Audit, publish: Publish) -> Iterator[list[Outcome]]:
    """Publish the call's audit event once, however the block ends (errors re-raised).

    The block appends its outcome to the yielded list when it succeeds.
    """
    outcome: list[Outcome] = []
    try:
        yield outcome
    except OpsError as exc:
        publish(audit, exc.outcome, exc.status, exc.message)
        raise
    except Exception as exc:
        publish(audit, "failed", 500, f"unexpected {type(exc).__name__}")
        raise
    status = 202 if audit.operation == "start-association" else 200
    publish(audit, outcome[0] if outcome else "succeeded", status, None)


def publish_audit(
    record: OpsCommandExecuted,
    publisher: EventPublisher,
    on_failure: Callable[[OpsCommandExecuted, Exception], None],
) -> None:
    """Publish one audit event; a failure goes to ``on_failure``, never to the caller."""
    try:
        publisher.publish([build_event(record)])
    except PublishError as exc:
        on_failure(record, exc)
