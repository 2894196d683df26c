"""Where a deployed platform keeps its bus, archive, audit trail and ledger.

The operator tools (``replay``, ``status``) find them the same way against AWS and the
local runtime: the root stack's outputs when CloudFormation knows the stack, else the
names the templates give (``<stack>-bus``, ``/<stack>/audit-trail``) and discovery by
API (the bus's archive, the ledger table). Each can be given explicitly instead.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["PlatformResources", "ResourceError", "add_arguments", "resolve", "trail_events"]


class ResourceError(Exception):
    """A resource of the platform cannot be found."""


@dataclass(frozen=True)
class PlatformResources:
    """Names and ARNs of what the operator tools read and drive."""

    session: Any
    endpoint_url: str | None
    bus_name: str
    bus_arn: str
    archive_name: str | None
    archive_arn: str | None
    audit_log_group: str
    ledger_table: str | None

    def client(self, service: str) -> Any:
        """A client of the platform's account (and endpoint, for the local runtime)."""
        return self.session.client(service, endpoint_url=self.endpoint_url)

    @property
    def partition_region_account(self) -> tuple[str, str, str]:
        """From the bus ARN."""
        _, partition, _, region, account, _ = self.bus_arn.split(":", 5)
        return partition, region, account

    @property
    def audit_log_group_arn(self) -> str:
        """The audit trail's ARN as an EventBridge target wants it (no ``:*``)."""
        partition, region, account = self.partition_region_account
        return f"arn:{partition}:logs:{region}:{account}:log-group:{self.audit_log_group}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every operator tool shares."""
    parser.add_argument("--stack", default="selfservice", help="root stack name")
    parser.add_argument(
        "--region", help="AWS region (default: $AWS_REGION, else your configuration)"
    )
    parser.add_argument("--profile", help="AWS profile of the credential chain")
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (the local runtime's, printed by selfservice up)"
    )


def _outputs(session: Any, endpoint_url: str | None, stack: str) -> dict[str, str]:
    try:
        stacks = session.client("cloudformation", endpoint_url=endpoint_url).describe_stacks(
            StackName=stack
        )["Stacks"]
    except (ClientError, BotoCoreError):
        return {}  # the local runtime deploys without CloudFormation
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def resolve(args: argparse.Namespace) -> PlatformResources:
    """Find the platform's resources for the options given."""
    # AWS_REGION too, as `selfservice dlq` reads it (what Lambda and `selfservice up`'s
    # operator.env set; botocore reads only AWS_DEFAULT_REGION and the config files).
    region = args.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(profile_name=args.profile, region_name=region)
    if not session.region_name:
        raise ResourceError(
            "no AWS region: pass --region or set AWS_REGION "
            "(the local runtime's is us-east-1, in the operator.env `selfservice up` writes)"
        )
    endpoint = args.endpoint_url
    outputs = _outputs(session, endpoint, args.stack)
    events = session.client("events", endpoint_url=endpoint)
    bus_name = outputs.get("EventBusName", f"{args.stack}-bus")
    try:
        bus_arn = events.describe_event_bus(Name=bus_name)["Arn"]
    except (ClientError, BotoCoreError) as exc:
        raise ResourceError(f"no event bus {bus_name} ({exc}); is --stack right?") from exc
    archive_name = outputs.get("EventArchiveName")
    archive_arn = None
    try:
        archives = events.list_archives(EventSourceArn=bus_arn).get("Archives", [])
    except (ClientError, BotoCoreError):
        archives = []
    for archive in archives:
        if archive_name in (None, archive["ArchiveName"]):
            archive_name = archive["ArchiveName"]
            archive_arn = events.describe_archive(ArchiveName=archive_name)["ArchiveArn"]
            break
    ledger = outputs.get("LedgerTableName")
    if ledger is None:
        try:
            tables = session.client("dynamodb", endpoint_url=endpoint).list_tables()["TableNames"]
        except (ClientError, BotoCoreError):
            tables = []
        ledger = next(
            (t for t in tables if t.startswith(f"{args.stack}-") and "LedgerTable" in t), None
        )
    return PlatformResources(
        session=session,
        endpoint_url=endpoint,
        bus_name=bus_name,
        bus_arn=bus_arn,
        archive_name=archive_name,
        archive_arn=archive_arn,
        audit_log_group=outputs.get("AuditTrailLogGroup", f"/{args.stack}/audit-trail"),
        ledger_table=ledger,
    )


def trail_events(
    resources: PlatformResources, *, since_ms: int | None = None, pattern: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every event in the audit trail (JSON as EventBridge delivered it), oldest log first."""
    logs = resources.client("logs")
    kwargs: dict[str, Any] = {"logGroupName": resources.audit_log_group}
    if since_ms is not None:
        kwargs["startTime"] = since_ms
    if pattern:
        kwargs["filterPattern"] = pattern
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for entry in page.get("events", []):
                try:
                    event = json.loads(entry["message"])
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event
    except logs.exceptions.ResourceNotFoundException as exc:
        raise ResourceError(f"no audit trail {resources.audit_log_group}") from exc
