"""A settings document in SSM without the embedded AWS: a stubbed SSM client, and
Powertools' parameter-cache clock moved by hand (one helper for every service's
composition-root test of the shared 60 s loader)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from botocore.config import Config
from botocore.stub import Stubber

from selfservice_runtime import settings_document

__all__ = ["START", "Clock", "StubbedSession", "stubbed_session"]

START = datetime(2026, 12, 2, 9, 0, 0)


class Clock:
    """Stands in for ``datetime`` in Powertools' parameter cache, which reads ``now()``."""

    current = START

    @classmethod
    def now(cls) -> datetime:
        return cls.current


def _client(name: str, config: Config | None = None) -> Any:
    return boto3.client(
        name,  # type: ignore[call-overload]
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


class StubbedSession:
    """A boto3 session that records each client it makes; SSM answers from a stub."""

    region_name = "us-east-1"

    def __init__(self, parameter: str, *, one_client_each: bool = False) -> None:
        self.parameter = parameter
        self.one_client_each = one_client_each
        """Fail on a second client of one service (a composition root makes each once)."""
        self.configs: dict[str, Config | None] = {}
        self.ssm = _client("ssm")
        self.stub = Stubber(self.ssm)

    def client(self, name: str, config: Config | None = None) -> Any:
        assert not (self.one_client_each and name in self.configs), f"a second {name} client"
        self.configs[name] = config
        return self.ssm if name == "ssm" else _client(name, config)

    def serve(self, document: str) -> None:
        """The next GetParameter answers ``document``."""
        self.stub.add_response(
            "get_parameter",
            {"Parameter": {"Name": self.parameter, "Type": "String", "Value": document}},
            {"Name": self.parameter, "WithDecryption": False},
        )


@contextmanager
def stubbed_session(
    monkeypatch: pytest.MonkeyPatch, parameter: str, *, one_client_each: bool = False
) -> Iterator[StubbedSession]:
    """The session, the clock at :data:`START` and an empty loader cache; every answer
    served must have been asked for."""
    Clock.current = START
    monkeypatch.setattr(parameters_base, "datetime", Clock)
    settings_document.clear_cache()
    stubbed = StubbedSession(parameter, one_client_each=one_client_each)
    try:
        with stubbed.stub:
            yield stubbed
        stubbed.stub.assert_no_pending_responses()
    finally:
        settings_document.clear_cache()
