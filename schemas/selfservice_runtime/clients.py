"""boto3 clients for a composition root: one session, the retry policies written once.

A function builds its clients once per execution environment from one
:class:`ClientFactory`: one session means botocore loads its endpoint and service data
once (a session per client costs each cold start hundreds of milliseconds), and every
client of the function throttles and retries the same way.

Two policies, both adaptive (backoff, jitter and a client-side rate limiter):
:data:`RETRIES` for functions nobody waits on (queue consumers, schedules), and
:data:`REQUEST_RETRIES` for functions answering an HTTP caller. Ten attempts back off
for about a minute in all, longer than an API function may run (intake's timeout is
15 s): a caller gets a timeout instead of the ``503`` + ``Retry-After`` that tells it
to come back, and an ITSM retries by itself.
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

__all__ = ["REQUEST_RETRIES", "RETRIES", "ClientFactory"]

RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})
"""Throttling and transient errors, where nobody waits: up to ten attempts in all."""

REQUEST_RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 3})
"""Throttling and transient errors while an HTTP caller waits: up to three attempts
(a few seconds), then the function answers "retry later"."""


class ClientFactory:
    """Clients of one boto3 session, each configured with one retry policy."""

    def __init__(
        self, session: boto3.session.Session | None = None, retries: Config = RETRIES
    ) -> None:
        self.session = session or boto3.session.Session()
        self.retries = retries

    def events(self) -> EventBridgeClient:
        """An EventBridge client."""
        return self.session.client("events", config=self.retries)

    def ec2(self) -> EC2Client:
        """An EC2 client."""
        return self.session.client("ec2", config=self.retries)

    def ssm(self) -> SSMClient:
        """An SSM client (Parameter Store, Run Command, State Manager)."""
        return self.session.client("ssm", config=self.retries)

    def secretsmanager(self) -> SecretsManagerClient:
        """A Secrets Manager client."""
        return self.session.client("secretsmanager", config=self.retries)
