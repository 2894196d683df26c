"""A Lambda context with what Powertools reads from the real one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class FakeContext:
    """Lambda context stand-in (remaining time is fixed at 30 s)."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


TRACE_HEADER = "Root=1-6740a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
"""An X-Ray trace header, as Lambda gives a sampled invocation."""


def traced_invocation(monkeypatch: pytest.MonkeyPatch) -> str:
    """The invocation runs under :data:`TRACE_HEADER` (``_X_AMZN_TRACE_ID``, as Lambda
    sets it); returns the header."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)
    return TRACE_HEADER
