"""The provisioner: request events and build outcomes in, guarded ledger writes and
lifecycle events out.

Ordering is chosen so that a failure at any step is retried without loss or
duplication: a build is started with an idempotency token derived from the request,
action and attempt (a retry gets the same build), lifecycle events carry ids derived
from the same facts (consumers deduplicate a republish), and the ledger is written
last with a condition on the version it was read at.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from provisioner.domain.ledger import Ledger, LedgerEntry, SerialSlot, Transition
from provisioner.domain.lifecycle import (
    BuildOutcome,
    Decision,
    Refusal,
    RequestKind,
    State,
    building_state,
    decide_build_outcome,
    decide_request,
)
from provisioner.domain.products import Product
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import (
    ApprovalRequiredEvent,
    ProvisioningFailed,
    ProvisioningStarted,
    ProvisioningSucceeded,
    RequestApprovedEvent,
    RequestReceivedEvent,
)
from selfservice_contracts.request import Action, ApprovalState, ProvisioningRequest
from selfservice_runtime.observability import Metric
from selfservice_runtime.publisher import EventPublisher

__all__ = [
    "Artifacts",
    "BuildLogs",
    "BuildRequest",
    "BuildResult",
    "BuildStarter",
    "Outcome",
    "ProvisionerService",
    "StartedBuild",
]

Outcome = Literal["queued", "started", "waiting", "recorded", "refused"]
_EVENT_IDS = uuid.UUID("0c8f4a62-3b1d-4e5f-a7c9-2d6e8b0f1a34")
_KINDS: dict[type, RequestKind] = {
    RequestReceivedEvent: "received",
    ApprovalRequiredEvent: "approval_required",
    RequestApprovedEvent: "approved",
}
RequestEvent = RequestReceivedEvent | ApprovalRequiredEvent | RequestApprovedEvent


@dataclass(frozen=True)
class BuildRequest:
    """Everything a build needs; only non-secret identifiers go to the environment."""

    request: ProvisioningRequest
    action: Action
    attempt: int
    tfvars_uri: str
    outputs_uri: str
    state_key: str


@dataclass(frozen=True)
class StartedBuild:
    """CodeBuild's answer to StartBuild."""

    build_id: str
    log_url: str | None


@dataclass(frozen=True)
class BuildResult:
    """A terminal ``CodeBuild Build State Change`` for one of our builds."""

    build_id: str
    status: BuildOutcome
    request_id: str
    attempt: int
    failed_phase: str | None = None
    phase_context: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    log_url: str | None = None
    duration_seconds: float | None = None


class BuildStarter(Protocol):
    """Starts the Terraform build (CodeBuild StartBuild)."""

    def start(self, build: BuildRequest) -> StartedBuild:
        """Start (or, for a retried token, find again) the build."""
        ...


class Artifacts(Protocol):
    """The tfvars document in, the Terraform outputs out (S3)."""

    def put_tfvars(self, request_id: str, attempt: int, document: dict[str, Any]) -> str:
        """Store the variables of one attempt; returns their URI."""
        ...

    def outputs_uri(self, request_id: str, attempt: int) -> str:
        """Where the build writes ``terraform output -json``."""
        ...

    def get_outputs(self, request_id: str, attempt: int) -> dict[str, Any]:
        """The outputs an attempt wrote ({} if none)."""
        ...


