"""``StuckTicketsFunction``: every 5 minutes, the requests stuck in provisioning.

Invoked by an EventBridge Scheduler schedule (no queue: a failed run is simply the next
run, five minutes later). Queries the ledger's in-flight index for requests queued or
building for longer than ``STUCK_AFTER_MINUTES``, records their number as the
``TicketsStuck`` metric — zero included, so a silent check is itself an alarm (the
alarm treats missing data as breaching) — and logs each stuck request, correlated by
its request id, with its ticket, state, age, build and build log link.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, ConfigDict

from provisioner.domain.stuck import InFlightIndex, StuckReport, find_stuck
from provisioner.environment import StuckTicketsConfig
from provisioner.runtime import in_flight_index
from selfservice_runtime.config import load_config
from selfservice_runtime.observability import Metric, gauge

CONFIG_MODEL = StuckTicketsConfig
MAX_LOGGED = 100
"""Stuck requests logged one by one per run (all are counted)."""

logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()


class ScheduledRun(BaseModel):
    """The schedule's input (``Input`` of the ScheduleV2 event in sam/provisioner.yaml)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    check: str = "stuck-tickets"
    scheduled_time: AwareDatetime | None = None
    execution_id: str | None = None


@cache
def config() -> StuckTicketsConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(CONFIG_MODEL)


def index() -> InFlightIndex:
    """The ledger's in-flight index, built once per execution environment (runtime)."""
    return in_flight_index(config())


def _report(report: StuckReport) -> None:
    gauge(metrics, Metric.TICKETS_STUCK, len(report.stuck))
    for ticket in report.stuck[:MAX_LOGGED]:
        entry = ticket.entry
        with logger.append_context_keys(correlation_id=entry.request_id, ticket=entry.instance):
            logger.warning(
                "ticket stuck",
                extra={
                    "state": entry.state.value,
                    "since": entry.since.isoformat(),
                    "age_minutes": ticket.age_minutes,
                    "product": entry.product,
                    "attempt": entry.attempt,
                    "build_id": entry.build_id,
                    "log_url": entry.log_url,
                },
            )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``provisioner.handlers.stuck_tickets.lambda_handler``)."""
    settings = config()
    run = ScheduledRun.model_validate(event)
    threshold = timedelta(minutes=settings.stuck_after_minutes)
    report = find_stuck(index(), now=datetime.now(UTC), threshold=threshold)
    _report(report)
    logger.info(
        "stuck-ticket check done",
        extra={
            "stuck": len(report.stuck),
            "threshold_minutes": settings.stuck_after_minutes,
            "scheduled_time": run.scheduled_time.isoformat() if run.scheduled_time else None,
            "execution_id": run.execution_id,
        },
    )
    return {
        "stuck": len(report.stuck),
        "request_ids": [ticket.entry.request_id for ticket in report.stuck],
    }
