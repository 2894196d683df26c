"""The notifier's composition root: one session, adaptive retries, a settings document
that is read again after the shared loader's cache expires (no embedded AWS: stubbed
clients, and Powertools' cache clock moved by hand)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

from notifier.environment import WriteBackConfig
from notifier.runtime import Runtime, build_runtime
from selfservice.templates import Template
from selfservice_runtime import settings_document
from selfservice_runtime.observability import Metric
from tests.lambda_context import FakeContext
from tests.settings_stub import START, Clock, stubbed_session
from tests.settings_stub import StubbedSession as Session

PARAMETER = "/notifier/config"
CONTEXT: Any = FakeContext()  # what Powertools reads of a LambdaContext


@pytest.fixture
def config(platform: Template) -> WriteBackConfig:
    """WriteBackFunction's environment as the template gives it."""
    values = {"NOTIFIER_CONFIG_PARAMETER": PARAMETER}
    return WriteBackConfig.model_validate(
        platform.function_environment("WriteBackFunction", values)
    )


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    with stubbed_session(monkeypatch, PARAMETER, one_client_each=True) as stubbed:
        yield stubbed


def _runtime(session: Session, config: WriteBackConfig) -> Runtime:
    def ignore(metric: Metric) -> None:
        return None

    return build_runtime(config, ignore, session=session)


def _attempts(runtime: Runtime) -> int:
    return runtime.delivery.services().policy.attempts


def test_a_changed_document_is_used_once_the_loaders_cache_expires(
    session: Session, config: WriteBackConfig
) -> None:
    runtime = _runtime(session, config)
    session.serve(json.dumps({"retries": {"attempts": 2}}))
    runtime.start_batch(CONTEXT)
    assert _attempts(runtime) == 2

    # The platform team edits the document: within the cache's minute, the old one holds
    # (no GetParameter: the stub would refuse an unexpected call) ...
    Clock.current = START + timedelta(seconds=settings_document.CACHE_SECONDS - 1)
    runtime.start_batch(CONTEXT)
    assert _attempts(runtime) == 2

    # ... and after it, the next batch reads and uses the new one, with no new cold start.
    session.serve(json.dumps({"retries": {"attempts": 5}}))
    Clock.current = START + timedelta(seconds=settings_document.CACHE_SECONDS + 1)
    runtime.start_batch(CONTEXT)
    assert _attempts(runtime) == 5


def test_an_unchanged_document_keeps_the_writers_and_their_cached_credentials(
    session: Session, config: WriteBackConfig
) -> None:
    runtime = _runtime(session, config)
    session.serve(json.dumps({"retries": {"attempts": 3}}))
    runtime.start_batch(CONTEXT)
    first = runtime.delivery.services()
    session.serve(json.dumps({"retries": {"attempts": 3}}))
    Clock.current = START + timedelta(seconds=settings_document.CACHE_SECONDS + 1)
    runtime.start_batch(CONTEXT)
    assert runtime.delivery.services() is first  # re-read, same document: nothing rebuilt


def test_an_invalid_document_fails_the_batch_not_a_looser_default(
    session: Session, config: WriteBackConfig
) -> None:
    runtime = _runtime(session, config)
    session.serve(json.dumps({"jira": {"mode": "email"}}))  # email mode without its addresses
    with pytest.raises(settings_document.SettingsDocumentError) as raised:
        runtime.start_batch(CONTEXT)
    assert raised.value.reason == "invalid"


def test_every_client_comes_from_one_session_with_adaptive_retries(
    session: Session, config: WriteBackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_second_session(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a second boto3 session")

    monkeypatch.setattr(boto3.session, "Session", no_second_session)
    _runtime(session, config)
    assert {"events", "sqs", "ssm", "secretsmanager"} <= set(session.configs)
    for name, client_config in session.configs.items():
        if name == "dynamodb":
            continue  # Powertools' idempotency store makes its own (with its defaults)
        assert client_config is not None, name
        retries = dict(getattr(client_config, "retries", None) or {})
        # botocore rewrites max_attempts (retries) as total_max_attempts (calls) once used.
        attempts = retries.get("max_attempts", retries.get("total_max_attempts", 0) - 1)
        assert (retries["mode"], attempts) == ("adaptive", 10), name
