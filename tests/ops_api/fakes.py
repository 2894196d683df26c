"""Typed in-memory stand-ins for EC2 and SSM, and a clock that moves only when slept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ops_api.domain.models import Association, AssociationTarget, Instance, Invocation
from ops_api.domain.ports import (
    AssociationNotFoundError,
    CommandNotFoundError,
    InvocationNotReadyError,
)


@dataclass
class FakeClock:
    """``monotonic`` and ``sleep`` over a virtual time line."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeInstances:
    """EC2 with a fixed set of instances."""

    instances: dict[str, Instance] = field(default_factory=dict)

    def add(
        self,
        instance_id: str,
        *,
        tags: dict[str, str] | None = None,
        state: str = "running",
        platform: str = "linux",
    ) -> None:
        self.instances[instance_id] = Instance(
            instance_id,
            state,
            "windows" if platform == "windows" else "linux",
            {"SSMRunAllowed": "true"} if tags is None else tags,
        )

    def get(self, instance_ids: Sequence[str]) -> list[Instance]:
        return [self.instances[i] for i in instance_ids if i in self.instances]

    def find(self, tags: Mapping[str, str], *, limit: int) -> list[Instance]:
        found = [
            i
            for i in self.instances.values()
            if i.state == "running" and all(i.tags.get(k) == v for k, v in tags.items())
        ]
        return found[: limit + 1]

    def select(self, filters: Mapping[str, Sequence[str]], *, limit: int) -> list[Instance]:
        def matches(instance: Instance, name: str, values: Sequence[str]) -> bool:
            if name == "tag-key":
                return any(v in instance.tags for v in values)
            if name.startswith("tag:"):
                return instance.tags.get(name[4:]) in values
            raise AssertionError(f"the fake knows no filter {name}")

        found = [
            i
            for i in self.instances.values()
            if i.state != "terminated" and all(matches(i, n, v) for n, v in filters.items())
        ]
        return found[: limit + 1]


@dataclass
class FakeCommands:
    """Run Command whose invocations follow a script.

    Each instance answers ``not_ready`` polls with ``InvocationDoesNotExist``, then
    ``running`` polls with ``InProgress``, then its final state and output.
    """

    not_ready: int = 1
    running: int = 1
    final: dict[str, tuple[str, int, str, str]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    polls: dict[tuple[str, str], int] = field(default_factory=dict)
    associations: dict[str, Association] = field(default_factory=dict)
    started: list[list[str]] = field(default_factory=list)

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
        command_id = f"{len(self.sent):08d}-0000-4000-8000-000000000000"
        self.sent.append(
            {
                "command_id": command_id,
                "instance_ids": list(instance_ids),
                "document": document,
                "commands": list(commands),
                "execution_timeout": execution_timeout,
                "comment": comment,
                "output_s3_bucket": output_s3_bucket,
            }
        )
        return command_id

    def _instances_of(self, command_id: str) -> list[str]:
        for sent in self.sent:
            if sent["command_id"] == command_id:
                return list(sent["instance_ids"])
        raise CommandNotFoundError(command_id)

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        if instance_id not in self._instances_of(command_id):
            raise InvocationNotReadyError(command_id)
        count = self.polls[command_id, instance_id] = (
            self.polls.get((command_id, instance_id), 0) + 1
        )
        if count <= self.not_ready:
            raise InvocationNotReadyError(command_id)
        if count <= self.not_ready + self.running:
            return Invocation(command_id, instance_id, "InProgress")
        status, code, out, err = self.final.get(
            instance_id, ("Success", 0, f"ran on {instance_id}\n", "")
        )
        return Invocation(command_id, instance_id, status, code, out, err)

    def invocations(self, command_id: str) -> list[Invocation]:
        return [Invocation(command_id, i, "InProgress") for i in self._instances_of(command_id)]

    def add_association(
        self,
        association_id: str,
        *,
        document: str = "AWS-RunShellScript",
        commands: Sequence[str] = ("uptime",),
        instance_ids: Sequence[str] = (),
        tags: Mapping[str, Sequence[str]] | None = None,
        parameters: Mapping[str, Sequence[str]] | None = None,
        instance_id: str | None = None,
        elsewhere: bool = False,
    ) -> None:
        """An association as ``CreateAssociation`` would have recorded it."""
        targets = [AssociationTarget("InstanceIds", tuple(instance_ids))] if instance_ids else []
        targets += [AssociationTarget(k, tuple(v)) for k, v in (tags or {}).items()]
        self.associations[association_id] = Association(
            association_id=association_id,
            document_name=document,
            parameters={
                "commands": list(commands),
                **{k: list(v) for k, v in (parameters or {}).items()},
            },
            instance_id=instance_id,
            targets=tuple(targets),
            elsewhere=elsewhere,
        )

    def association(self, association_id: str) -> Association:
        if association_id not in self.associations:
            raise AssociationNotFoundError(association_id)
        return self.associations[association_id]

    def start_associations_once(self, association_ids: Sequence[str]) -> None:
        unknown = [a for a in association_ids if a not in self.associations]
        if unknown:
            raise AssociationNotFoundError(", ".join(unknown))
        self.started.append(list(association_ids))
