"""boto3 clients for a composition root: one session, one retry policy, written once.

A function builds its clients once per execution environment from one
:class:`ClientFactory`: one session means botocore loads its endpoint and service data
once (a session per client costs each cold start hundreds of milliseconds), and every
client throttles and retries the same way (:data:`RETRIES`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_ssm.client import SSMClient

__all__ = ["RETRIES", "ClientFactory"]

RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})
"""Throttling and transient errors: retried by botocore with backoff, jitter and a
client-side rate limiter (adaptive mode), up to ten attempts in all."""


class ClientFactory:
    """Clients of one boto3 session, each configured with :data:`RETRIES`."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self.session = session or boto3.session.Session()

    def events(self) -> EventBridgeClient:
        """An EventBridge client."""
        return self.session.client("events", config=RETRIES)

    def ec2(self) -> EC2Client:
        """An EC2 client."""
        return self.session.client("ec2", config=RETRIES)

    def ssm(self) -> SSMClient:
        """An SSM client (Parameter Store, Run Command, State Manager)."""
        return self.session.client("ssm", config=RETRIES)

    def secretsmanager(self) -> SecretsManagerClient:
        """A Secrets Manager client."""
        return self.session.client("secretsmanager", config=RETRIES)
