"""Observability every service shares: metric names, the X-Ray trace header, counting.

Every business metric of the platform is named here, once, with the service that emits
it and what one count means; handlers and domain code use :class:`Metric`, never a
string, so a renamed metric cannot silently orphan an alarm or a dashboard widget (the
wiring tests check that every alarm on the ``selfservice`` namespace names a metric of
this catalog with the service that emits it, and ``docs/observability.md`` lists
exactly this catalog).

Metrics are CloudWatch embedded metric format (EMF) lines written by Powertools; each
carries the ``service`` dimension (``POWERTOOLS_SERVICE_NAME``). A metric that is also
counted by reason is emitted twice: once with ``service`` alone (what alarms watch)
and once with ``service`` and ``Reason`` (what an operator reads to find the cause).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from selfservice_contracts.events import Service

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

__all__ = [
    "METRIC_CATALOG",
    "NAMESPACE",
    "REASON_DIMENSION",
    "Metric",
    "MetricSpec",
    "count",
    "count_by_reason",
    "gauge",
    "lambda_trace_header",
    "spec_for_metric",
]

NAMESPACE = "selfservice"
"""CloudWatch namespace of every business metric (``POWERTOOLS_METRICS_NAMESPACE``)."""

REASON_DIMENSION = "Reason"


class Metric(StrEnum):
    """Every business metric, by name (``<Things><Outcome>``, counts)."""

    # intake: one per webhook delivery, by outcome
    REQUESTS_RECEIVED = "RequestsReceived"
    REQUESTS_AWAITING_APPROVAL = "RequestsAwaitingApproval"
    REQUESTS_APPROVED = "RequestsApproved"
    REQUESTS_REJECTED = "RequestsRejected"
    DELIVERIES_IGNORED = "DeliveriesIgnored"
    DELIVERIES_DUPLICATED = "DeliveriesDuplicated"
    WEBHOOK_AUTH_FAILURES = "WebhookAuthFailures"
    # provisioner
    BUILDS_STARTED = "BuildsStarted"
    BUILDS_WAITING_FOR_SLOT = "BuildsWaitingForSlot"
    BUILDS_SUCCEEDED = "BuildsSucceeded"
    BUILDS_FAILED = "BuildsFailed"
    TRANSITIONS_REFUSED = "TransitionsRefused"
    TICKETS_STUCK = "TicketsStuck"
    # notifier
    WRITE_BACKS_SUCCEEDED = "WriteBacksSucceeded"
    WRITE_BACKS_DEFERRED = "WriteBacksDeferred"
    WRITE_BACKS_FAILED = "WriteBacksFailed"
    # ops API
    OPS_COMMANDS_SUCCEEDED = "OpsCommandsSucceeded"
    OPS_COMMANDS_FAILED = "OpsCommandsFailed"
    OPS_AUDIT_EVENTS_FAILED = "OpsAuditEventsFailed"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Who emits a metric, what one count means, and whether it is also counted by reason."""

    metric: Metric
    service: Service
    meaning: str
    by_reason: bool = False


