"""The ops service: vet, target, send, wait, aggregate — and audit every call.

Every call ends in exactly one ``OpsCommandExecuted`` audit event, whatever its
outcome (refused, not found, timed out, failed, succeeded), carrying the caller's IAM
identity, the targets and the commands.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from ops_api.domain.errors import (
    CommandNotAllowedError,
    InstanceNotEligibleError,
    InvalidRequestError,
    NotFoundError,
    OpsError,
    Outcome,
    SsmFailureError,
    WaitTimeoutError,
)
from ops_api.domain.models import (
    Association,
    Instance,
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
    InvocationNotReadyError,
    SsmDeniedError,
    SsmUnavailableError,
    TargetNotManagedError,
)
from ops_api.settings import OpsSettings, shell_metacharacters
from selfservice_contracts.envelope import build_event
from selfservice_contracts.events import IamCaller, OpsCommandExecuted, OpsTargets
from selfservice_runtime.publisher import EventPublisher, PublishError

__all__ = ["DOCUMENTS", "OpsService", "Reply", "refused_commands"]

Operation = Literal["run-commands", "get-command", "start-association"]

DOCUMENTS = {"linux": "AWS-RunShellScript", "windows": "AWS-RunPowerShellScript"}
"""The only documents the API sends (the function's IAM policy allows no other)."""

ASSOCIATION_REACH_LIMIT = 1000
"""The most instances the associations of one call may reach (each is checked for the tag)."""

_SHELL_DOCUMENT_PARAMETERS = frozenset({"commands", "executionTimeout", "workingDirectory"})
"""The parameters of AWS-RunShellScript and AWS-RunPowerShellScript."""

SAFETY_MARGIN_SECONDS = 2.0
"""Time kept back from the Lambda deadline to answer 504 instead of being cut off."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """A successful call: status and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass
class _Audit:
    operation: Operation
    caller: IamCaller
    targets: OpsTargets = field(default_factory=OpsTargets)
    commands: list[str] = field(default_factory=list)
    document_name: str | None = None
    command_id: str | None = None
    association_ids: list[str] = field(default_factory=list)


def refused_commands(settings: OpsSettings, commands: Sequence[str]) -> list[dict[str, str]]:
    """Each command the allow-list refuses, with why (empty when all are allowed)."""
    refused = []
    for command in commands:
        entry = settings.entry_for(command)
        if entry is None:
            refused.append({"command": command, "reason": "not on the allow-list"})
            continue
        found = shell_metacharacters(command)
        if found and not entry.shell:
            shown = ", ".join(repr(c) for c in found)
            refused.append({"command": command, "reason": f"shell metacharacters: {shown}"})
    return refused


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
        audit = _Audit(
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
            targets = self._targets(body)
            audit.targets = OpsTargets(
                instance_ids=[t.instance_id for t in targets], tags=dict(body.tags or {})
            )
            sent = self._send(targets, commands, body.comment, audit)
            wait = min(body.wait_seconds or self.settings.wait_seconds, self.settings.wait_seconds)
            wait = max(0.0, min(wait, time_left - SAFETY_MARGIN_SECONDS))
            finished, pending = self._wait(sent, wait)
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
        raise AssertionError("unreachable")  # pragma: no cover - _audited re-raises

    def get_command(self, command_id: str, caller: IamCaller) -> Reply:
        """Results (so far) of an earlier command, on the instances this API may target.

        Any command id in the account would otherwise be readable — another team's Run
        Command output included. Invocations on instances without the allow tag are
        left out, and a command with none left is answered like an unknown id (404), so
        the API is no oracle for what else runs in the account.
        """
        audit = _Audit("get-command", caller, command_id=command_id)
        with self._audited(audit) as outcome:
            try:
                listed = self._eligible(self.commands.invocations(command_id))
            except CommandNotFoundError:
                raise NotFoundError(f"no command {command_id}") from None
            except SsmUnavailableError as exc:  # the adapters' "unavailable", SSM's or EC2's
                raise SsmFailureError(f"SSM or EC2 failed: {exc}") from None
            if not listed:
                raise NotFoundError(f"no command {command_id}")
            audit.targets = OpsTargets(instance_ids=[i.instance_id for i in listed])
            full = [self._full(invocation) for invocation in listed]
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
        audit = _Audit("start-association", caller, association_ids=ids)
        with self._audited(audit) as outcome:
            associations = [self._association(association_id) for association_id in ids]
            audit.commands = [
                command[:4096]
                for association in associations
                for command in association.parameters.get("commands", [])
            ][:100]
            documents = sorted({a.document_name for a in associations})
            audit.document_name = ", ".join(documents)[:128] or None
            refused = [r for a in associations for r in self._refused_association(a)]
            if refused:
                raise CommandNotAllowedError(
                    f"{len({r['association_id'] for r in refused})} of {len(ids)} association(s) "
                    "run what the allow-list does not allow; none was started",
                    refused=refused,
                )
            audit.targets = OpsTargets(instance_ids=self._reached(associations))
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
        self._publish(_Audit(operation, caller), error.outcome, error.status, error.message)

    # -- steps ---------------------------------------------------------------------

    def _targets(self, body: RunCommandsBody) -> list[Instance]:
        key, value = self.allow_tag
        try:
            if body.instance_id is not None:
                found = self.instances.get([body.instance_id])
                if not found:
                    raise NotFoundError(f"no instance {body.instance_id}")
                instance = found[0]
                if instance.tags.get(key) != value:
                    raise InstanceNotEligibleError(
                        f"{instance.instance_id} is not tagged {key}={value}"
                    )
                if instance.state != "running":
                    raise InstanceNotEligibleError(
                        f"{instance.instance_id} is {instance.state}, not running"
                    )
                return [instance]
            tags = dict(body.tags or {})
            if tags.get(key, value) != value:
                raise InstanceNotEligibleError(f"only instances tagged {key}={value} are eligible")
            limit = self.settings.max_targets
            found = self.instances.find({**tags, key: value}, limit=limit)
        except SsmUnavailableError as exc:
            raise SsmFailureError(f"EC2 failed: {exc}") from None
        if not found:
            raise NotFoundError(f"no running instance tagged {tags} and {key}={value}")
        if len(found) > limit:
            raise InvalidRequestError(
                f"the tags select more than {limit} instances; narrow them", max_targets=limit
            )
        return found

    def _association(self, association_id: str) -> Association:
        try:
            return self.commands.association(association_id)
        except AssociationNotFoundError:
            raise NotFoundError(f"unknown association: {association_id}") from None
        except SsmDeniedError as exc:
            raise InstanceNotEligibleError(f"refused by IAM: {exc}") from None
        except SsmUnavailableError as exc:
            raise SsmFailureError(f"SSM failed: {exc}") from None

    def _refused_association(self, association: Association) -> list[dict[str, str]]:
        """What in the association's document or parameters the API would not send itself."""
        association_id = association.association_id
        if association.document_name not in DOCUMENTS.values():
            allowed = ", ".join(DOCUMENTS.values())
            reason = f"document {association.document_name!r} is not one the API runs ({allowed})"
            return [{"association_id": association_id, "reason": reason}]
        refused = [
            {
                "association_id": association_id,
                "parameter": name,
                "reason": f"not a parameter of {association.document_name} the API vets",
            }
            for name in sorted(set(association.parameters) - _SHELL_DOCUMENT_PARAMETERS)
        ]
        for name, values in sorted(association.parameters.items()):
            if any("{{" in v for v in values):
                refused.append(
                    {
                        "association_id": association_id,
                        "parameter": name,
                        "reason": "a parameter reference ({{…}}) is resolved when the association "
                        "runs and cannot be vetted",
                    }
                )
        refused.extend(
            {"association_id": association_id, **entry}
            for entry in refused_commands(self.settings, association.parameters.get("commands", []))
        )
        for timeout in association.parameters.get("executionTimeout", []):
            limit = self.settings.execution_timeout_seconds
            if not timeout.isdigit() or int(timeout) > limit:
                refused.append(
                    {
                        "association_id": association_id,
                        "parameter": "executionTimeout",
                        "reason": f"{timeout!r} is not a number of seconds up to {limit}",
                    }
                )
        for directory in association.parameters.get("workingDirectory", []):
            if shell_metacharacters(directory):
                refused.append(
                    {
                        "association_id": association_id,
                        "parameter": "workingDirectory",
                        "reason": "shell metacharacters",
                    }
                )
        return refused

    def _reached(self, associations: Sequence[Association]) -> list[str]:
        """Every instance the associations reach, each carrying the allow tag (else 403)."""
        key, value = self.allow_tag
        limit = ASSOCIATION_REACH_LIMIT
        reached: set[str] = set()
        unknown: list[dict[str, str]] = []
        refused: list[dict[str, str]] = []
        try:
            for association in associations:
                named, selected = self._association_targets(association, limit)
                known = self.instances.get(sorted(named)) if named else []
                unknown.extend(
                    {"association_id": association.association_id, "instance_id": i}
                    for i in sorted(named - {k.instance_id for k in known})
                )
                for instance in [*known, *selected]:
                    if instance.tags.get(key) != value:
                        refused.append(
                            {
                                "association_id": association.association_id,
                                "instance_id": instance.instance_id,
                            }
                        )
                    reached.add(instance.instance_id)
                if len(reached) > limit:
                    raise InvalidRequestError(
                        f"the associations reach more than {limit} instances, more than the API "
                        "checks in one call; start fewer at once",
                        max_targets=limit,
                    )
        except SsmUnavailableError as exc:
            raise SsmFailureError(f"EC2 failed: {exc}") from None
        if unknown:
            raise InstanceNotEligibleError(
                f"{len(unknown)} target(s) are not EC2 instances whose {key} tag the API can "
                "check; none was started",
                instances=unknown,
            )
        if refused:
            raise InstanceNotEligibleError(
                f"{len(refused)} instance(s) reached are not tagged {key}={value}; "
                "none was started",
                instances=refused,
            )
        return sorted(reached)

    def _association_targets(
        self, association: Association, limit: int
    ) -> tuple[set[str], list[Instance]]:
        """What one association reaches now: instance ids it names, instances its tags select."""
        association_id = association.association_id
        if association.elsewhere:
            raise InstanceNotEligibleError(
                f"association {association_id} targets other accounts, regions or target "
                "maps, which the API cannot check"
            )
        named: set[str] = {association.instance_id} if association.instance_id else set()
        selected: list[Instance] = []
        for target in association.targets:
            if target.key == "InstanceIds":
                if "*" in target.values:
                    raise InstanceNotEligibleError(
                        f"association {association_id} targets every instance"
                    )
                named.update(target.values)
            elif target.key.startswith("tag:") or target.key == "tag-key":
                selected.extend(self.instances.select({target.key: target.values}, limit=limit))
            else:
                raise InstanceNotEligibleError(
                    f"association {association_id} targets {target.key}, which the API "
                    "cannot resolve to EC2 instances"
                )
        return named, selected

    def _eligible(self, listed: list[Invocation]) -> list[Invocation]:
        """The invocations on instances carrying the allow tag (whatever their state)."""
        key, value = self.allow_tag
        tagged = {
            i.instance_id
            for i in self.instances.get([i.instance_id for i in listed])
            if i.tags.get(key) == value
        }
        return [i for i in listed if i.instance_id in tagged]

    def _send(
        self, targets: Sequence[Instance], commands: list[str], comment: str, audit: _Audit
    ) -> list[tuple[str, str]]:
        sent: list[tuple[str, str]] = []
        for platform in ("linux", "windows"):
            group = [t.instance_id for t in targets if t.platform == platform]
            if not group:
                continue
            document = DOCUMENTS[platform]
            try:
                command_id = self.commands.send(
                    group,
                    document=document,
                    commands=commands,
                    execution_timeout=self.settings.execution_timeout_seconds,
                    comment=comment or f"selfservice ops: {audit.caller.user_arn}"[:100],
                    output_s3_bucket=self.settings.output_s3_bucket,
                    output_s3_prefix=self.settings.output_s3_prefix,
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

    def _wait(
        self, sent: list[tuple[str, str]], wait: float
    ) -> tuple[list[Invocation], list[tuple[str, str]]]:
        """Poll with exponential backoff until every invocation ends or ``wait`` passes."""
        deadline = self.clock() + wait
        delay = self.settings.poll_initial_seconds
        pending = list(sent)
        finished: dict[tuple[str, str], Invocation] = {}
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            self.sleep(min(delay, remaining))
            delay = min(delay * 2, self.settings.poll_max_seconds)
            for key in list(pending):
                try:
                    invocation = self.commands.invocation(*key)
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

    def _full(self, listed: Invocation) -> Invocation:
        """The invocation with SSM's full output (the listing keeps 2,500 characters)."""
        try:
            return self.commands.invocation(listed.command_id, listed.instance_id)
        except InvocationNotReadyError:
            return listed
        except SsmUnavailableError as exc:
            raise SsmFailureError(f"SSM failed: {exc}") from None

    def _result(self, invocation: Invocation) -> InvocationResult:
        return InvocationResult.of(invocation, self.settings.output_limit)

    # -- audit -----------------------------------------------------------------------

    @contextmanager
    def _audited(self, audit: _Audit) -> Iterator[list[Outcome]]:
        outcome: list[Outcome] = []
        try:
            yield outcome
        except OpsError as exc:
            self._publish(audit, exc.outcome, exc.status, exc.message)
            raise
        except Exception as exc:
            self._publish(audit, "failed", 500, f"unexpected {type(exc).__name__}")
            raise
        status = 202 if audit.operation == "start-association" else 200
        self._publish(audit, outcome[0] if outcome else "succeeded", status, None)

    def _publish(self, audit: _Audit, outcome: Outcome, status: int, detail: str | None) -> None:
        record = OpsCommandExecuted(
            operation=audit.operation,
            caller=audit.caller,
            targets=audit.targets,
            commands=audit.commands,
            document_name=audit.document_name,
            command_id=audit.command_id,
            association_ids=audit.association_ids,
            outcome=outcome,
            status_code=status,
            detail=detail[:1000] if detail else None,
        )
        try:
            self.publisher.publish([build_event(record)])
        except PublishError as exc:
            self.on_audit_failure(record, exc)
