"""What a build's end tells the ticket: the lifecycle event of a finished build (or of
one CodeBuild refused to start), its failure reason and the Terraform error lines, and
the ids those events carry.

Pure: :class:`~provisioner.domain.service.ProvisionerService` reads the ledger, the
outputs and the log, and hands them here.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from provisioner.domain.ledger import LedgerEntry
from provisioner.domain.ports import BuildRefused, BuildResult
from selfservice_contracts.events import (
    ProvisioningFailed,
    ProvisioningRefused,
    ProvisioningSucceeded,
)
from selfservice_contracts.request import ProvisioningRequest

__all__ = [
    "LOG_TAIL_LINES",
    "NOT_STARTED",
    "event_id",
    "failure_reason",
    "not_acted_on_data",
    "not_started_data",
    "not_started_detail",
    "outcome_data",
    "outcome_detail",
    "refusal_event_id",
    "terraform_error_lines",
]

NOT_STARTED: Final = "NOT_STARTED"
"""``build_status`` of a build CodeBuild refused to start (no build, no phase)."""

LOG_TAIL_LINES = 80
"""How much of a failed build's log is read to find Terraform's error."""
_EVENT_IDS = uuid.UUID("0c8f4a62-3b1d-4e5f-a7c9-2d6e8b0f1a34")


def event_id(entry: LedgerEntry, what: str) -> str:
    """A lifecycle event's id, derived from the request, attempt and what happened, so a
    republish after a retry carries the same id (consumers deduplicate on it)."""
    return str(uuid.uuid5(_EVENT_IDS, f"{entry.request_id}|{entry.attempt}|{what}"))


def refusal_event_id(cause: str) -> str:
    """The id of the refusal of the request event ``cause`` (``source#id``): a retry of
    that event republishes it with the same id."""
    return str(uuid.uuid5(_EVENT_IDS, f"{cause}|refused"))


def not_acted_on_data(
    request: ProvisioningRequest, entry: LedgerEntry | None, reason: str
) -> ProvisioningRefused:
    """What the ticket is told of a request the provisioner did not act on."""
    return ProvisioningRefused(
        request_id=request.request_id,
        ticket=request.ticket,
        product=request.product,
        action=request.action,
        reason=reason[:1000],
        state=entry.state.value if entry else None,
    )


def terraform_error_lines(log: list[str], limit: int = 20) -> list[str]:
    """The lines from Terraform's last ``Error:`` on (or the log's end), trimmed."""
    start = max((i for i, line in enumerate(log) if "Error:" in line), default=-1)
    lines = log[start:] if start >= 0 else log
    cleaned = [line.rstrip()[:1000] for line in lines if line.strip()]
    return cleaned[-limit:]


def failure_reason(result: BuildResult) -> str:
    """One sentence on why a build failed, for the ticket."""
    if result.status == "STOPPED":
        return "the build was stopped before Terraform finished"
    if result.status == "TIMED_OUT":
        return "the build timed out"
    if result.failed_phase:
        context = f": {result.phase_context}" if result.phase_context else ""
        return f"the {result.failed_phase} phase failed{context}"[:1000]
    return "the build failed"


def outcome_data(
    entry: LedgerEntry,
    result: BuildResult,
    *,
    outputs: dict[str, Any],
    log_tail: list[str],
) -> ProvisioningSucceeded | ProvisioningFailed:
    """The succeeded or failed event of the current build of ``entry``.

    ``outputs`` are the attempt's Terraform outputs (a success); ``log_tail`` the end of
    its log (a failure), from which Terraform's error lines are taken.
    """
    common: dict[str, Any] = {
        "request_id": entry.request_id,
        "ticket": entry.request.ticket,
        "product": entry.product,
        "action": entry.action,
        "attempt": entry.attempt,
        "build_id": result.build_id,
        "log_url": result.log_url or entry.log_url,
    }
    if result.status == "SUCCEEDED":
        return ProvisioningSucceeded(
            **common, outputs=outputs, duration_seconds=result.duration_seconds
        )
    return ProvisioningFailed(
        **common,
        build_status=result.status,
        phase=result.failed_phase,
        reason=failure_reason(result),
        error_tail=terraform_error_lines(log_tail),
    )


def outcome_detail(result: BuildResult) -> dict[str, Any]:
    """What the ledger's history keeps of a build's end."""
    detail: dict[str, Any] = {"build_id": result.build_id, "status": result.status}
    if result.failed_phase:
        detail["phase"] = result.failed_phase
    return detail


def not_started_data(entry: LedgerEntry, refused: BuildRefused) -> ProvisioningFailed:
    """The failed event of a build CodeBuild refused to start: AWS's error code and
    message (an ``AccessDenied`` names the role, the action and the resource) are the
    reason; there is no build, phase or log."""
    return ProvisioningFailed(
        request_id=entry.request_id,
        ticket=entry.request.ticket,
        product=entry.product,
        action=entry.action,
        attempt=entry.attempt,
        build_status=NOT_STARTED,
        phase=None,
        reason=f"CodeBuild refused to start the build: {refused.code}: {refused.message}"[:1000],
    )


def not_started_detail(refused: BuildRefused) -> dict[str, Any]:
    """What the ledger's history keeps of a refused StartBuild."""
    return {"status": NOT_STARTED, "error_code": refused.code, "message": refused.message[:1000]}
