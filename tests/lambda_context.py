"""A Lambda context with what Powertools reads from the real one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeContext:
    """Lambda context stand-in (remaining time is fixed at 30 s)."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
