"""In-memory adapters with the provisioner's port interfaces (type-checked by mypy)."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from provisioner.domain.ledger import ConcurrentUpdateError, LedgerEntry, Transition, cost_scope
from provisioner.domain.lifecycle import BuildOutcome
from provisioner.domain.plan import PlanGuardrails, load_prices
from provisioner.domain.plan.build_review import (
    ApplyRecord,
    ReviewInput,
    ReviewRecord,
    review_build,
)
from provisioner.domain.ports import BuildRefused, BuildRequest, BuildResult, StartedBuild
from provisioner.domain.products import PRODUCTS_DIR, load_product
from provisioner.domain.service import ProvisionerService
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import (
    ApprovalRequired,
    ApprovalRequiredEvent,
    RequestApproved,
    RequestApprovedEvent,
    RequestReceived,
    RequestReceivedEvent,
)
from selfservice_contracts.request import (
    Action,
    ApprovalState,
    ProvisioningRequest,
    Requester,
    TicketRef,
    TicketSystem,
    derive_request_id,
)
from selfservice_runtime.publisher import InMemoryPublisher


class MemoryLedger:
    """Ledger port in memory, with the same conditional-write rule."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.steps: dict[str, list[Transition]] = {}

    def get(self, request_id: str) -> LedgerEntry | None:
        return self.entries.get(request_id)

    def save(
        self, before: LedgerEntry | None, after: LedgerEntry, transitions: list[Transition]
    ) -> None:
        if not after.request_id or any(step.request_id != after.request_id for step in transitions):
            raise ValueError("every history step must carry the entry's request id")
        current = self.entries.get(after.request_id)
        if (current is None) != (before is None) or (
            current is not None and before is not None and current.version != before.version
        ):
            raise ConcurrentUpdateError(after.request_id)
        self.entries[after.request_id] = after
        self.steps.setdefault(after.request_id, []).extend(transitions)

    def history(self, request_id: str) -> list[Transition]:
        return list(self.steps.get(request_id, []))


class MemorySlots:
    """Serial slots in memory."""

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}
        self.waiting: dict[str, list[str]] = {}

    def acquire(self, product: str, request_id: str) -> bool:
        holder = self.holders.setdefault(product, request_id)
        if holder == request_id:
            return True
        queue = self.waiting.setdefault(product, [])
        if request_id not in queue:
            queue.append(request_id)
        return False

    def release(self, product: str, request_id: str) -> str | None:
        if self.holders.get(product) != request_id:
            return None
        queue = self.waiting.get(product, [])
        if queue:
            self.holders[product] = queue.pop(0)
            return self.holders[product]
        del self.holders[product]
        return None


@dataclass
class FakeBuilds:
    """BuildStarter that records builds; the same (request, action, attempt) → same id."""

    started: list[BuildRequest] = field(default_factory=list)
    fail_next: int = 0
    ids: dict[tuple[str, str, int], str] = field(default_factory=dict)
    refuse_next: list[BuildRefused] = field(default_factory=list)
    """Refusals to raise, one per StartBuild, before any build is started."""
    refused: list[BuildRequest] = field(default_factory=list)

    def start(self, build: BuildRequest) -> StartedBuild:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("CodeBuild is throttling")
        if self.refuse_next:
            self.refused.append(build)
            raise self.refuse_next.pop(0)
        key = (build.request.request_id, build.action.value, build.attempt)
        if key not in self.ids:
            self.ids[key] = f"selfservice-provision:build-{len(self.ids) + 1}"
            self.started.append(build)
        return StartedBuild(self.ids[key], f"https://logs.example/{self.ids[key]}")


@dataclass
class FakeArtifacts:
    """Artifacts port in memory."""

    tfvars: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    review_inputs: dict[tuple[str, int], ReviewInput] = field(default_factory=dict)
    records: dict[tuple[str, int], ReviewRecord | ApplyRecord] = field(default_factory=dict)
    """What each attempt's review step recorded (none: a build that left no record)."""

    def put_tfvars(self, request_id: str, attempt: int, document: dict[str, Any]) -> str:
        uri = f"s3://artifacts/tfvars/{request_id}/{attempt}.tfvars.json"
        self.tfvars[uri] = copy.deepcopy(document)
        return uri

    def put_review_input(self, request_id: str, attempt: int, document: ReviewInput) -> None:
        self.review_inputs[(request_id, attempt)] = document

    def get_build_record(self, request_id: str, attempt: int) -> ReviewRecord | ApplyRecord | None:
        return self.records.get((request_id, attempt))

    def plan_uri(self, request_id: str, attempt: int) -> str:
        return f"s3://artifacts/plans/{request_id}/{attempt}/"

    def outputs_uri(self, request_id: str, attempt: int) -> str:
        return f"s3://artifacts/outputs/{request_id}/{attempt}.json"

    def get_outputs(self, request_id: str, attempt: int) -> dict[str, Any]:
        return self.outputs.get(self.outputs_uri(request_id, attempt), {})


@dataclass
class FakeCosts:
    """CommittedCost port: scope (``<environment>#<cost center>``) → request id → cost."""

    by_scope: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    asked: list[tuple[str | None, str | None, str]] = field(default_factory=list)

    def committed(
        self, environment: str | None, cost_center: str | None, *, excluding: str
    ) -> Decimal:
        self.asked.append((environment, cost_center, excluding))
        scope = self.by_scope.get(cost_scope(environment, cost_center), {})
        return sum((c for r, c in scope.items() if r != excluding), Decimal("0.00"))


