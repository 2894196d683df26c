"""What the provisioner needs from the world outside its domain, as interfaces.

The adapters (``provisioner.adapters``, ``selfservice_runtime``) implement them; tests
use in-memory fakes of the same shape (``tests/provisioner/fakes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from provisioner.domain.ledger import LedgerEntry, Transition
from provisioner.domain.lifecycle import BuildOutcome
from provisioner.domain.plan.build_review import ApplyRecord, ReviewInput, ReviewRecord
from selfservice_contracts.request import Action, ProvisioningRequest
from selfservice_runtime.publisher import EventPublisher

__all__ = [
    "ApprovedPlan",
    "Artifacts",
    "BuildLogs",
    "BuildRefused",
    "BuildRequest",
    "BuildResult",
    "BuildStarter",
    "CommittedCost",
    "EventPublisher",
    "Ledger",
    "SerialSlot",
    "StartedBuild",
]


@dataclass(frozen=True)
class ApprovedPlan:
    """The saved plan an approved build applies, and nothing else."""

    uri: str
    """``s3://<bucket>/plans/<request>/<attempt>/``: where its ``tfplan`` is."""
    sha256: str
    module_sha256: str
    """The product module it was made from (the build applies it only with that one)."""


@dataclass(frozen=True)
class BuildRequest:
    """Everything a build needs; only non-secret identifiers go to the environment."""

    request: ProvisioningRequest
    action: Action
    attempt: int
    tfvars_uri: str
    outputs_uri: str
    state_key: str
    plan_only: bool = False
    """Plan, review and stop: the plan waits for an approval (``PLAN_ONLY=true``)."""
    approved_plan: ApprovedPlan | None = None
    """Apply this approved plan instead of planning (``APPROVED_PLAN_*``)."""


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


class BuildRefused(Exception):  # noqa: N818 - a refusal, not a bug: the ticket is told
    """CodeBuild refused StartBuild for good (access denied, no such project, invalid
    input): retrying the same call cannot succeed. Transient errors are not this."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BuildStarter(Protocol):
    """Starts the Terraform build (CodeBuild StartBuild)."""

    def start(self, build: BuildRequest) -> StartedBuild:
        """Start (or, for a retried token, find again) the build; :class:`BuildRefused`
        when CodeBuild refuses it for good."""
        ...


class Artifacts(Protocol):
    """The tfvars and review input in; the Terraform outputs and the review out (S3)."""

    def put_tfvars(self, request_id: str, attempt: int, document: dict[str, Any]) -> str:
        """Store the variables of one attempt; returns their URI."""
        ...

    def put_review_input(self, request_id: str, attempt: int, document: ReviewInput) -> None:
        """Store what the attempt's review step reviews the plan with."""
        ...

    def get_build_record(self, request_id: str, attempt: int) -> ReviewRecord | ApplyRecord | None:
        """What the attempt's review step recorded (None: nothing)."""
        ...

    def plan_uri(self, request_id: str, attempt: int) -> str:
        """``s3://…/plans/<request>/<attempt>/``: where the attempt keeps its plan."""
        ...

    def outputs_uri(self, request_id: str, attempt: int) -> str:
        """Where the build writes ``terraform output -json``."""
        ...

    def get_outputs(self, request_id: str, attempt: int) -> dict[str, Any]:
        """The outputs an attempt wrote ({} if none)."""
        ...


class CommittedCost(Protocol):
    """What a cost center already runs in an environment (the ledger's cost index)."""

    def committed(
        self, environment: str | None, cost_center: str | None, *, excluding: str
    ) -> Decimal:
        """The monthly cost of the scope's live instances, but ``excluding`` (a request id)."""
        ...


class BuildLogs(Protocol):
    """The end of a build's log, for the failure report."""

    def tail(self, group: str, stream: str, lines: int) -> list[str]:
        """The last ``lines`` lines of the log stream."""
        ...


class Ledger(Protocol):
    """Where entries and their history live."""

    def get(self, request_id: str) -> LedgerEntry | None:
        """The entry, or None if the request was never seen."""
        ...

    def save(
        self, before: LedgerEntry | None, after: LedgerEntry, transitions: list[Transition]
    ) -> None:
        """Write ``after`` and its history iff the entry is still ``before``
        (:class:`~provisioner.domain.ledger.ConcurrentUpdateError` otherwise)."""
        ...

    def history(self, request_id: str) -> list[Transition]:
        """Every transition, oldest first."""
        ...


class SerialSlot(Protocol):
    """One-at-a-time builds for products that require it (AWS Organizations accounts)."""

    def acquire(self, product: str, request_id: str) -> bool:
        """Take the slot (or confirm we hold it); False queues the request behind it."""
        ...

    def release(self, product: str, request_id: str) -> str | None:
        """Free the slot; returns the next waiting request id (now holding it), if any."""
        ...
