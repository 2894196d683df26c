"""Run Command itself: send to each platform's document, wait with backoff, read results.

The targets and commands have been vetted before anything here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ops_api.domain.audit import Audit
from ops_api.domain.errors import InstanceNotEligibleError, SsmFailureError
from ops_api.domain.models import Instance, Invocation
from ops_api.domain.ports import (
    Commands,
    InvocationNotReadyError,
    SsmDeniedError,
    SsmUnavailableError,
    TargetNotManagedError,
)
from ops_api.domain.vetting import DOCUMENTS
from ops_api.settings import OpsSettings

__all__ = ["SAFETY_MARGIN_SECONDS", "Sent", "full_invocation", "send", "wait", "wait_budget"]

SAFETY_MARGIN_SECONDS = 2.0
"""Time kept back from the Lambda deadline to answer 504 instead of being cut off."""

Sent = list[tuple[str, str]]
"""(command id, instance id) of each invocation sent."""


def send(
    commands: Commands,
    settings: OpsSettings,
    targets: Sequence[Instance],
    *,
    lines: list[str],
    comment: str,
    audit: Audit,
) -> Sent:
    """Send the commands, one SendCommand per platform; the audit learns each command id."""
    sent: Sent = []
    for platform in ("linux", "windows"):
        group = [t.instance_id for t in targets if t.platform == platform]
        if not group:
            continue
        document = DOCUMENTS[platform]
        try:
            command_id = commands.send(
                group,
                document=document,
                commands=lines,
                execution_timeout=settings.execution_timeout_seconds,
                comment=comment or f"selfservice ops: {audit.caller.user_arn}"[:100],
                output_s3_bucket=settings.output_s3_bucket,
                output_s3_prefix=settings.output_s3_prefix,
            )
        except TargetNotManagedError as exc:
            raise InstanceNotEligibleError(f"not reachable by SSM: {exc}") from None
        except SsmDeniedError as exc:
            raise InstanceNotEligibleError(f"refused by IAM: {exc}") from None
        except SsmUnavailableError as exc:
            raise SsmFailureError(f"SSM failed: {exc}") from None
        audit.document_name = document
        audit.command_id = audit.command_id or command_id
        sent.extend((command_id, instance_id) for instance_id in group)
    return sent


def wait_budget(requested: float | None, settings: OpsSettings, time_left: float) -> float:
    """How long to wait for results: as asked, within the settings and the deadline."""
    budget = min(requested or settings.wait_seconds, settings.wait_seconds)
    return max(0.0, min(budget, time_left - SAFETY_MARGIN_SECONDS))


def wait(
    commands: Commands,
    settings: OpsSettings,
    sent: Sent,
    budget: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[list[Invocation], Sent]:
    """Poll with exponential backoff until every invocation ends or ``budget`` passes."""
    deadline = clock() + budget
    delay = settings.poll_initial_seconds
    pending = list(sent)
    finished: dict[tuple[str, str], Invocation] = {}
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(delay, remaining))
        delay = min(delay * 2, settings.poll_max_seconds)
        for key in list(pending):
            try:
                invocation = commands.invocation(*key)
            except InvocationNotReadyError:
                continue  # SSM registers invocations a moment after SendCommand
            except SsmUnavailableError as exc:
                raise SsmFailureError(f"SSM failed while waiting: {exc}") from None
            if invocation.terminal:
                finished[key] = invocation
                pending.remove(key)
        if not pending:
            break
    return [finished[key] for key in sent if key in finished], pending


def full_invocation(commands: Commands, listed: Invocation) -> Invocation:
    """The invocation with SSM's full output (the listing keeps 2,500 characters)."""
    try:
        return commands.invocation(listed.command_id, listed.instance_id)
    except InvocationNotReadyError:
        return listed
    except SsmUnavailableError as exc:
        raise SsmFailureError(f"SSM failed: {exc}") from None