class BuildLogs(Protocol):
    """The end of a build's log, for the failure report."""

    def tail(self, group: str, stream: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the log stream."""
        ...


def destroying(recorded: ProvisioningRequest, destroy: ProvisioningRequest) -> ProvisioningRequest:
    """The destroy request, acting on what the ledger recorded for the instance.

    A decommission names the instance and nothing else (no environment, cost center or
    variables): Terraform destroys with the variables the instance was last built with.
    The ticket, requester and approval stay the destroy's own (write-back goes there).
    """
    return destroy.model_copy(
        update={
            "parameters": dict(recorded.parameters),
            "environment": recorded.environment,
            "cost_center": recorded.cost_center,
        }
    )


def terraform_error_lines(log: list[str], limit: int = 20) -> list[str]:
    """The lines from Terraform's last ``Error:`` on (or the log's end), trimmed."""
    start = max((i for i, line in enumerate(log) if "Error:" in line), default=-1)
    lines = log[start:] if start >= 0 else log
    cleaned = [line.rstrip()[:1000] for line in lines if line.strip()]
    return cleaned[-limit:]


@dataclass
class ProvisionerService:
    """The ledger keeper and build driver."""

    ledger: Ledger
    builds: BuildStarter
    artifacts: Artifacts
    logs: BuildLogs
    publisher: EventPublisher
    slots: SerialSlot
    products: Callable[[str], Product]
    clock: Callable[[], datetime]
    report_refusal: Callable[[str, str, str], None] = lambda request_id, cause, reason: None
    """Told of every refused input (request id, cause, reason): the handler logs it."""
    count: Callable[[Metric], None] = lambda metric: None
    """Told of every outcome worth a metric, once it is recorded in the ledger."""

    # -- request events ----------------------------------------------------------

    def on_request(self, event: RequestEvent) -> Outcome:
        """Record a request event and start its build when the lifecycle says so."""
        data = event.data
        request = data.request
        entry = self.ledger.get(request.request_id)
        cause = f"{event.source}#{event.id}"
        resuming = entry is not None and entry.queued_by == cause
        decision = decide_request(
            entry.state if entry else None,
            _KINDS[type(event)],
            request.action,
            resuming=resuming,
            itsm_approved=request.approval is ApprovalState.APPROVED,
        )
        if isinstance(decision, Refusal):
            return self._refuse(request.request_id, f"{event.type} {event.id}", decision)
        if request.action is Action.DESTROY and entry is not None:
            request = destroying(entry.request, request)
        entry = self._record(entry, request, decision, f"{event.type} {event.id}", cause)
        if decision.build is None:
            return "recorded"
        return self._start(entry)

    def _record(
        self,
        entry: LedgerEntry | None,
        request: ProvisioningRequest,
        decision: Decision,
        cause: str,
        queued_by: str,
    ) -> LedgerEntry:
        now = self.clock()
        if (
            entry is not None
            and entry.state is State.QUEUED
            and decision.transitions == (State.QUEUED,)
            and entry.queued_by == queued_by
        ):
            return entry  # resuming: already recorded by the first attempt
        attempt = (entry.attempt if entry else 0) + (1 if decision.build else 0)
        after = (
            entry.advance(
                state=decision.final,
                action=request.action,
                attempt=attempt,
                request=request,
                updated_at=now,
                queued_by=queued_by if decision.build else entry.queued_by,
                build_id=None if decision.build else entry.build_id,
                sequence=entry.sequence + len(decision.transitions),
            )
            if entry
            else LedgerEntry(
                request_id=request.request_id,
                product=request.product,
                instance=str(request.instance or request.ticket),
                state=decision.final,
                version=1,
                action=request.action,
                attempt=attempt,
                request=request,
                updated_at=now,
                queued_by=queued_by if decision.build else None,
                sequence=len(decision.transitions),
            )
        )
        self.ledger.save(
            entry,
            after,
            self._transitions(request.request_id, entry, decision.transitions, now, cause),
        )
        return after

    def _transitions(
        self,
        request_id: str,
        entry: LedgerEntry | None,
        states: tuple[State, ...],
        at: datetime,
        cause: str,
        *,
        detail: dict[str, Any] | None = None,
    ) -> list[Transition]:
        previous = entry.state if entry else None
        sequence = entry.sequence if entry else 0
        steps = []
        for state in states:
            sequence += 1
            steps.append(Transition(request_id, sequence, previous, state, at, cause, detail or {}))
            previous = state
        return steps

    def _start(self, entry: LedgerEntry) -> Outcome:
        product = self.products(entry.product)
        if product.serial and not self.slots.acquire(product.name, entry.request_id):
            waiting = entry.advance(waiting_for_slot=True, updated_at=self.clock())
            self.ledger.save(entry, waiting, [])
            self.count(Metric.BUILDS_WAITING_FOR_SLOT)
            return "waiting"
        request = entry.request
        document = product.tfvars(request)
        build = BuildRequest(
            request=request,
            action=entry.action,
            attempt=entry.attempt,
            tfvars_uri=self.artifacts.put_tfvars(entry.request_id, entry.attempt, document),
            outputs_uri=self.artifacts.outputs_uri(entry.request_id, entry.attempt),
            state_key=product.state_key(request),
        )
        started = self.builds.start(build)
        self.publisher.publish(
            [
                build_event(
                    ProvisioningStarted(
                        request_id=entry.request_id,
                        ticket=request.ticket,
                        product=entry.product,
                        action=entry.action,
                        attempt=entry.attempt,
                        build_id=started.build_id,
                        log_url=started.log_url,
                    ),
                    event_id=self._event_id(entry, "started"),
                )
            ]
        )
        state = building_state(entry.action)
        now = self.clock()
        after = entry.advance(
            state=state,
            build_id=started.build_id,
            log_url=started.log_url,
            waiting_for_slot=False,
            updated_at=now,
            sequence=entry.sequence + 1,
        )
        transitions = self._transitions(
            entry.request_id,
            entry,
            (state,),
            now,
            f"build {started.build_id} started",
            detail={
                "build_id": started.build_id,
                "log_url": started.log_url,
                "attempt": entry.attempt,
            },
        )
        self.ledger.save(entry, after, transitions)
        self.count(Metric.BUILDS_STARTED)
        return "started"

    # -- build outcomes ----------------------------------------------------------

    def on_build_result(self, result: BuildResult) -> Outcome:
        """Record a build's terminal state, report it, and free a serial slot."""
        entry = self.ledger.get(result.request_id)
        decision = decide_build_outcome(
            entry.state if entry else None,
            entry.build_id if entry else None,
            result.build_id,
            result.status,
        )
        cause = f"build {result.build_id} {result.status}"
        if isinstance(decision, Refusal) or entry is None:
            reason = decision if isinstance(decision, Refusal) else Refusal("no entry")
            return self._refuse(result.request_id, cause, reason)
        request = entry.request
        common: dict[str, Any] = {
            "request_id": entry.request_id,
            "ticket": request.ticket,
            "product": entry.product,
            "action": entry.action,
            "attempt": entry.attempt,
            "build_id": result.build_id,
            "log_url": result.log_url or entry.log_url,
        }
        outputs: dict[str, Any] = {}
        if result.status == "SUCCEEDED":
            outputs = self.artifacts.get_outputs(entry.request_id, entry.attempt)
            data: ProvisioningSucceeded | ProvisioningFailed = ProvisioningSucceeded(
                **common,
                outputs=outputs,
                duration_seconds=result.duration_seconds,
            )
        else:
            tail = []
            if result.log_group and result.log_stream:
                tail = terraform_error_lines(
                    self.logs.tail(result.log_group, result.log_stream, 80)
                )
            data = ProvisioningFailed(
                **common,
                build_status=result.status,
                phase=result.failed_phase,
                reason=_failure_reason(result),
                error_tail=tail,
            )
        self.publisher.publish([build_event(data, event_id=self._event_id(entry, result.status))])
        now = self.clock()
        after = entry.advance(
            state=decision.final,
            outputs=outputs if result.status == "SUCCEEDED" else entry.outputs,
            updated_at=now,
            sequence=entry.sequence + 1,
        )
        detail = {"build_id": result.build_id, "status": result.status}
        if result.failed_phase:
            detail["phase"] = result.failed_phase
        self.ledger.save(
            entry,
            after,
            self._transitions(
                entry.request_id, entry, decision.transitions, now, cause, detail=detail
            ),
        )
        self.count(
            Metric.BUILDS_SUCCEEDED if result.status == "SUCCEEDED" else Metric.BUILDS_FAILED
        )
        self._release_slot(entry)
        return "recorded"

    def _release_slot(self, entry: LedgerEntry) -> None:
        product = self.products(entry.product)
        if not product.serial:
            return
        next_id = self.slots.release(product.name, entry.request_id)
        if next_id is not None:
            waiting = self.ledger.get(next_id)
            if waiting is not None and waiting.state is State.QUEUED:
                self._start(waiting)

    # -- helpers ---------------------------------------------------------------

    def _refuse(self, request_id: str, cause: str, refusal: Refusal) -> Outcome:
        self.report_refusal(request_id, cause, refusal.reason)
        self.count(Metric.TRANSITIONS_REFUSED)
        return "refused"

    @staticmethod
    def _event_id(entry: LedgerEntry, what: str) -> str:
        return str(uuid.uuid5(_EVENT_IDS, f"{entry.request_id}|{entry.attempt}|{what}"))


def _failure_reason(result: BuildResult) -> str:
    if result.status == "STOPPED":
        return "the build was stopped before Terraform finished"
    if result.status == "TIMED_OUT":
        return "the build timed out"
    if result.failed_phase:
        context = f": {result.phase_context}" if result.phase_context else ""
        return f"the {result.failed_phase} phase failed{context}"[:1000]
    return "the build failed"
