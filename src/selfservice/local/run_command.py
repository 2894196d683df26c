"""Run Command and State Manager associations, executed for embedded-EC2 instances.

moto records ``SendCommand`` but runs nothing, and knows no ``ListCommandInvocations``
or associations: :class:`LocalRunCommand` answers those actions and runs each command
for real (:mod:`.instance_shell`). Like SSM, an invocation becomes visible a moment
after ``SendCommand`` (``InvocationDoesNotExist`` meanwhile) and keeps 24,000
characters of output (2,500 in listings).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from selfservice.local.instance_shell import SHELL_DOCUMENTS, Invocation, run_on_instance

__all__ = ["LocalRunCommand", "SsmError"]

OUTPUT_LIMIT = 24_000
LISTING_OUTPUT_LIMIT = 2_500


class SsmError(Exception):
    """An SSM error response (``__type`` and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Association:
    association_id: str
    name: str
    instance_ids: list[str]
    parameters: dict[str, list[str]]
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    executions: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    """The association's own tags (``CreateAssociation``'s ``Tags``): what IAM's
    ``aws:ResourceTag`` sees when it is described or started."""


class LocalRunCommand:
    """The Run Command and association actions, executed for embedded-EC2 instances."""

    def __init__(
        self,
        ec2: Any,
        workdir: Path,
        *,
        region: str = "us-east-1",
        visibility_delay: float = 0.2,
        shell: str = "/bin/sh",
    ) -> None:
        self._ec2 = ec2
        self.workdir = workdir
        self.region = region
        self.visibility_delay = visibility_delay
        self.shell = shell
        self._lock = threading.Lock()
        self.commands: dict[str, dict[str, Any]] = {}
        self.invocations: dict[tuple[str, str], Invocation] = {}
        self.associations: dict[str, _Association] = {}

    def instance_tags(self, instance_id: str) -> dict[str, str]:
        """An instance's tags, as the embedded EC2 has them (none if it has no such one)."""
        described = self._ec2.describe_tags(
            Filters=[{"Name": "resource-id", "Values": [instance_id]}]
        )
        return {t["Key"]: t["Value"] for t in described.get("Tags", [])}

    # -- Run Command ------------------------------------------------------------------

    def send_command(self, request: dict[str, Any]) -> dict[str, Any]:
        """``SendCommand``: validate, record, start one sandboxed run per instance."""
        document = str(request.get("DocumentName", ""))
        if document not in SHELL_DOCUMENTS:
            raise SsmError(
                "InvalidDocument", f"the local runtime runs only {sorted(SHELL_DOCUMENTS)}"
            )
        instance_ids = list(request.get("InstanceIds") or [])
        if not instance_ids:
            raise SsmError("InvalidInstanceId", "InstanceIds is required locally")
        parameters = request.get("Parameters") or {}
        commands = [str(c) for c in parameters.get("commands", [])]
        if not commands:
            raise SsmError("InvalidParameters", "the commands parameter is required")
        timeout = int((parameters.get("executionTimeout") or ["3600"])[0])
        instances = self._instances(instance_ids)
        command_id = str(uuid.uuid4())
        now = time.monotonic()
        command = {
            "CommandId": command_id,
            "DocumentName": document,
            "Comment": request.get("Comment", ""),
            "InstanceIds": instance_ids,
            "Parameters": parameters,
            "RequestedDateTime": datetime.now(UTC).isoformat(),
            "Status": "Pending",
            "TargetCount": len(instance_ids),
        }
        with self._lock:
            self.commands[command_id] = command
            for instance_id in instance_ids:
                self.invocations[command_id, instance_id] = Invocation(
                    command_id, instance_id, document, now + self.visibility_delay
                )
        for instance_id in instance_ids:
            threading.Thread(
                target=self._run,
                args=(
                    self.invocations[command_id, instance_id],
                    commands,
                    timeout,
                    instances[instance_id],
                ),
                daemon=True,
            ).start()
        return {"Command": command}

    def get_command_invocation(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetCommandInvocation``."""
        key = (str(request.get("CommandId")), str(request.get("InstanceId")))
        invocation = self.invocations.get(key)
        if invocation is None or time.monotonic() < invocation.visible_at:
            raise SsmError("InvocationDoesNotExist", "no such command invocation (yet)")
        return invocation.view(OUTPUT_LIMIT)

    def list_command_invocations(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListCommandInvocations`` of one command (an unknown id lists nothing)."""
        command_id = str(request.get("CommandId", ""))
        details = bool(request.get("Details"))
        found = []
        for (listed, _), invocation in sorted(self.invocations.items()):
            if listed != command_id or time.monotonic() < invocation.visible_at:
                continue
            entry: dict[str, Any] = {
                "CommandId": command_id,
                "InstanceId": invocation.instance_id,
                "DocumentName": invocation.document,
                "Status": invocation.status,
                "StatusDetails": invocation.status,
            }
            if details:
                entry["CommandPlugins"] = [
                    {
                        "Name": "aws:runShellScript",
                        "Status": invocation.status,
                        "ResponseCode": invocation.response_code,
                        "Output": invocation.stdout[:LISTING_OUTPUT_LIMIT],
                    }
                ]
            found.append(entry)
        return {"CommandInvocations": found}

    # -- associations -------------------------------------------------------------------

    def create_association(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CreateAssociation`` with ``InstanceId`` or ``InstanceIds``/tag targets."""
        name = str(request.get("Name", ""))
        instance_ids = [request["InstanceId"]] if request.get("InstanceId") else []
        for target in request.get("Targets") or []:
            if target["Key"] == "InstanceIds":
                instance_ids.extend(target["Values"])
            elif target["Key"].startswith("tag:"):
                instance_ids.extend(self._tagged(target["Key"][4:], target["Values"]))
        association = _Association(
            str(uuid.uuid4()),
            name,
            instance_ids,
            dict(request.get("Parameters") or {}),
            tags={t["Key"]: t["Value"] for t in request.get("Tags") or []},
        )
        self.associations[association.association_id] = association
        return {"AssociationDescription": self._describe(association)}

    def describe_association(self, request: dict[str, Any]) -> dict[str, Any]:
        """``DescribeAssociation``."""
        return {"AssociationDescription": self._describe(self._association(request))}

    def list_associations(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListAssociations`` (filters ignored)."""
        del request
        return {
            "Associations": [
                {"AssociationId": a.association_id, "Name": a.name}
                for a in self.associations.values()
            ]
        }

    def start_associations_once(self, request: dict[str, Any]) -> dict[str, Any]:
        """``StartAssociationsOnce``: shell documents run on their targets; others are recorded."""
        ids = [str(i) for i in request.get("AssociationIds") or []]
        unknown = [i for i in ids if i not in self.associations]
        if unknown:
            raise SsmError(
                "AssociationDoesNotExist", f"unknown association(s): {', '.join(unknown)}"
            )
        for association_id in ids:
            association = self.associations[association_id]
            execution: dict[str, Any] = {
                "AssociationId": association_id,
                "ExecutionId": str(uuid.uuid4()),
                "CreatedTime": datetime.now(UTC).isoformat(),
                "Status": "Success",
                "DetailedStatus": "emulated",
            }
            if association.name in SHELL_DOCUMENTS and association.instance_ids:
                sent = self.send_command(
                    {
                        "DocumentName": association.name,
                        "InstanceIds": association.instance_ids,
                        "Parameters": association.parameters,
                    }
                )
                execution["DetailedStatus"] = f"run as command {sent['Command']['CommandId']}"
            association.executions.append(execution)
        return {}

    def describe_association_executions(self, request: dict[str, Any]) -> dict[str, Any]:
        """``DescribeAssociationExecutions``."""
        return {"AssociationExecutions": list(self._association(request).executions)}

    # -- internals ----------------------------------------------------------------------

    def _association(self, request: dict[str, Any]) -> _Association:
        association = self.associations.get(str(request.get("AssociationId", "")))
        if association is None:
            raise SsmError("AssociationDoesNotExist", "no such association")
        return association

    @staticmethod
    def _describe(association: _Association) -> dict[str, Any]:
        return {
            "AssociationId": association.association_id,
            "Name": association.name,
            "Targets": [{"Key": "InstanceIds", "Values": association.instance_ids}],
            "Parameters": association.parameters,
            "Date": association.created.isoformat(),
        }

    def _instances(self, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
        reservations = self._ec2.describe_instances(
            Filters=[{"Name": "instance-id", "Values": instance_ids}]
        )["Reservations"]
        known = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
        for instance_id in instance_ids:
            state = known.get(instance_id, {}).get("State", {}).get("Name")
            if state != "running":
                raise SsmError(
                    "InvalidInstanceId",
                    f"{instance_id} is not a running instance of the embedded EC2",
                )
        return known

    def _tagged(self, key: str, values: list[str]) -> list[str]:
        reservations = self._ec2.describe_instances(
            Filters=[{"Name": f"tag:{key}", "Values": values}]
        )["Reservations"]
        return [i["InstanceId"] for r in reservations for i in r["Instances"]]

    def _run(
        self, invocation: Invocation, commands: list[str], timeout: int, instance: dict[str, Any]
    ) -> None:
        outcome = run_on_instance(
            invocation,
            commands,
            timeout,
            instance,
            workdir=self.workdir,
            shell=self.shell,
            region=self.region,
        )
        self._finish(invocation, *outcome)

    def _finish(self, invocation: Invocation, status: str, code: int, out: str, err: str) -> None:
        invocation.stdout, invocation.stderr = out, err
        invocation.response_code = code
        invocation.ended = datetime.now(UTC)
        invocation.status = status
        with self._lock:
            command = self.commands[invocation.command_id]
            states = {
                i.status for (c, _), i in self.invocations.items() if c == invocation.command_id
            }
            if states <= {"Success", "Failed", "TimedOut", "Cancelled"}:
                command["Status"] = "Success" if states == {"Success"} else "Failed"
            else:
                command["Status"] = "InProgress"
