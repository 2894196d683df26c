"""S3 artifacts, CodeBuild and CloudWatch Logs behind the domain's ports."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from provisioner.domain.plan.build_review import (
    ApplyRecord,
    ReviewInput,
    ReviewRecord,
    parse_build_record,
    plan_prefix,
    review_input_key,
    review_record_key,
)
from provisioner.domain.ports import BuildRefused, BuildRequest, StartedBuild

if TYPE_CHECKING:
    from mypy_boto3_codebuild.client import CodeBuildClient
    from mypy_boto3_codebuild.type_defs import EnvironmentVariableTypeDef
    from mypy_boto3_logs.client import CloudWatchLogsClient
    from mypy_boto3_s3.client import S3Client

__all__ = [
    "REFUSALS",
    "CloudWatchBuildLogs",
    "CodeBuildStarter",
    "S3Artifacts",
    "idempotency_token",
]

REFUSALS = frozenset(
    {
        "AccessDeniedException",  # the caller's role may not StartBuild on the project
        "AccessDenied",
        "ResourceNotFoundException",  # no such project
        "InvalidInputException",  # the request itself is wrong
    }
)
"""StartBuild error codes no retry can cure. Throttling, ``AccountLimitExceededException``
(too many builds queued) and server errors pass: the queue retries the record."""


class S3Artifacts:
    """tfvars documents in, ``terraform output -json`` out, in the artifacts bucket."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put_tfvars(self, request_id: str, attempt: int, document: dict[str, Any]) -> str:
        """Store the variables of one attempt (SSE-KMS); returns their s3:// URI."""
        key = f"tfvars/{request_id}/{attempt}.tfvars.json"
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(document, sort_keys=True).encode(),
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
        )
        return f"s3://{self._bucket}/{key}"

    def put_review_input(self, request_id: str, attempt: int, document: ReviewInput) -> None:
        """Store the review input of one attempt (SSE-KMS), beside its variables."""
        self._client.put_object(
            Bucket=self._bucket,
            Key=review_input_key(request_id, attempt),
            Body=document.model_dump_json().encode(),
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
        )

    def get_build_record(self, request_id: str, attempt: int) -> ReviewRecord | ApplyRecord | None:
        """The review step's record of an attempt (None: the build wrote none)."""
        try:
            body = self._client.get_object(
                Bucket=self._bucket, Key=review_record_key(request_id, attempt)
            )["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return parse_build_record(body)

    def plan_uri(self, request_id: str, attempt: int) -> str:
        """Where an attempt keeps ``tfplan``, ``plan.json`` and ``tfplan.sha256``."""
        return f"s3://{self._bucket}/{plan_prefix(request_id, attempt)}"

    def outputs_uri(self, request_id: str, attempt: int) -> str:
        """Where an attempt's build writes its outputs."""
        return f"s3://{self._bucket}/outputs/{request_id}/{attempt}.json"

    def get_outputs(self, request_id: str, attempt: int) -> dict[str, Any]:
        """Output values of an attempt; sensitive outputs are never read out."""
        try:
            body = self._client.get_object(
                Bucket=self._bucket, Key=f"outputs/{request_id}/{attempt}.json"
            )["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return {}
            raise
        document = json.loads(body)
        return {
            name: output.get("value")
            for name, output in document.items()
            if isinstance(output, dict) and not output.get("sensitive")
        }


def idempotency_token(request_id: str, action: str, attempt: int) -> str:
    """StartBuild's token: a retry of the same attempt finds the same build."""
    return hashlib.sha256(f"{request_id}|{action}|{attempt}".encode()).hexdigest()[:64]


class CodeBuildStarter:
    """Starts the Terraform build of an attempt."""

    def __init__(self, client: CodeBuildClient, project_name: str, region: str) -> None:
        self._client = client
        self._project = project_name
        self._region = region

    def start(self, build: BuildRequest) -> StartedBuild:
        """StartBuild with non-secret identifiers only in the environment;
        :class:`BuildRefused` for an error code in :data:`REFUSALS`."""
        request = build.request
        instance = request.instance or request.ticket
        variables: dict[str, str] = {
            "REQUEST_ID": request.request_id,
            "TICKET_REF": str(instance),
            "PRODUCT": request.product,
            "ACTION": build.action.value,
            "ATTEMPT": str(build.attempt),
            "TFVARS_S3_URI": build.tfvars_uri,
            "OUTPUTS_S3_URI": build.outputs_uri,
            "STATE_KEY": build.state_key,
        }
        if build.plan_only:
            variables["PLAN_ONLY"] = "true"
        if build.approved_plan is not None:
            variables["APPROVED_PLAN_URI"] = build.approved_plan.uri
            variables["APPROVED_PLAN_SHA256"] = build.approved_plan.sha256
            variables["APPROVED_MODULE_SHA256"] = build.approved_plan.module_sha256
        overrides: list[EnvironmentVariableTypeDef] = [
            {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
        ]
        try:
            response = self._client.start_build(
                projectName=self._project,
                idempotencyToken=idempotency_token(
                    request.request_id, build.action.value, build.attempt
                ),
                environmentVariablesOverride=overrides,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in REFUSALS:
                raise BuildRefused(code, str(error.get("Message") or exc)) from exc
            raise
        started = response["build"]
        build_id = started["id"]
        log_url = started.get("logs", {}).get("deepLink") or (
            f"https://{self._region}.console.aws.amazon.com/codesuite/codebuild/projects/"
            f"{self._project}/build/{quote(build_id, safe='')}/log?region={self._region}"
        )
        return StartedBuild(build_id=build_id, log_url=log_url)


class CloudWatchBuildLogs:
    """The end of a build's log stream."""

    def __init__(self, client: CloudWatchLogsClient) -> None:
        self._client = client

    def tail(self, group: str, stream: str, lines: int) -> list[str]:
        """The last ``lines`` messages; empty if the log is gone or unreadable."""
        try:
            response = self._client.get_log_events(
                logGroupName=group, logStreamName=stream, limit=lines, startFromHead=False
            )
        except ClientError:
            return []
        return [event["message"].rstrip("\n") for event in response.get("events", [])]
