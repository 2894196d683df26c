"""EC2 and SSM behind the ops service's ports (boto3; errors translated at this edge)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ops_api.domain.models import Association, AssociationTarget, Instance, Invocation
from ops_api.domain.ports import (
    AssociationNotFoundError,
    CommandNotFoundError,
    InvocationNotReadyError,
    SsmDeniedError,
    SsmUnavailableError,
    TargetNotManagedError,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_ssm.client import SSMClient

__all__ = ["Ec2Instances", "SsmCommands"]

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_NOT_TERMINATED = ("pending", "running", "stopping", "stopped")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or _code(exc)


class Ec2Instances:
    """``DescribeInstances`` by id and by tags."""

    def __init__(self, client: EC2Client) -> None:
        self._client = client

    def get(self, instance_ids: Sequence[str]) -> list[Instance]:
        """The instances that exist among ``instance_ids``."""
        try:
            return self._describe(
                {"Filters": [{"Name": "instance-id", "Values": list(instance_ids)}]}, None
            )
        except (ClientError, BotoCoreError) as exc:
            raise SsmUnavailableError(str(exc)) from exc

    def find(self, tags: Mapping[str, str], *, limit: int) -> list[Instance]:
        """Running instances carrying every tag (stops after ``limit`` + 1)."""
        filters: list[Any] = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        filters.append({"Name": "instance-state-name", "Values": ["running"]})
        try:
            return self._describe({"Filters": filters}, limit + 1)
        except (ClientError, BotoCoreError) as exc:
            raise SsmUnavailableError(str(exc)) from exc

    def select(self, filters: Mapping[str, Sequence[str]], *, limit: int) -> list[Instance]:
        """Instances not terminated matching every filter (stops after ``limit`` + 1)."""
        request: list[Any] = [{"Name": k, "Values": list(v)} for k, v in filters.items()]
        request.append({"Name": "instance-state-name", "Values": list(_NOT_TERMINATED)})
        try:
            return self._describe({"Filters": request}, limit + 1)
        except (ClientError, BotoCoreError) as exc:
            raise SsmUnavailableError(str(exc)) from exc

    def _describe(self, request: dict[str, Any], limit: int | None) -> list[Instance]:
        found: list[Instance] = []
        for page in self._client.get_paginator("describe_instances").paginate(**request):
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    platform: Literal["linux", "windows"] = (
                        "windows" if raw.get("Platform") == "windows" else "linux"
                    )
                    found.append(
                        Instance(
                            instance_id=raw["InstanceId"],
                            state=raw.get("State", {}).get("Name", "unknown"),
                            platform=platform,
                            tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
                        )
                    )
                    if limit is not None and len(found) >= limit:
                        return found
        return found


class SsmCommands:
    """Run Command and State Manager."""

    def __init__(self, client: SSMClient) -> None:
        self._client = client

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
        """``SendCommand``; the command id."""
        request: dict[str, Any] = {
            "InstanceIds": list(instance_ids),
            "DocumentName": document,
            "Parameters": {
                "commands": list(commands),
                "executionTimeout": [str(execution_timeout)],
            },
            "Comment": comment,
        }
        if output_s3_bucket:
            request["OutputS3BucketName"] = output_s3_bucket
            request["OutputS3KeyPrefix"] = output_s3_prefix
        try:
            response = self._client.send_command(**request)
        except ClientError as exc:
            code = _code(exc)
            if code in {"InvalidInstanceId", "InvalidTarget"}:
                raise TargetNotManagedError(_message(exc)) from exc
            if code in _DENIED:
                raise SsmDeniedError(_message(exc)) from exc
            raise SsmUnavailableError(f"{code}: {_message(exc)}") from exc
        except BotoCoreError as exc:
            raise SsmUnavailableError(str(exc)) from exc
        return str(response["Command"]["CommandId"])

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        """``GetCommandInvocation`` (full output, up to SSM's 24,000 characters)."""
        try:
            raw = self._client.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as exc:
            if _code(exc) == "InvocationDoesNotExist":
                raise InvocationNotReadyError(command_id) from exc
            raise SsmUnavailableError(f"{_code(exc)}: {_message(exc)}") from exc
        except BotoCoreError as exc:
            raise SsmUnavailableError(str(exc)) from exc
        return Invocation(
            command_id=command_id,
            instance_id=instance_id,
            status=str(raw.get("Status", "Pending")),
            response_code=int(raw.get("ResponseCode", -1)),
            stdout=str(raw.get("StandardOutputContent", "")),
            stderr=str(raw.get("StandardErrorContent", "")),
            stdout_url=str(raw.get("StandardOutputUrl", "")),
            stderr_url=str(raw.get("StandardErrorUrl", "")),
        )

    def invocations(self, command_id: str) -> list[Invocation]:
        """``ListCommandInvocations``: every instance of the command."""
        found: list[Invocation] = []
        try:
            paginator = self._client.get_paginator("list_command_invocations")
            for page in paginator.paginate(CommandId=command_id, Details=False):
                found.extend(
                    Invocation(
                        command_id=command_id,
                        instance_id=raw["InstanceId"],
                        status=str(raw.get("Status", "Pending")),
                    )
                    for raw in page.get("CommandInvocations", [])
                )
        except ClientError as exc:
            if _code(exc) in {"InvalidCommandId", "ValidationException"}:
                raise CommandNotFoundError(command_id) from exc
            raise SsmUnavailableError(f"{_code(exc)}: {_message(exc)}") from exc
        except BotoCoreError as exc:
            raise SsmUnavailableError(str(exc)) from exc
        if not found:
            # SSM answers an unknown id with an empty listing rather than an error.
            raise CommandNotFoundError(command_id)
        return found

    def association(self, association_id: str) -> Association:
        """``DescribeAssociation`` (latest version)."""
        try:
            raw = self._client.describe_association(AssociationId=association_id)
        except ClientError as exc:
            code = _code(exc)
            if code in {"AssociationDoesNotExist", "InvalidAssociation"}:
                raise AssociationNotFoundError(association_id) from exc
            if code in _DENIED:
                raise SsmDeniedError(_message(exc)) from exc
            raise SsmUnavailableError(f"{code}: {_message(exc)}") from exc
        except BotoCoreError as exc:
            raise SsmUnavailableError(str(exc)) from exc
        description = raw["AssociationDescription"]
        return Association(
            association_id=association_id,
            document_name=str(description.get("Name", "")),
            parameters={
                str(k): [str(v) for v in values]
                for k, values in (description.get("Parameters") or {}).items()
            },
            instance_id=description.get("InstanceId") or None,
            targets=tuple(
                AssociationTarget(str(t.get("Key", "")), tuple(str(v) for v in t.get("Values", [])))
                for t in description.get("Targets") or []
            ),
            elsewhere=bool(description.get("TargetLocations") or description.get("TargetMaps")),
        )

    def start_associations_once(self, association_ids: Sequence[str]) -> None:
        """``StartAssociationsOnce``."""
        try:
            self._client.start_associations_once(AssociationIds=list(association_ids))
        except ClientError as exc:
            code = _code(exc)
            if code in {"AssociationDoesNotExist", "InvalidAssociation"}:
                raise AssociationNotFoundError(_message(exc)) from exc
            if code in _DENIED:
                raise SsmDeniedError(_message(exc)) from exc
            raise SsmUnavailableError(f"{code}: {_message(exc)}") from exc
        except BotoCoreError as exc:
            raise SsmUnavailableError(str(exc)) from exc