@dataclass
class FakeLogs:
    """BuildLogs port returning a fixed log."""

    lines: list[str] = field(default_factory=list)

    def tail(self, group: str, stream: str, lines: int) -> list[str]:
        return self.lines[-lines:]


class Clock:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class World:
    """A service wired to fakes, and the fakes to inspect."""

    service: ProvisionerService
    ledger: MemoryLedger
    builds: FakeBuilds
    artifacts: FakeArtifacts
    logs: FakeLogs
    bus: InMemoryPublisher
    slots: MemorySlots
    refusals: list[str]
    costs: FakeCosts = field(default_factory=FakeCosts)


EXAMPLE_GUARDRAILS = PlanGuardrails.model_validate_json(
    (PRODUCTS_DIR.parents[2] / "config/provisioner.example.json").read_text()
)
"""What the local platform seeds the provisioner's configuration document with."""
RECORDED_PLANS = PRODUCTS_DIR.parents[2] / "tests/fixtures/plans"
MODULE_SHA256 = "e" * 64


def reviewed(w: World, plan: str = "ec2-app-create", module: str = MODULE_SHA256) -> ReviewRecord:
    """The review the current build's step makes of the recorded plan ``plan`` (real
    ``terraform show -json``), with the review input the service wrote for that attempt."""
    build = w.builds.started[-1]
    request_id, attempt = build.request.request_id, build.attempt
    return review_build(
        json.loads((RECORDED_PLANS / f"{plan}.json").read_text()),
        hashlib.sha256(f"{plan}|{attempt}".encode()).hexdigest(),
        module,
        load_product(build.request.product).plan,
        load_prices("us-east-1"),
        w.artifacts.review_inputs[(request_id, attempt)],
        request_id=request_id,
        attempt=attempt,
        plan_only=build.plan_only,
    )


def end_build(
    w: World, record: ReviewRecord | ApplyRecord | None, status: BuildOutcome = "SUCCEEDED"
) -> str:
    """The current build ends; its review step left ``record``."""
    build = w.builds.started[-1]
    request_id = build.request.request_id
    if record is not None:
        w.artifacts.records[(request_id, build.attempt)] = record
    return w.service.on_build_result(
        BuildResult(
            build_id=w.builds.ids[(request_id, build.action.value, build.attempt)],
            status=status,
            request_id=request_id,
            attempt=build.attempt,
        )
    )


def world() -> World:
    ledger, builds, artifacts, logs = MemoryLedger(), FakeBuilds(), FakeArtifacts(), FakeLogs()
    bus, slots, refusals = InMemoryPublisher(), MemorySlots(), []
    service = ProvisionerService(
        ledger=ledger,
        builds=builds,
        artifacts=artifacts,
        logs=logs,
        publisher=bus,
        slots=slots,
        products=load_product,
        clock=Clock(),
        report_refusal=lambda request_id, cause, reason: refusals.append(reason),
        costs=(costs := FakeCosts()),
        guardrails=lambda: EXAMPLE_GUARDRAILS,
    )
    return World(service, ledger, builds, artifacts, logs, bus, slots, refusals, costs)


SERVICENOW = TicketRef(
    system=TicketSystem.SERVICENOW,
    key="RITM0010042",
    internal_id="9d385017c611228701d22104cc95c371",
    url="https://acme.service-now.com/sc_req_item.do?sys_id=9d385017c611228701d22104cc95c371",
)


def request(
    *,
    product: str = "ec2-app",
    action: Action = Action.CREATE,
    ticket: TicketRef = SERVICENOW,
    approval: ApprovalState = ApprovalState.APPROVED,
    **parameters: Any,
) -> ProvisioningRequest:
    defaults: dict[str, Any] = (
        {
            "instance_type": "t3.micro",
            "environment": "dev",
            "desired_capacity": 1,
            "cost_center": "CC-1042",
            "region": "us-east-1",
            "expose_alb": False,
        }
        if product == "ec2-app"
        else {
            "account_name": f"acct-{ticket.key.lower()}",
            "account_email": f"aws+{ticket.key.lower()}@acme.example",
            "organizational_unit": "Workloads/NonProd",
            "environment": "staging",
            "cost_center": "CC-1042",
            "approvers": ["lena.kraus@acme.example"],
        }
    )
    merged = {**defaults, **parameters}
    return ProvisioningRequest(
        request_id=derive_request_id(ticket, product),
        ticket=ticket,
        product=product,
        action=action,
        parameters=merged,
        requester=Requester(id="ana.ruiz"),
        environment=merged["environment"],
        cost_center=merged["cost_center"],
        approval=approval,
        received_at=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
    )


def received(req: ProvisioningRequest, event_id: str = "e-received") -> RequestReceivedEvent:
    data = RequestReceived(request_id=req.request_id, ticket=req.ticket, request=req)
    event = build_event(data, event_id=event_id)
    assert isinstance(event, RequestReceivedEvent)
    return event


def approval_required(
    req: ProvisioningRequest, event_id: str = "e-approval"
) -> ApprovalRequiredEvent:
    data = ApprovalRequired(
        request_id=req.request_id, ticket=req.ticket, request=req, policy="prod"
    )
    event = build_event(data, event_id=event_id)
    assert isinstance(event, ApprovalRequiredEvent)
    return event


def approved(req: ProvisioningRequest, event_id: str = "e-approved") -> RequestApprovedEvent:
    data = RequestApproved(
        request_id=req.request_id,
        ticket=req.ticket,
        request=req,
        approved_at=datetime(2026, 11, 20, 9, 20, tzinfo=UTC),
    )
    event = build_event(data, event_id=event_id)
    assert isinstance(event, RequestApprovedEvent)
    return event
