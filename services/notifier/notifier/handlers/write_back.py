"""``WriteBackFunction``: lifecycle events from SQS → a comment and state change on the ticket.

The queue is FIFO with one message group, so batches come one at a time and in order.
Within a batch, once a ticket's record fails, the later records of that ticket fail too
(unattempted) and are retried behind it, while other tickets' records go on — a
ticket's updates never overtake each other. A ``Retry-After`` longer than the function
should wait becomes the message's visibility timeout. A permanent refusal parks the
message in the DLQ at once, with the error in its attributes (``selfservice dlq list``
shows it; a redrive delivers it after the fix), and publishes "write-back failed"; so
does the last receive of a transient failure. A message that is not a lifecycle event
(it breaks its contract) is parked at once too, with the parse error: retried, it
would fail every receive and, in flight, hold the one FIFO group — every ticket's
updates — for the queue's visibility timeout, eight times over. Each record's log
lines carry its request id (the CloudEvent's ``requestid``) as correlation id.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from notifier.adapters.email import EmailWriter
from notifier.adapters.http import Transport
from notifier.adapters.itsm import (
    BasicCredentials,
    JiraWriter,
    OAuthClientCredentials,
    ServiceNowWriter,
)
from notifier.config import WriteBackConfig
from notifier.domain.retry import RetryPolicy
from notifier.domain.writeback import (
    PermanentWriteBackError,
    RetryLaterError,
    TicketWriter,
    WriteBackService,
)
from notifier.settings import NotifierSettings
from selfservice_contracts.envelope import ContractError, parse_sqs_body
from selfservice_contracts.events import AnyEvent, TicketEventData
from selfservice_contracts.failures import FAILURE_ATTRIBUTE_NAMES, failure_attributes
from selfservice_contracts.request import TicketSystem
from selfservice_runtime.batch import SqsBatchProcessor
from selfservice_runtime.config import load_config
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.observability import Metric, count
from selfservice_runtime.publisher import EventBridgePublisher

CONFIG_MODEL = WriteBackConfig
EVENT_DEDUPE_SECONDS = 7 * 24 * 3600
SECRET_CACHE_SECONDS = 300
MAX_VISIBILITY_SECONDS = 12 * 3600

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
# An ITSM outage fails every record: report them (they stay queued), not a Lambda error.
processor = SqsBatchProcessor(logger, raise_on_entire_batch_failure=False)
_failed_tickets: dict[str, float] = {}
"""Tickets whose update failed in this batch, with when that update comes back (seconds)."""


@cache
def config() -> WriteBackConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


@dataclass(frozen=True)
class Runtime:
    """Built once per execution environment, on one boto3 session."""

    service: WriteBackService
    deduplicator: DynamoDBDeduplicator
    sqs: Any


def _secret(secrets: SecretsProvider, secret_id: str) -> Any:
    def load(force: bool) -> str:
        document = json.loads(
            str(secrets.get(secret_id, max_age=SECRET_CACHE_SECONDS, force_fetch=force))
        )
        return f"{document['username']}:{document['password']}"

    return load


@cache
def runtime() -> Runtime:
    """Adapters, writers and service."""
    settings = config()
    session = boto3.session.Session()
    retries = Config(retries={"mode": "adaptive", "max_attempts": 10})
    ssm = SSMProvider(boto3_session=session)
    secrets = SecretsProvider(boto3_session=session)
    document = NotifierSettings.model_validate_json(
        str(ssm.get(settings.notifier_config_parameter, max_age=60))
    )
    transport = Transport()
    servicenow_load = _secret(secrets, settings.servicenow_credentials_secret_id)
    servicenow_credentials = BasicCredentials(servicenow_load)
    writers: dict[TicketSystem, TicketWriter] = {
        TicketSystem.SERVICENOW: ServiceNowWriter(
            transport, document.servicenow, servicenow_credentials, document.servicenow.api_url
        ),
        TicketSystem.JIRA: JiraWriter(
            transport,
            document.jira,
            BasicCredentials(_secret(secrets, settings.jira_credentials_secret_id)),
            document.jira.api_url,
        ),
    }
    if document.servicenow.auth == "oauth" and document.servicenow.instance_url:
        writers[TicketSystem.SERVICENOW] = ServiceNowWriter(
            transport,
            document.servicenow,
            OAuthClientCredentials(
                transport, f"{document.servicenow.instance_url}/oauth_token.do", servicenow_load
            ),
            document.servicenow.api_url,
        )
    if document.jira.mode == "email" and document.email is not None:
        writers[TicketSystem.JIRA] = EmailWriter(
            session.client("ses", config=retries), document.email
        )
    # Every event carries the X-Ray trace header (the publisher's default).
    publisher = EventBridgePublisher(
        session.client("events", config=retries), settings.event_bus_name
    )
    return Runtime(
        service=WriteBackService(
            writers,
            publisher,
            RetryPolicy(**document.retries.model_dump()),
        ),
        deduplicator=DynamoDBDeduplicator(
            settings.idempotency_table_name, EVENT_DEDUPE_SECONDS, boto3_session=session
        ),
        sqs=session.client("sqs", config=retries),
    )


def _queue_url(record: SQSRecord) -> str:
    _, _, _, region, account, name = record.event_source_arn.split(":")
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def _queue_name(record: SQSRecord) -> str:
    return record.event_source_arn.rsplit(":", 1)[-1]


def _carried_attributes(record: SQSRecord) -> dict[str, Any]:
    """The record's own message attributes, in SendMessage's shape (a redrive restores them)."""
    carried: dict[str, Any] = {}
    for name, value in (record.get("messageAttributes") or {}).items():
        if name in FAILURE_ATTRIBUTE_NAMES:
            continue
        if value.get("stringValue") is not None:
            carried[name] = {"DataType": value["dataType"], "StringValue": value["stringValue"]}
        elif value.get("binaryValue") is not None:
            carried[name] = {
                "DataType": value["dataType"],
                "BinaryValue": base64.b64decode(value["binaryValue"]),
            }
    return carried


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Write one event back; raising marks only this record as failed."""
    try:
        event = parse_sqs_body(record.body)
    except ContractError as exc:
        # Unreadable now means unreadable on every receive: no retry can help.
        _park(runtime(), record, exc)
        count(metrics, Metric.WRITE_BACKS_FAILED)
        logger.exception(
            "not a lifecycle event; parked in the DLQ",
            extra={"reason": str(exc), "message_id": record.message_id},
        )
        return
    with logger.append_context_keys(correlation_id=event.requestid, ticket=event.subject):
        if event.requestid:
            tracer.put_annotation(key="request_id", value=event.requestid)
        _write_back(record, event)


