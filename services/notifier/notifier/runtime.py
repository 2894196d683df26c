"""Wiring of the notifier: one boto3 session, one client factory, the adapters, the service.

The settings document is read through the shared loader on every batch (cached
``settings_document.CACHE_SECONDS``, as intake, ops-api and the provisioner read theirs),
so an edit takes effect within a minute; the writers are rebuilt only when it changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from notifier.adapters.email import EmailWriter
from notifier.adapters.http import Transport
from notifier.adapters.itsm import (
    BasicCredentials,
    JiraWriter,
    OAuthClientCredentials,
    ServiceNowWriter,
)
from notifier.adapters.queue import SqsWriteBackQueue
from notifier.domain.delivery import WriteBackDelivery
from notifier.domain.ports import Deduplicator, TicketWriter
from notifier.domain.retry import RetryPolicy
from notifier.domain.write_back import WriteBackService
from notifier.environment import WriteBackConfig
from notifier.settings import NotifierSettings
from selfservice_contracts.request import TicketSystem
from selfservice_runtime.clients import RETRIES
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.observability import Metric
from selfservice_runtime.publisher import EventBridgePublisher, EventPublisher
from selfservice_runtime.settings_document import load_document

if TYPE_CHECKING:
    from mypy_boto3_ses.client import SESClient

__all__ = ["EVENT_DEDUPE_SECONDS", "Runtime", "build_runtime", "writers_for"]

EVENT_DEDUPE_SECONDS = 7 * 24 * 3600
"""How long a processed CloudEvent (source + id) is remembered."""
SECRET_CACHE_SECONDS = 300


class BatchDeduplicator(Deduplicator, Protocol):
    """A deduplicator that learns each invocation's remaining time."""

    def register_lambda_context(self, context: LambdaContext) -> None:
        """Called at the start of every invocation."""
        ...


def _secret(secrets: SecretsProvider, secret_id: str) -> Callable[[bool], str]:
    def load(force: bool) -> str:
        document = json.loads(
            str(secrets.get(secret_id, max_age=SECRET_CACHE_SECONDS, force_fetch=force))
        )
        return f"{document['username']}:{document['password']}"

    return load


def writers_for(
    document: NotifierSettings,
    transport: Transport,
    servicenow_secret: Callable[[bool], str],
    jira_secret: Callable[[bool], str],
    ses: Callable[[], SESClient],
) -> dict[TicketSystem, TicketWriter]:
    """One writer per ticket system, as ``document`` says."""
    servicenow = document.servicenow
    credentials = (
        OAuthClientCredentials(
            transport, f"{servicenow.instance_url}/oauth_token.do", servicenow_secret
        )
        if servicenow.auth == "oauth" and servicenow.instance_url
        else BasicCredentials(servicenow_secret)
    )
    writers: dict[TicketSystem, TicketWriter] = {
        TicketSystem.SERVICENOW: ServiceNowWriter(
            transport, servicenow, credentials, servicenow.api_url
        ),
        TicketSystem.JIRA: JiraWriter(
            transport, document.jira, BasicCredentials(jira_secret), document.jira.api_url
        ),
    }
    if document.jira.mode == "email" and document.email is not None:
        writers[TicketSystem.JIRA] = EmailWriter(ses(), document.email)
    return writers


@dataclass
class Runtime:
    """What one execution environment keeps between invocations."""

    delivery: WriteBackDelivery
    deduplicator: BatchDeduplicator
    refresh: Callable[[], None] = field(default=lambda: None)
    """Re-reads the settings document (cached by the shared loader)."""

    def start_batch(self, context: LambdaContext) -> None:
        """Before each batch: the current settings, the invocation's deadline, a fresh order."""
        self.refresh()
        self.deduplicator.register_lambda_context(context)
        self.delivery.start_batch()


@dataclass
class _ServiceForDocument:
    """The service for the current document, rebuilt only when the document changed."""

    load: Callable[[], NotifierSettings]
    build: Callable[[NotifierSettings], WriteBackService]
    _document: NotifierSettings | None = None
    _service: WriteBackService | None = None

    def refresh(self) -> None:
        document = self.load()
        # The shared loader returns the same validated object for an unchanged document.
        if self._service is None or document is not self._document:
            self._document, self._service = document, self.build(document)

    def __call__(self) -> WriteBackService:
        if self._service is None:
            self.refresh()
        assert self._service is not None  # noqa: S101 - set by refresh
        return self._service


def build_runtime(
    config: WriteBackConfig,
    count: Callable[[Metric], None],
    session: Any = None,
) -> Runtime:
    """Adapters on one shared boto3 session (botocore loads its data once).

    ``count`` adds one to a metric; the handler flushes them with the invocation.
    """
    session = session or boto3.session.Session()
    clients: dict[str, Any] = {}

    def client(name: str) -> Any:
        if name not in clients:
            clients[name] = session.client(name, config=RETRIES)
        return clients[name]

    ssm = SSMProvider(boto3_client=client("ssm"))
    secrets = SecretsProvider(boto3_client=client("secretsmanager"))
    transport = Transport()
    # Every event carries the X-Ray trace header (the publisher's default).
    publisher: EventPublisher = EventBridgePublisher(client("events"), config.event_bus_name)

    def build(document: NotifierSettings) -> WriteBackService:
        writers = writers_for(
            document,
            transport,
            _secret(secrets, config.servicenow_credentials_secret_id),
            _secret(secrets, config.jira_credentials_secret_id),
            lambda: client("ses"),
        )
        return WriteBackService(writers, publisher, RetryPolicy(**document.retries.model_dump()))

    services = _ServiceForDocument(
        lambda: load_document(ssm, config.notifier_config_parameter, NotifierSettings), build
    )
    deduplicator = DynamoDBDeduplicator(
        config.idempotency_table_name,
        EVENT_DEDUPE_SECONDS,
        boto3_session=session,
        boto_config=RETRIES,
    )
    delivery = WriteBackDelivery(
        services=services,
        deduplicator=deduplicator,
        queue=SqsWriteBackQueue(client("sqs"), config.write_back_dlq_url),
        max_receives=config.max_receive_count,
        count=count,
    )
    return Runtime(delivery, deduplicator, services.refresh)
