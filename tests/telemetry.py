"""What a function run told operators: its log lines, its EMF metrics, its PutEvents calls.

Powertools' loggers hold the ``sys.stdout`` of import time (not what pytest swaps in),
so their stream handlers are pointed at a buffer; metrics are printed EMF lines, read
from the captured stdout. PutEvents calls are recorded as botocore is asked to make
them (moto keeps no TraceHeader), whichever client or session the handler built.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient

from selfservice_runtime.observability import NAMESPACE, REASON_DIMENSION

__all__ = ["EmfMetric", "PutEventsSpy", "Telemetry", "capture_put_events", "capture_telemetry"]


@dataclass(frozen=True)
class EmfMetric:
    """One metric value as CloudWatch would store it: namespace, name, dimensions."""

    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    value: float


def _emf_metrics(line: dict[str, Any]) -> Iterator[EmfMetric]:
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for names in directive["Dimensions"]:
            dimensions = frozenset((name, str(line[name])) for name in names)
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                total = sum(value) if isinstance(value, list) else value
                yield EmfMetric(directive["Namespace"], metric["Name"], dimensions, float(total))


@dataclass
class Telemetry:
    """Log lines and metrics emitted since the fixture started (or since the last read)."""

    capsys: pytest.CaptureFixture[str]
    stream: io.StringIO
    _printed: list[str] = field(default_factory=list)

    def _stdout(self) -> str:
        self._printed.append(self.capsys.readouterr().out)
        return "".join(self._printed)

    def logs(self, message: str | None = None) -> list[dict[str, Any]]:
        """The structured log lines (optionally only those with this message)."""
        lines = []
        for raw in [*self.stream.getvalue().splitlines(), *self._stdout().splitlines()]:
            if raw.startswith("{") and '"level"' in raw:
                line = json.loads(raw)
                if message is None or line.get("message") == message:
                    lines.append(line)
        return lines

    def metrics(self) -> list[EmfMetric]:
        """Every metric value printed as EMF."""
        found: list[EmfMetric] = []
        for raw in self._stdout().splitlines():
            if raw.startswith("{") and '"_aws"' in raw:
                found.extend(_emf_metrics(json.loads(raw)))
        return found

    def counts(self) -> Counter[str]:
        """Totals by name of the metrics carrying the ``service`` dimension alone.

        Those are what alarms and the dashboard read; ``ColdStart`` is left out.
        """
        totals: Counter[str] = Counter()
        for metric in self.metrics():
            names = {name for name, _ in metric.dimensions}
            if names == {"service"} and metric.name != "ColdStart":
                assert metric.namespace == NAMESPACE, metric
                totals[metric.name] += int(metric.value)
        return totals

    def by_reason(self) -> Counter[tuple[str, str]]:
        """Totals by (name, reason) of the metrics carrying ``service`` and ``Reason``."""
        totals: Counter[tuple[str, str]] = Counter()
        for metric in self.metrics():
            dimensions = dict(metric.dimensions)
            if set(dimensions) == {"service", REASON_DIMENSION}:
                assert metric.namespace == NAMESPACE, metric
                totals[metric.name, dimensions[REASON_DIMENSION]] += int(metric.value)
        return totals


@contextmanager
def streams_redirected(buffer: io.StringIO) -> Iterator[io.StringIO]:
    """Point every logger's stream handlers at ``buffer`` for the duration.

    Powertools' handlers hold the ``sys.stdout`` of import time, which is not what a
    capture fixture swaps in; redirecting the handlers themselves sees every line.
    """
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    swapped = [
        (handler, handler.setStream(buffer))
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]
    try:
        yield buffer
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


@contextmanager
def capture_telemetry(capsys: pytest.CaptureFixture[str]) -> Iterator[Telemetry]:
    """Point every logger's stream handlers at one buffer for the duration."""
    with streams_redirected(io.StringIO()) as buffer:
        yield Telemetry(capsys, buffer)


@dataclass
class PutEventsSpy:
    """The entries of every PutEvents call made while it was installed."""

    entries: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def capture_put_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[PutEventsSpy]:
    """Record PutEvents entries on their way into botocore (the call still happens)."""
    spy = PutEventsSpy()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "PutEvents":
            spy.entries.extend(api_params.get("Entries", []))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    yield spy
