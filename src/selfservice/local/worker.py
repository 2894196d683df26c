"""One function's execution environment: a child process, as Lambda gives each function.

The parent writes a setup line (code path, layers, handler, environment), then one
invocation per line; the worker answers one line each. Function output (Powertools logs,
metrics) goes to stderr, so the protocol on stdout stays clean.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

__all__ = ["main"]


class _Context:
    def __init__(self, setup: dict[str, Any], request_id: str, deadline_ms: int) -> None:
        name = setup["name"]
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.log_group_name = setup.get("log_group", f"/aws/lambda/{name}")
        self.log_stream_name = setup.get("log_stream", "local")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        import time  # noqa: PLC0415

        return max(0, self._deadline_ms - int(time.time() * 1000))


def main() -> int:
    """Serve invocations until stdin closes."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # everything the function prints goes to stderr
    setup = json.loads(sys.stdin.readline())
    os.environ.clear()
    os.environ.update(setup["environment"])
    for path in reversed(setup["paths"]):
        sys.path.insert(0, path)
    module_name, _, attribute = setup["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = _Context(setup, request["request_id"], request["deadline_ms"])
        try:
            result: Any = handler(request["event"], context)
            answer = {"result": result}
        except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda does
            answer = {
                "error": type(exc).__name__,
                "message": str(exc)[:2000],
                "trace": traceback.format_exc()[-4000:],
            }
            # Lambda's runtime logs an unhandled error in the function's log as well.
            sys.stderr.write(f"[ERROR] {type(exc).__name__}: {exc}\n{answer['trace']}")
            sys.stderr.flush()
        protocol.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
