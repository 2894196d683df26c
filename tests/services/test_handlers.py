"""Invoke every function the way Lambda would, configured from its template.

Above all: the routes the templates declare are the routes the code serves, and a
missing environment variable fails the cold start by name. Functions whose
configuration is missing answer a known status (HTTP) or fail every record (SQS) so
nothing is acknowledged and lost; these tests pin that too. AWS calls go to moto.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError
from moto import mock_aws

from provisioner.runtime import build_runtime
from selfservice.templates import FunctionSpec
from selfservice_contracts.failures import RECORD_FAILED
from selfservice_runtime.config import ConfigurationError
from selfservice_runtime.settings_document import SettingsDocumentError
from tests.aws import use_test_credentials
from tests.conftest import ROOT, platform_functions
from tests.environment import use_function_environment
from tests.lambda_context import FakeContext


def _configure(fn: FunctionSpec, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # The template's environment; resources (not deployed here) are named by placeholders.
    use_function_environment(monkeypatch, fn.logical_id)
    module = importlib.import_module(fn.handler_module)
    module.config.cache_clear()
    return module


def _http_event(method: str, path: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events/WebhookFunction.json").read_text())
    route = path.replace("{command_id}", "cmd-1")
    event["routeKey"] = f"{method} {path}"
    event["rawPath"] = route
    event["requestContext"]["http"].update(method=method, path=route)
    return event


HTTP_FUNCTIONS = [
    fn for fn in platform_functions() if any(e["Type"] == "HttpApi" for e in fn.events.values())
]


class _Kept(logging.Handler):
    """Keeps the records a function logs."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


SQS_FUNCTIONS = [
    fn for fn in platform_functions() if any(e["Type"] == "SQS" for e in fn.events.values())
]
SCHEDULED_FUNCTIONS = [
    fn
    for fn in platform_functions()
    if any(e["Type"] in {"Schedule", "ScheduleV2"} for e in fn.events.values())
]


def test_every_function_has_a_sample_event() -> None:
    samples = {path.stem for path in (ROOT / "events").glob("*.json")}
    assert samples == {fn.logical_id for fn in platform_functions()}
    assert len(HTTP_FUNCTIONS) + len(SQS_FUNCTIONS) + len(SCHEDULED_FUNCTIONS) == len(
        platform_functions()
    )


def test_scheduled_samples_are_what_their_schedule_sends() -> None:
    for fn in SCHEDULED_FUNCTIONS:
        sample = json.loads((ROOT / "events" / f"{fn.logical_id}.json").read_text())
        for event in fn.events.values():
            sent = json.loads(event["Properties"].get("Input", "{}"))
            assert set(sample) == set(sent), fn.logical_id


@pytest.mark.parametrize("fn", SCHEDULED_FUNCTIONS, ids=lambda fn: fn.logical_id)
def test_scheduled_functions_fail_loudly_when_they_cannot_check(
    fn: FunctionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing is deployed in this moto: the run must fail (Lambda counts an error, the
    # errors alarm fires), never report "nothing found".
    use_test_credentials(monkeypatch)
    module = _configure(fn, monkeypatch)
    event = json.loads((ROOT / "events" / f"{fn.logical_id}.json").read_text())
    with mock_aws(), pytest.raises(ClientError, match="ResourceNotFoundException"):
        module.lambda_handler(event, FakeContext())
    for name in ("index", "runtime"):
        cached = getattr(module, name, None)
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()


@pytest.mark.parametrize("fn", HTTP_FUNCTIONS, ids=lambda fn: fn.logical_id)
def test_every_templated_route_is_served(fn: FunctionSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_credentials(monkeypatch)
    module = _configure(fn, monkeypatch)
    routes = [e["Properties"] for e in fn.events.values() if e["Type"] == "HttpApi"]
    assert routes
    with mock_aws():
        for route in routes:
            event = _http_event(route["Method"], route["Path"])
            response = module.lambda_handler(event, FakeContext())
            assert response["statusCode"] != 404, route
            # Nothing is configured in this moto: each route answers with a known
            # condition (4xx, or 502/503 for the missing configuration), never a 500.
            assert response["statusCode"] != 500, (route, response)
        unknown = module.lambda_handler(_http_event("POST", "/webhooks/unknown"), FakeContext())
    assert unknown["statusCode"] == 404


@pytest.mark.parametrize("fn", SQS_FUNCTIONS, ids=lambda fn: fn.logical_id)
def test_sqs_consumers_never_acknowledge_what_they_did_not_handle(
    fn: FunctionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_credentials(monkeypatch)
    module = _configure(fn, monkeypatch)
    event = json.loads((ROOT / "events" / f"{fn.logical_id}.json").read_text())
    # Nothing is deployed in this moto (or the function is not built yet), so every
    # record fails and Powertools fails the invocation: Lambda deletes nothing and the
    # messages come back after the visibility timeout, then go to the DLQ.
    # (Or the invocation fails before any record: configuration that is not deployed —
    # the shared settings loader's SettingsDocumentError, "unavailable".)
    failures = _Kept()
    module.logger.addHandler(failures)
    try:
        with (
            mock_aws(),
            pytest.raises((BatchProcessingError, GetParameterError, SettingsDocumentError)),
        ):
            module.lambda_handler(event, FakeContext())
    finally:
        module.logger.removeHandler(failures)
    if hasattr(module, "build_runtime"):
        build_runtime.cache_clear()
    elif hasattr(module, "runtime"):
        module.runtime.cache_clear()
    # Each failed record is logged with its message id (the id it keeps in the DLQ) and
    # the error: that line is how `selfservice dlq list` explains a message SQS moved.
    logged = [vars(r) for r in failures.records if r.msg == RECORD_FAILED]
    if logged:  # none when the invocation failed before any record (configuration)
        assert {f["message_id"] for f in logged} == {r["messageId"] for r in event["Records"]}
        assert all(f["error_type"] and f["error"] and f["queue"] for f in logged)


@pytest.mark.parametrize("fn", platform_functions(), ids=lambda fn: fn.logical_id)
def test_a_missing_variable_fails_the_cold_start_by_name(
    fn: FunctionSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _configure(fn, monkeypatch)
    monkeypatch.delenv("EVENT_BUS_NAME")
    event = json.loads((ROOT / "events" / f"{fn.logical_id}.json").read_text())
    with pytest.raises(ConfigurationError, match="missing environment variable EVENT_BUS_NAME"):
        module.lambda_handler(event, FakeContext())
    module.config.cache_clear()


def test_samples_are_valid_json(root: Path) -> None:
    for path in (root / "events").rglob("*.json"):
        json.loads(path.read_text())