METRIC_CATALOG: tuple[MetricSpec, ...] = (
    MetricSpec(
        Metric.REQUESTS_RECEIVED,
        Service.INTAKE,
        "A delivery became a valid request that needs no approval (request.received).",
    ),
    MetricSpec(
        Metric.REQUESTS_AWAITING_APPROVAL,
        Service.INTAKE,
        "A valid request waits for its ITSM approval (request.approval-required).",
    ),
    MetricSpec(
        Metric.REQUESTS_APPROVED,
        Service.INTAKE,
        "The ITSM approved a waiting request (request.approved).",
    ),
    MetricSpec(
        Metric.REQUESTS_REJECTED,
        Service.INTAKE,
        "A request failed validation or policy, or its approval was rejected (request.rejected).",
    ),
    MetricSpec(
        Metric.DELIVERIES_IGNORED,
        Service.INTAKE,
        "An authenticated delivery that asks for nothing (an unmapped catalog item, a comment).",
    ),
    MetricSpec(
        Metric.DELIVERIES_DUPLICATED,
        Service.INTAKE,
        "A delivery already turned into an event (an ITSM retry); answered, not re-published.",
    ),
    MetricSpec(
        Metric.WEBHOOK_AUTH_FAILURES,
        Service.INTAKE,
        "A delivery refused with 401; Reason: missing_credentials, malformed_credentials, "
        "bad_signature, stale_timestamp, bad_token or bad_basic_auth (never the secret).",
        by_reason=True,
    ),
    MetricSpec(
        Metric.BUILDS_STARTED,
        Service.PROVISIONER,
        "A Terraform build was started in CodeBuild (provisioning.started).",
    ),
    MetricSpec(
        Metric.BUILDS_WAITING_FOR_SLOT,
        Service.PROVISIONER,
        "A serial product's request (aws-account) waits for the build slot.",
    ),
    MetricSpec(
        Metric.BUILDS_SUCCEEDED,
        Service.PROVISIONER,
        "A build's success was recorded (provisioning.succeeded).",
    ),
    MetricSpec(
        Metric.BUILDS_FAILED,
        Service.PROVISIONER,
        "A build's failure, stop, timeout or fault was recorded (provisioning.failed).",
    ),
    MetricSpec(
        Metric.TRANSITIONS_REFUSED,
        Service.PROVISIONER,
        "An input the lifecycle refused (a replay, a second approval, a stale build outcome).",
    ),
    MetricSpec(
        Metric.TICKETS_STUCK,
        Service.PROVISIONER,
        "Requests queued or building for longer than the threshold (a gauge, every 5 minutes).",
    ),
    MetricSpec(
        Metric.WRITE_BACKS_SUCCEEDED,
        Service.NOTIFIER,
        "A lifecycle event was written to its ticket (ticket.updated).",
    ),
    MetricSpec(
        Metric.WRITE_BACKS_DEFERRED,
        Service.NOTIFIER,
        "A write-back will be retried (ITSM rate limit, outage, timeout); the message stays "
        "queued.",
    ),
    MetricSpec(
        Metric.WRITE_BACKS_FAILED,
        Service.NOTIFIER,
        "A write-back gave up (refused, or retries exhausted) and was parked in the DLQ "
        "(ticket.write-back-failed).",
    ),
    MetricSpec(
        Metric.OPS_COMMANDS_SUCCEEDED,
        Service.OPS_API,
        "An ops API call (run-commands, get-command, start-association) answered 2xx.",
    ),
    MetricSpec(
        Metric.OPS_COMMANDS_FAILED,
        Service.OPS_API,
        "An ops API call refused or failed; Reason: the error code (CommandNotAllowed, …).",
        by_reason=True,
    ),
    MetricSpec(
        Metric.OPS_AUDIT_EVENTS_FAILED,
        Service.OPS_API,
        "An ops call's audit event could not be published (the record is in the log).",
    ),
)


def spec_for_metric(metric: Metric | str) -> MetricSpec:
    """The catalog entry of a metric."""
    name = Metric(metric)
    return next(spec for spec in METRIC_CATALOG if spec.metric is name)


def count(metrics: Metrics, metric: Metric) -> None:
    """Add one to ``metric`` (flushed with the invocation's other metrics)."""
    from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415 - cold start

    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=1)


def gauge(metrics: Metrics, metric: Metric, value: int) -> None:
    """Record ``value`` for ``metric`` (zero included: a missing datapoint means no report)."""
    from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415 - cold start

    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def count_by_reason(metrics: Metrics, metric: Metric, reason: str) -> None:
    """Add one to ``metric`` for the service, and one for the service and ``reason``."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric  # noqa: PLC0415

    count(metrics, metric)
    with single_metric(
        name=metric.value, unit=MetricUnit.Count, value=1, namespace=metrics.namespace
    ) as single:
        single.add_dimension(name=REASON_DIMENSION, value=reason)


def lambda_trace_header() -> str | None:
    """The invocation's X-Ray trace header (``Root=…;Parent=…;Sampled=…``), if traced.

    Lambda sets ``_X_AMZN_TRACE_ID`` for each invocation when tracing is active; passing
    it as PutEvents' ``TraceHeader`` continues the trace through EventBridge to the
    consumers, so one ticket's path across services is one X-Ray trace.
    """
    return os.environ.get("_X_AMZN_TRACE_ID") or None
