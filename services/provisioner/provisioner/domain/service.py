"""The provisioner: request events and build outcomes in, guarded ledger writes and
lifecycle events out.

Ordering is chosen so that a failure at any step is retried without loss or
duplication: a build is started with an idempotency token derived from the request,
action and attempt (a retry gets the same build), lifecycle events carry ids derived
from the same facts (consumers deduplicate a republish), and the ledger is written
last with a condition on the version it was read at.

A StartBuild that CodeBuild refuses for good (:class:`BuildRefused`: access denied, no
such project, invalid input) is not retried: the request moves ``queued → failed``, the
ticket is told (``provisioning.failed``, ``NOT_STARTED``, AWS's error as the reason) and
a serial product's slot goes to the next request. Any other error propagates, so the
queue retries the record and the retry resumes the same build.

Every build reviews its own plan with the review input written here; a request needing
an approval is planned at once and its approval applies exactly the held plan
(:mod:`provisioner.domain.reviews`: what a build's review record becomes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from provisioner.domain.ledger import LedgerEntry, transitions
from provisioner.domain.lifecycle import (
    Decision,
    Refusal,
    State,
    building_state,
    decide_build_outcome,
    decide_request,
    decide_start_refused,
)
from provisioner.domain.outcomes import (
    LOG_TAIL_LINES,
    NOT_STARTED,
    event_id,
    not_acted_on_data,
    not_started_data,
    not_started_detail,
    outcome_detail,
    refusal_event_id,
)
from provisioner.domain.ports import (
    Artifacts,
    BuildLogs,
    BuildRefused,
    BuildRequest,
    BuildResult,
    BuildStarter,
    CommittedCost,
    Ledger,
    SerialSlot,
)
from provisioner.domain.products import Product
from provisioner.domain.requests import REQUEST_KINDS, RequestEvent, destroying
from provisioner.domain.reviews import (
    approved_plan,
    build_end,
    build_verdict,
    held_attempt,
    no_committed_cost,
    review_input,
)
from provisioner.settings import PlanGuardrails
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import ProvisioningStarted
from selfservice_contracts.request import Action, ApprovalState, ProvisioningRequest
from selfservice_runtime.observability import Metric
from selfservice_runtime.publisher import EventPublisher

__all__ = ["Outcome", "ProvisionerService", "RequestEvent", "destroying"]

Outcome = Literal["queued", "started", "waiting", "recorded", "refused", "not_started"]


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
    report_not_started: Callable[[str, BuildRefused], None] = lambda request_id, refused: None
    """Told of every build CodeBuild refused to start (request id, the refusal)."""
    costs: CommittedCost | None = None
    """What a cost center already runs (None: nothing is counted)."""
    guardrails: Callable[[], PlanGuardrails] = PlanGuardrails
    """The current plan guardrails (the configuration document)."""

    # -- request events ----------------------------------------------------------

    def on_request(self, event: RequestEvent) -> Outcome:
        """Record a request event and start its build when the lifecycle says so."""
        data = event.data
        request = data.request
        entry = self.ledger.get(request.request_id)
        cause = f"{event.source}#{event.id}"
        resuming = entry is not None and entry.queued_by == cause
        held = entry.held_plan if entry else None
        decision = decide_request(
            entry.state if entry else None,
            REQUEST_KINDS[type(event)],
            request.action,
            resuming=resuming,
            itsm_approved=request.approval is ApprovalState.APPROVED,
            held_sha256=held.sha256 if held else None,
            approved_sha256=getattr(data, "plan_sha256", None),
            instance_built=entry is not None and entry.action is not Action.CREATE,
            current_action=entry.action if entry else None,
        )
        if isinstance(decision, Refusal):
            if decision.told:  # the ticket asked for what cannot be done now: say why
                told = not_acted_on_data(request, entry, decision.reason)
                self.publisher.publish([build_event(told, event_id=refusal_event_id(cause))])
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
        planning: dict[str, Any] = {
            "plan_only": decision.plan_only,
            "apply_held": decision.apply_held,
            "replan_because": decision.replan_because,
        }
        held = entry.held_plan if entry else None
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
                held_plan=held if decision.apply_held or not decision.build else None,
                **planning,
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
                **planning,
            )
        )
        steps = transitions(entry, request.request_id, decision.transitions, now, cause)
        if decision.apply_held and held:  # the approval is of a plan: its hash goes with it
            steps = [replace(t, detail={"plan_sha256": held.sha256}) for t in steps]
        self.ledger.save(entry, after, steps)
        return after

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
            plan_only=entry.plan_only,
            approved_plan=approved_plan(
                entry, self.artifacts.plan_uri(entry.request_id, held_attempt(entry))
            ),
        )
        if build.approved_plan is None:  # it plans: its review step needs the input
            committed = self.costs.committed if self.costs else no_committed_cost
            reviewing = review_input(
                request,
                approval_required=entry.plan_only,
                committed=committed(
                    request.environment, request.cost_center, excluding=entry.request_id
                ),
                guardrails=self.guardrails(),
            )
            self.artifacts.put_review_input(entry.request_id, entry.attempt, reviewing)
        try:
            started = self.builds.start(build)
        except BuildRefused as refused:
            return self._not_started(entry, product, refused)
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
                        approved_plan_sha256=(
                            build.approved_plan.sha256 if build.approved_plan else None
                        ),
                        plan_only=build.plan_only,
                    ),
                    event_id=event_id(entry, "started"),
                )
            ]
        )
        state = State.PLANNING if entry.plan_only else building_state(entry.action)
        now = self.clock()
        after = entry.advance(
            state=state,
            build_id=started.build_id,
            log_url=started.log_url,
            waiting_for_slot=False,
            updated_at=now,
            sequence=entry.sequence + 1,
        )
        steps = transitions(
            entry,
            entry.request_id,
            (state,),
            now,
            f"build {started.build_id} started",
            detail={
                "build_id": started.build_id,
                "log_url": started.log_url,
                "attempt": entry.attempt,
            },
        )
        self.ledger.save(entry, after, steps)
        self.count(Metric.BUILDS_STARTED)
        return "started"

    def _not_started(self, entry: LedgerEntry, product: Product, refused: BuildRefused) -> Outcome:
        """CodeBuild refused the build for good: the ticket is told, the slot freed."""
        decision = decide_start_refused(entry.state)
        cause = f"StartBuild refused: {refused.code}"
        if isinstance(decision, Refusal):
            return self._refuse(entry.request_id, cause, decision)
        self.report_not_started(entry.request_id, refused)
        data = not_started_data(entry, refused)
        self.publisher.publish([build_event(data, event_id=event_id(entry, NOT_STARTED))])
        now = self.clock()
        after = entry.advance(
            state=decision.final,
            waiting_for_slot=False,
            updated_at=now,
            sequence=entry.sequence + 1,
        )
        detail = not_started_detail(refused)
        steps = transitions(
            entry, entry.request_id, decision.transitions, now, cause, detail=detail
        )
        self.ledger.save(entry, after, steps)
        self.count(Metric.BUILDS_FAILED)
        if product.serial:
            self._release_slot(entry)
        return "not_started"

    # -- build outcomes ----------------------------------------------------------

    def on_build_result(self, result: BuildResult) -> Outcome:
        """Record a build's terminal state as its review says, report it, free a slot."""
        entry = self.ledger.get(result.request_id)
        if entry and entry.state is State.QUEUED and entry.queued_by == f"build#{result.build_id}":
            return self._start(entry)  # its re-plan is queued: a retry resumes its start
        succeeded = result.status == "SUCCEEDED"
        # A failed build's too: one that reviewed its plan shows it before the failure.
        record = (
            self.artifacts.get_build_record(entry.request_id, entry.attempt)
            if entry and entry.build_id == result.build_id
            else None
        )
        decision = decide_build_outcome(
            entry.state if entry else None,
            entry.build_id if entry else None,
            result.build_id,
            result.status,
            build_verdict(record),
            action=entry.action if entry else Action.CREATE,
            stale_because=getattr(record, "stale_because", None),
        )
        cause = f"build {result.build_id} {result.status}"
        if isinstance(decision, Refusal) or entry is None:
            reason = decision if isinstance(decision, Refusal) else Refusal("no entry")
            return self._refuse(result.request_id, cause, reason)
        outputs = self.artifacts.get_outputs(entry.request_id, entry.attempt) if succeeded else {}
        tail = (
            self.logs.tail(result.log_group, result.log_stream, LOG_TAIL_LINES)
            if not succeeded and result.log_group and result.log_stream
            else []
        )
        end = build_end(
            entry,
            result,
            decision,
            record,
            outputs=outputs,
            log_tail=tail,
            plan_uri=self.artifacts.plan_uri(entry.request_id, entry.attempt),
        )
        self.publisher.publish(
            [build_event(data, event_id=event_id(entry, what)) for what, data in end.events]
        )
        now = self.clock()
        after = entry.advance(
            state=decision.final,
            updated_at=now,
            sequence=entry.sequence + len(decision.transitions),
            **end.changes,
        )
        steps = transitions(
            entry, entry.request_id, decision.transitions, now, cause, detail=outcome_detail(result)
        )
        self.ledger.save(entry, after, steps)
        self.count(Metric.BUILDS_SUCCEEDED if succeeded else Metric.BUILDS_FAILED)
        if decision.build is not None:  # a stale approved plan: plan it again
            return self._start(after)
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
