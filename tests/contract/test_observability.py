"""The shared observability pieces: the metric catalog, how counts are emitted, X-Ray."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from selfservice_contracts.events import EVENT_CATALOG, Service
from selfservice_runtime.observability import (
    METRIC_CATALOG,
    NAMESPACE,
    Metric,
    count,
    count_by_reason,
    gauge,
    spec_for_metric,
)
from selfservice_runtime.parsing import parse_eventbridge_event
from selfservice_runtime.publisher import EventBridgePublisher
from tests.conftest import ROOT
from tests.contract.test_publisher import FlakyEvents
from tests.lambda_context import TRACE_HEADER, traced_invocation
from tests.telemetry import Telemetry

TRACE = TRACE_HEADER


def test_every_metric_is_catalogued_once_with_its_service() -> None:
    assert [spec.metric for spec in METRIC_CATALOG] == list(Metric)
    for spec in METRIC_CATALOG:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", spec.metric.value), spec.metric
        assert spec.meaning.endswith("."), spec.metric
        assert spec_for_metric(spec.metric.value) is spec
    assert {spec.service for spec in METRIC_CATALOG} == set(Service)


def _documented_metrics() -> dict[str, str]:
    """Rows of the metrics table in docs/observability.md: name → service."""
    text = (ROOT / "docs/observability.md").read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([\w-]+) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_the_documented_metrics_are_the_catalog() -> None:
    assert _documented_metrics() == {
        spec.metric.value: spec.service.value for spec in METRIC_CATALOG
    }


def test_counts_by_reason_are_emitted_for_the_service_and_per_reason(
    telemetry: Telemetry,
) -> None:
    metrics = Metrics(namespace=NAMESPACE, service="intake")
    # Powertools keeps one metric set for every Metrics instance of the process: drop
    # what an earlier test in this worker recorded and never flushed.
    metrics.clear_metrics()
    count_by_reason(metrics, Metric.WEBHOOK_AUTH_FAILURES, "bad_signature")
    count(metrics, Metric.REQUESTS_RECEIVED)
    gauge(metrics, Metric.TICKETS_STUCK, 0)
    metrics.flush_metrics()
    assert telemetry.counts() == {
        Metric.WEBHOOK_AUTH_FAILURES: 1,
        Metric.REQUESTS_RECEIVED: 1,
        Metric.TICKETS_STUCK: 0,
    }
    assert Metric.TICKETS_STUCK in {m.name for m in telemetry.metrics()}  # zero, yet present
    assert telemetry.by_reason() == {(Metric.WEBHOOK_AUTH_FAILURES, "bad_signature"): 1}


def test_a_publisher_passes_the_invocations_trace_header_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    samples = [
        parse_eventbridge_event((ROOT / "events/catalog" / spec.schema_file).read_text())
        for spec in EVENT_CATALOG[:4]
    ]
    sent: list[dict[str, Any]] = []

    class Recording(FlakyEvents):
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            sent.extend(Entries)
            return super().put_events(Entries)

    publisher = EventBridgePublisher(Recording({}), "bus")  # type: ignore[arg-type]
    publisher.publish(samples[:2])  # outside Lambda, or untraced: no header at all
    traced_invocation(monkeypatch)
    publisher.publish(samples[2:4])  # read per publish: each invocation has its own trace
    assert [entry.get("TraceHeader") for entry in sent] == [None, None, TRACE, TRACE]
    assert json.loads(sent[2]["Detail"])["id"] == samples[2].id
