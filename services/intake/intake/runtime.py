"""Wiring of ``WebhookFunction``: the environment, one boto3 session, the adapters, the service.

Built once per execution environment (cold start) except the service, which is made
per delivery around the current configuration document (the loader caches it for 60 s,
so an edit applies within a minute without a new environment).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

from intake.adapters.secrets import ParameterSecretStore
from intake.adapters.settings_store import load_settings
from intake.domain.intake import IntakeService, SecretIds
from intake.environment import WebhookConfig
from selfservice_runtime.clients import REQUEST_RETRIES, ClientFactory
from selfservice_runtime.config import load_config
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.publisher import EventBridgePublisher

__all__ = ["DEDUPE_TTL_SECONDS", "Adapters", "adapters", "config", "service"]

DEDUPE_TTL_SECONDS = 7 * 24 * 3600
"""How long a ticket's delivery is remembered (ServiceNow/Jira retries come within hours)."""


@cache
def config() -> WebhookConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(WebhookConfig)


@dataclass(frozen=True)
class Adapters:
    """Everything that talks to AWS, built once per execution environment."""

    publisher: EventBridgePublisher
    deduplicator: DynamoDBDeduplicator
    secrets: ParameterSecretStore
    ssm: SSMProvider


@cache
def adapters() -> Adapters:
    """The adapters, on one boto3 session and its clients (the request retry policy)."""
    environment = config()
    clients = ClientFactory(retries=REQUEST_RETRIES)  # a caller is waiting
    ssm = SSMProvider(boto3_client=clients.ssm())
    return Adapters(
        # X-Ray propagates across services through the event (PutEvents TraceHeader,
        # the publisher's default).
        publisher=EventBridgePublisher(clients.events(), environment.event_bus_name),
        deduplicator=DynamoDBDeduplicator(
            environment.idempotency_table_name,
            DEDUPE_TTL_SECONDS,
            boto3_session=clients.session,
            boto_config=clients.retries,
        ),
        secrets=ParameterSecretStore(ssm, SecretsProvider(boto3_client=clients.secretsmanager())),
        ssm=ssm,
    )


def service() -> IntakeService:
    """The domain service around the current configuration document."""
    environment = config()
    aws = adapters()
    return IntakeService(
        settings=load_settings(aws.ssm, environment.intake_config_parameter),
        secrets=aws.secrets,
        secret_ids=SecretIds(
            servicenow_hmac=environment.servicenow_hmac_secret_id,
            servicenow_basic_auth=environment.servicenow_basic_auth_secret_id,
            jira_webhook=environment.jira_webhook_secret_id,
            jira_automation_token=environment.jira_automation_token_secret_id,
        ),
        publisher=aws.publisher,
        deduplicator=aws.deduplicator,
    )
