"""Run Command and State Manager for the embedded AWS, with commands that really run.

moto records ``SendCommand`` but runs nothing, and knows no ``ListCommandInvocations``
or associations. :class:`SsmEndpoint` stands in front of it on 127.0.0.1
(``AWS_ENDPOINT_URL_SSM`` points here): the Run Command and association actions are
answered by :class:`LocalRunCommand`, every other SSM action (parameters…) is passed
through to moto unchanged.

For each instance the embedded EC2 knows, a command runs as a shell script in a
per-instance sandbox: its own working directory, a scrubbed environment (no AWS
credentials, no caller variables; ``AWS_SSM_INSTANCE_ID`` and ``AWS_SSM_REGION_NAME``
as the SSM agent sets them), its own process group, and the document's
``executionTimeout`` (the group is killed and the invocation is ``TimedOut``). Like SSM,
an invocation becomes visible a moment after ``SendCommand`` (``InvocationDoesNotExist``
meanwhile) and keeps 24,000 characters of output (2,500 in listings).

The actions it serves itself are authorized as SSM authorizes them (``authorize``): the
caller's SigV4 signature, then its policies for the action on the document, on each
target instance (with ``ssm:resourceTag/<key>`` from the instance's tags) or on each
association; a refusal is SSM's ``AccessDeniedException``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selfservice.local.loopback import LoopbackServer, QuietHandler, forward

__all__ = ["Authorize", "LocalRunCommand", "SsmEndpoint", "SsmError"]

ACCOUNT = "123456789012"
Authorize = Callable[..., None]
"""``authorize(action, resources, headers, body, path, context=...)``: raises on refusal
(an exception with ``code`` and ``message``)."""

OUTPUT_LIMIT = 24_000
LISTING_OUTPUT_LIMIT = 2_500
SCRUBBED_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL_DOCUMENTS = {"AWS-RunShellScript": "linux", "AWS-RunPowerShellScript": "windows"}


class SsmError(Exception):
    """An SSM error response (``__type`` and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Invocation:
    command_id: str
    instance_id: str
    document: str
    visible_at: float
    status: str = "Pending"
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    started: datetime | None = None
    ended: datetime | None = None

    def view(self, limit: int) -> dict[str, Any]:
        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "DocumentName": self.document,
            "Status": self.status,
            "StatusDetails": self.status,
            "ResponseCode": self.response_code,
            "StandardOutputContent": self.stdout[:limit],
            "StandardErrorContent": self.stderr[:limit],
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "ExecutionStartDateTime": self.started.isoformat() if self.started else "",
            "ExecutionEndDateTime": self.ended.isoformat() if self.ended else "",
        }


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
        self.invocations: dict[tuple[str, str], _Invocation] = {}
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
                self.invocations[command_id, instance_id] = _Invocation(
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
        self, invocation: _Invocation, commands: list[str], timeout: int, instance: dict[str, Any]
    ) -> None:
        sandbox = self.workdir / "instances" / invocation.instance_id
        script_dir = sandbox / "commands" / invocation.command_id
        script_dir.mkdir(parents=True, exist_ok=True)
        invocation.started = datetime.now(UTC)
        invocation.status = "InProgress"
        if (
            SHELL_DOCUMENTS[invocation.document] == "windows"
            or instance.get("Platform") == "windows"
        ):
            pwsh = shutil.which("pwsh")
            if pwsh is None or SHELL_DOCUMENTS[invocation.document] != "windows":
                self._finish(
                    invocation,
                    "Failed",
                    1,
                    "",
                    "the local runtime cannot run this platform's document\n",
                )
                return
            argv = [pwsh, "-NoProfile", "-NonInteractive", "-File"]
            script = script_dir / "script.ps1"
        else:
            argv = [self.shell]
            script = script_dir / "script.sh"
        script.write_text("\n".join(commands) + "\n")
        environment = {
            "PATH": SCRUBBED_PATH,
            "HOME": str(sandbox),
            "LANG": "C.UTF-8",
            "AWS_SSM_INSTANCE_ID": invocation.instance_id,
            "AWS_SSM_REGION_NAME": self.region,
        }
        with subprocess.Popen(  # noqa: S603 - the script is the vetted document's commands
            [*argv, str(script)],
            cwd=sandbox,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
                self._finish(
                    invocation,
                    "TimedOut",
                    -1,
                    out.decode(errors="replace"),
                    err.decode(errors="replace"),
                )
                return
        status = "Success" if process.returncode == 0 else "Failed"
        self._finish(
            invocation,
            status,
            process.returncode,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )

    def _finish(self, invocation: _Invocation, status: str, code: int, out: str, err: str) -> None:
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


class SsmEndpoint(LoopbackServer):
    """SSM's JSON API on 127.0.0.1: Run Command and associations here, the rest to moto."""

    def __init__(
        self,
        run_command: LocalRunCommand,
        moto_endpoint: str,
        *,
        authorize: Authorize | None = None,
    ) -> None:
        self.run_command = run_command
        self.authorize = authorize
        upstream = urlsplit(moto_endpoint)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self._actions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "SendCommand": run_command.send_command,
            "GetCommandInvocation": run_command.get_command_invocation,
            "ListCommandInvocations": run_command.list_command_invocations,
            "CreateAssociation": run_command.create_association,
            "DescribeAssociation": run_command.describe_association,
            "ListAssociations": run_command.list_associations,
            "StartAssociationsOnce": run_command.start_associations_once,
            "DescribeAssociationExecutions": run_command.describe_association_executions,
        }
        super().__init__(self._handler())

    def _handler(self) -> type[QuietHandler]:
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib handler protocol
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                action = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                handler = endpoint._actions.get(action)
                if handler is None:
                    self._proxy(raw)
                    return
                try:
                    request = json.loads(raw or b"{}")
                    endpoint.check(action, request, dict(self.headers.items()), raw, self.path)
                    status, body = 200, handler(request)
                except SsmError as error:
                    status, body = 400, {"__type": error.code, "message": error.message}
                self.send_body(
                    status,
                    json.dumps(body, default=str).encode(),
                    {"Content-Type": "application/x-amz-json-1.1"},
                )

            def _proxy(self, raw: bytes) -> None:
                status, headers, body = forward(
                    endpoint._upstream, self.command, self.path, self.headers.items(), raw
                )
                self.send_body(status, body, headers)

        return Handler

    def check(
        self, action: str, request: dict[str, Any], headers: dict[str, str], raw: bytes, path: str
    ) -> None:
        """Authorize one call as SSM does; :class:`SsmError` (AccessDeniedException) if not."""
        if self.authorize is None:
            return
        for resources, context in self._checks(action, request):
            try:
                self.authorize(f"ssm:{action}", resources, headers, raw, path, context=context)
            except Exception as exc:
                raise SsmError(
                    str(getattr(exc, "code", "AccessDeniedException")),
                    str(getattr(exc, "message", exc)),
                ) from exc

    def _checks(
        self, action: str, request: dict[str, Any]
    ) -> list[tuple[list[str], dict[str, list[str]]]]:
        region = self.run_command.region
        if action in {"SendCommand", "CreateAssociation"}:
            name = str(request.get("DocumentName") or request.get("Name") or "")
            owner = "" if name.startswith("AWS-") else ACCOUNT  # AWS's documents: no account
            checks: list[tuple[list[str], dict[str, list[str]]]] = [
                ([f"arn:aws:ssm:{region}:{owner}:document/{name}"], {})
            ]
            instances = list(request.get("InstanceIds") or [])
            instances += [request["InstanceId"]] if request.get("InstanceId") else []
            for instance in instances:
                tags = self.run_command.instance_tags(str(instance))
                # Condition keys are case-insensitive (the tag key's spelling included).
                context = {f"ssm:resourcetag/{k}".lower(): [v] for k, v in tags.items()}
                context |= {f"aws:resourcetag/{k}".lower(): [v] for k, v in tags.items()}
                checks.append(([f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance}"], context))
            return checks
        if action in {"StartAssociationsOnce", "DescribeAssociation"}:
            ids = request.get("AssociationIds") or [request.get("AssociationId")]
            return [
                (
                    [f"arn:aws:ssm:{region}:{ACCOUNT}:association/{i}"],
                    self._association_tags(str(i)),
                )
                for i in ids
                if i
            ] or [(["*"], {})]
        return [(["*"], {})]

    def _association_tags(self, association_id: str) -> dict[str, list[str]]:
        known = self.run_command.associations.get(association_id)
        tags = known.tags if known else {}
        return {f"aws:resourcetag/{k}".lower(): [v] for k, v in tags.items()}
