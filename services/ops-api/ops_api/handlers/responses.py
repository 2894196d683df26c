"""How a call's end reaches the caller, the log and the metrics — each in one place.

The function's Powertools logger and metrics live here; the handler module wires them
around its entry point.
"""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types

from ops_api.domain.errors import OpsError
from ops_api.domain.service import Reply
from selfservice_contracts.events import OpsCommandExecuted
from selfservice_runtime.observability import Metric, count, count_by_reason

__all__ = ["answered", "audit_failed", "logger", "metrics", "refused"]

logger = Logger()
metrics = Metrics()


def answered(reply: Reply, operation: str) -> Response[dict[str, Any]]:
    """A call the service answered: counted, logged, returned as JSON."""
    count(metrics, Metric.OPS_COMMANDS_SUCCEEDED)
    logger.info("ops call answered", extra={"operation": operation, "status_code": reply.status})
    return Response(reply.status, content_types.APPLICATION_JSON, reply.body)


def refused(error: OpsError) -> Response[dict[str, Any]]:
    """Every known condition, mapped to its status code in this one place."""
    count_by_reason(metrics, Metric.OPS_COMMANDS_FAILED, error.code)
    log = logger.error if error.status >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.info
    log("ops call refused", extra={"status_code": error.status, "error": error.message})
    return Response(error.status, content_types.APPLICATION_JSON, error.body())


def audit_failed(record: OpsCommandExecuted, error: Exception) -> None:
    """An audit event that could not be published: counted (alarmed) and kept in the log."""
    # The call's outcome stands; the record is kept in the log and an alarm fires.
    count(metrics, Metric.OPS_AUDIT_EVENTS_FAILED)
    logger.error(
        "audit event not published",
        extra={"audit": record.model_dump(mode="json")},
        exc_info=error,
    )