def _come_back_after(run: Runtime, record: SQSRecord, wait_seconds: float) -> None:
    """Make a deferred record visible again after ``wait_seconds`` (at least one second).

    Always explicit: until it is visible again, an in-flight message of the queue's one
    FIFO group holds back every later message of the group.
    """
    run.sqs.change_message_visibility(
        QueueUrl=_queue_url(record),
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=min(int(wait_seconds) + 1, MAX_VISIBILITY_SECONDS),
    )


def _park(run: Runtime, record: SQSRecord, error: Exception) -> None:
    """Send the record to the DLQ at once; returning normally then deletes it from the queue.

    Why it is parked travels with it (``selfservice dlq list`` shows it; a redrive drops it).
    """
    run.sqs.send_message(
        QueueUrl=config().write_back_dlq_url,
        MessageBody=record.body,
        MessageGroupId="ticket-updates",
        MessageDeduplicationId=record.message_id,
        MessageAttributes={
            **_carried_attributes(record),
            **failure_attributes(error, source_queue=_queue_name(record)),
        },
    )


def _write_back(record: SQSRecord, event: AnyEvent) -> None:
    ticket = str(event.data.ticket) if isinstance(event.data, TicketEventData) else ""
    run = runtime()
    if ticket in _failed_tickets:
        # Back with the update it waits behind: left to the queue's visibility timeout
        # (12 minutes), it would hold the whole FIFO group — every ticket — that long.
        _come_back_after(run, record, _failed_tickets[ticket])
        raise RetryLaterError(
            _failed_tickets[ticket],
            f"an earlier update of {ticket} in this batch is not written yet",
        )
    settings = config()
    receives = int(record.attributes.approximate_receive_count or "1")

    def write() -> dict[str, Any]:
        outcome = run.service.on_event(
            event, receive_count=receives, max_receives=settings.max_receive_count
        )
        if outcome == "written":  # counted here, once: a redelivery replays the result
            count(metrics, Metric.WRITE_BACKS_SUCCEEDED)
        return {"outcome": outcome}

    try:
        stored = run.deduplicator.once(f"{event.source}#{event.id}", write)
    except RetryLaterError as exc:
        _failed_tickets.setdefault(ticket, exc.wait_seconds)
        _come_back_after(run, record, exc.wait_seconds)
        # The last receive's failure was reported (write-back failed); the DLQ takes it next.
        exhausted = receives >= settings.max_receive_count
        count(metrics, Metric.WRITE_BACKS_FAILED if exhausted else Metric.WRITE_BACKS_DEFERRED)
        logger.warning(
            "write-back not done; retries exhausted, the DLQ takes it"
            if exhausted
            else "write-back deferred",
            extra={"reason": str(exc), "wait_seconds": exc.wait_seconds, "receives": receives},
        )
        raise
    except PermanentWriteBackError as exc:
        _park(run, record, exc)
        count(metrics, Metric.WRITE_BACKS_FAILED)
        logger.exception("write-back refused; parked in the DLQ", extra={"reason": str(exc)})
        return
    logger.info("written back", extra={"type": event.type, **stored})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``notifier.handlers.write_back.lambda_handler``)."""
    config()
    _failed_tickets.clear()
    runtime().deduplicator.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
