"""The ops service: vet, target, send, wait, aggregate — and audit every call.

Every call ends in exactly one ``OpsCommandExecuted`` audit event, whatever its
outcome (refused, not found, timed out, failed, succeeded), carrying the caller's IAM
identity, the targets and the commands. The steps live beside this module:
:mod:`~ops_api.domain.vetting` (the allow-list), :mod:`~ops_api.domain.targeting`
(the allow tag), :mod:`~ops_api.domain.execution` (Run Command) and
:mod:`~ops_api.domain.audit`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ops_api.domain import execution, targeting
from ops_api.domain.audit import Audit, Operation, audited, publish_audit
from ops_api.domain.errors import (
    CommandNotAllowedError,
    InstanceNotEligibleError,
    NotFoundError,
    OpsError,
    Outcome,
    SsmFailureError,
    WaitTimeoutError,
)
from ops_api.domain.models import (
    Association,
    Invocation,
    InvocationResult,
    RunCommandsBody,
    StartAssociationBody,
)
from ops_api.domain.ports import (
    AssociationNotFoundError,
    CommandNotFoundError,
    Commands,
    Instances,
    SsmDeniedError,
    SsmUnavailableError,
)
from ops_api.domain.vetting import DOCUMENTS, refused_association, refused_commands
from ops_api.settings import OpsSettings
from selfservice_contracts.events import IamCaller, OpsCommandExecuted, OpsTargets
from selfservice_runtime.publisher import EventPublisher

__all__ = ["DOCUMENTS", "OpsService", "Reply", "refused_commands"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """A successful call: status and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass
class OpsService:
    """The ops API's domain logic, behind ports."""

    settings: OpsSettings
    instances: Instances
    commands: Commands
    publisher: EventPublisher
    allow_tag: tuple[str, str]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    on_audit_failure: Callable[[OpsCommandExecuted, Exception], None] = lambda record, exc: (
        logger.error("audit event not published: %s", record.model_dump_json(), exc_info=exc)
    )

    # -- the three operations ----------------------------------------------------

    def run_commands(self, body: RunCommandsBody, caller: IamCaller, *, time_left: float) -> Reply:
        """Run vetted commands on eligible instances and wait for their results."""
        commands = list(body.commands or self.settings.default_commands)
        audit = Audit(
            "run-commands",
            caller,
            OpsTargets(
                instance_ids=[body.instance_id] if body.instance_id else [],
                tags=dict(body.tags or {}),
            ),
            commands,
        )
        with self._audited(audit) as outcome:
            refused = refused_commands(self.settings, commands)
            if refused:
                raise CommandNotAllowedError(
                    f"{len(refused)} of {len(commands)} command(s) not allowed", refused=refused
                )
            targets = targeting.command_targets(
                body, self.instances, self.allow_tag, self.settings.max_targets
            )
            audit.targets = OpsTargets(
                instance_ids=[t.instance_id for t in targets], tags=dict(body.tags or {})
            )
            sent = execution.send(
                self.commands,
                self.settings,
                targets,
                lines=commands,
                comment=body.comment,
                audit=audit,
            )
            wait = execution.wait_budget(body.wait_seconds, self.settings, time_left)
            finished, pending = execution.wait(
                self.commands, self.settings, sent, wait, clock=self.clock, sleep=self.sleep
            )
            results = [self._result(i) for i in finished]
            if pending:
                raise WaitTimeoutError(
                    f"{len(pending)} instance(s) still running after {wait:.0f} s; "
                    "fetch the results later with GET /commands/{command_id}",
                    command_ids=sorted({command_id for command_id, _ in sent}),
                    pending=sorted(instance for _, instance in pending),
                    results=[r.model_dump() for r in results],
                )
            summary = Counter(r.status for r in results)
            outcome.append("succeeded" if set(summary) == {"Success"} else "failed")
            return Reply(
                200,
                {
                    "command_ids": sorted({command_id for command_id, _ in sent}),
                    "commands": commands,
                    "summary": dict(sorted(summary.items())),
                    "results": [r.model_dump() for r in results],
                },
            )
        raise AssertionError("unreachable")  # pragma: no cover - audited re-raises

    def get_command(self, command_id: str, caller: IamCaller) -> Reply:
        """Results (so far) of an earlier command, on the instances this API may target.

        Any command id in the account would otherwise be readable — another team's Run
        Command output included. Invocations on instances without the allow tag are
        left out, and a command with none left is answered like an unknown id (404), so
        the API is no oracle for what else runs in the account.
        """
        audit = Audit("get-command", caller, command_id=command_id)
        with self._audited(audit) as outcome:
            try:
                listed = targeting.eligible(
                    self.commands.invocations(command_id), self.instances, self.allow_tag
                )
            except CommandNotFoundError:
                raise NotFoundError(f"no command {command_id}") from None
            except SsmUnavailableError as exc:  # the adapters' "unavailable", SSM's or EC2's
                raise SsmFailureError(f"SSM or EC2 failed: {exc}") from None
            if not listed:
                raise NotFoundError(f"no command {command_id}")
            audit.targets = OpsTargets(instance_ids=[i.instance_id for i in listed])
            full = [execution.full_invocation(self.commands, invocation) for invocation in listed]
            results = [self._result(i) for i in full]
            complete = all(i.terminal for i in full)
            summary = Counter(r.status for r in results)
            outcome.append("succeeded")
            return Reply(
                200,
                {
                    "command_id": command_id,
                    "complete": complete,
                    "summary": dict(sorted(summary.items())),
                    "results": [r.model_dump() for r in results],
                },
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def start_association(self, body: StartAssociationBody, caller: IamCaller) -> Reply:
        """Apply State Manager associations once, now — when every one is vetted.

        ``StartAssociationsOnce`` runs an association with State Manager's own rights,
        so IAM cannot see its targets: each association's document and commands are
        checked against the allow-list and every instance it reaches (instance ids and
        tag targets, resolved now) must carry the allow tag. One refusal starts none.
        """
        ids = list(body.association_ids)
        audit = Audit("start-association", caller, association_ids=ids)
        with self._audited(audit) as outcome:
            associations = [self._association(association_id) for association_id in ids]
            audit.commands = [
                command[:4096]
                for association in associations
                for command in association.parameters.get("commands", [])
            ][:100]
            documents = sorted({a.document_name for a in associations})
            audit.document_name = ", ".join(documents)[:128] or None
            refused = [r for a in associations for r in refused_association(self.settings, a)]
            if refused:
                raise CommandNotAllowedError(
                    f"{len({r['association_id'] for r in refused})} of {len(ids)} association(s) "
                    "run what the allow-list does not allow; none was started",
                    refused=refused,
                )
            audit.targets = OpsTargets(
                instance_ids=targeting.reached(associations, self.instances, self.allow_tag)
            )
            key, value = self.allow_tag
            try:
                self.commands.start_associations_once(ids)
            except AssociationNotFoundError as exc:
                raise NotFoundError(f"unknown association: {exc}") from None
            except SsmDeniedError as exc:
                raise InstanceNotEligibleError(
                    f"refused by IAM: {exc} (an association must carry the tag {key}={value})"
                ) from None
            except SsmUnavailableError as exc:
                raise SsmFailureError(f"SSM refused or failed: {exc}") from None
            outcome.append("succeeded")
            return Reply(
                202,
                {
                    "association_ids": ids,
                    "status": "started",
                    "instance_ids": audit.targets.instance_ids,
                },
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def refuse(self, operation: Operation, caller: IamCaller, error: OpsError) -> None:
        """Audit a call refused before it reached the service (an invalid body)."""
        self._publish(Audit(operation, caller), error.outcome, error.status, error.message)

    # -- steps ---------------------------------------------------------------------

    def _association(self, association_id: str) -> Association:
        try:
            return self.commands.association(association_id)
        except AssociationNotFoundError:
            raise NotFoundError(f"unknown association: {association_id}") from None
        except SsmDeniedError as exc:
            raise InstanceNotEligibleError(f"refused by IAM: {exc}") from None
        except SsmUnavailableError as exc:
            raise SsmFailureError(f"SSM failed: {exc}") from None

    def _result(self, invocation: Invocation) -> InvocationResult:
        return InvocationResult.of(invocation, self.settings.output_limit)

    def _audited(self, audit: Audit) -> AbstractContextManager[list[Outcome]]:
        return audited(audit, self._publish)

    def _publish(self, audit: Audit, outcome: Outcome, status: int, detail: str | None) -> None:
        # Read at each call: the publisher and the failure report may be replaced.
        publish_audit(audit.record(outcome, status, detail), self.publisher, self.on_audit_failure)
