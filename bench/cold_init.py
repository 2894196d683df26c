"""Cold init of a handler versus the floor: importing boto3 and creating the same clients.

Each figure is the median of fresh interpreters (interpreter start-up excluded). The
handler's init is what Lambda's init phase runs: importing the handler module with
tracing enabled (as in Lambda), loading its configuration, and building its adapters
and the AWS clients they use. "The same clients" are recorded, not declared: a
discovery run patches botocore to list every client the handler's init creates
(including any the libraries create for themselves), and the floor creates exactly
those. The first request (AWS stubbed, traced as Lambda traces it) is reported beside
it, so work moved out of init would show up there.

The environment is Lambda's as far as the libraries can tell: both Powertools' Tracer
and the X-Ray SDK recognise Lambda by ``LAMBDA_TASK_ROOT`` (which the runtime always
sets). Without it the Tracer disables itself and the X-Ray SDK prepares centralized
sampling (two X-Ray clients, each in a new botocore session) that a function in
Lambda never builds — a different, slower init than the one deployed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from bench.common import ROOT, median

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    # Set by the Lambda runtime (the function's code); what Powertools' Tracer and the
    # X-Ray SDK check to know they run in Lambda (tracer enabled, Lambda sampling).
    "LAMBDA_TASK_ROOT": str(ROOT / "services/intake"),
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "intake",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_METRICS_NAMESPACE": "selfservice",
    "EVENT_BUS_NAME": "selfservice-bus",
    "IDEMPOTENCY_TABLE_NAME": "intake-idempotency",
    "INTAKE_CONFIG_PARAMETER": "/selfservice/intake/config",
    "SERVICENOW_HMAC_SECRET_ID": "sn-hmac",
    "SERVICENOW_BASIC_AUTH_SECRET_ID": "sn-basic",
    "JIRA_WEBHOOK_SECRET_ID": "jira-webhook",
    "JIRA_AUTOMATION_TOKEN_SECRET_ID": "jira-token",
}

# Lambda's init phase for WebhookFunction: import, configuration, and the adapters
# with every AWS client they use.
HANDLER_INIT = """
from intake.handlers import webhook
webhook.config()
webhook.adapters()
"""

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
"""A sampled invocation: the first request records its trace as it would in Lambda."""

FIRST_REQUEST = """
import json, os, sys
sys.path.insert(0, {root!r})
from bench.intake_warm import stub_handler, signed_events
events = signed_events(1)
stub_handler()
# The runtime sets each invocation's trace header before calling the handler.
os.environ["_X_AMZN_TRACE_ID"] = {trace_header!r}
devnull = os.open(os.devnull, os.O_WRONLY); saved = os.dup(1); os.dup2(devnull, 1)
t = time.perf_counter()
response = webhook.lambda_handler(events[0], Context())
first = time.perf_counter() - t
os.dup2(saved, 1)
assert response["statusCode"] == 202, response
"""

TIMED = """
import time
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
{after}
import json
print("RESULT " + json.dumps({{"seconds": elapsed{extra}}}))
"""

DISCOVER = """
import botocore.session, json
created = []
original = botocore.session.Session.create_client
def recording(self, service_name, *args, **kwargs):
    created.append(service_name)
    return original(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording
{body}
print("RESULT " + json.dumps(created))
"""


@dataclass(frozen=True)
class ColdInit:
    """Medians in milliseconds and the clients the handler's init creates."""

    clients: list[str]
    floor_ms: float
    handler_ms: float
    first_request_ms: float
    runs: int

    @property
    def ratio(self) -> float:
        """Handler init over the floor."""
        return self.handler_ms / self.floor_ms


def _run(code: str) -> object:
    # The function's code and the contracts layer of this checkout (in Lambda: /var/task
    # and /opt/python), ahead of whatever an editable install points at.
    path = os.pathsep.join(str(ROOT / part) for part in ("services/intake", "schemas"))
    env = {**os.environ, **ENVIRONMENT, "PYTHONPATH": path}
    completed = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    line = next(x for x in completed.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def measure(runs: int = 15) -> ColdInit:
    """Alternate floor and handler runs so drift affects both alike."""
    clients = _run(DISCOVER.format(body=HANDLER_INIT))
    assert isinstance(clients, list)
    floor_body = "import boto3\nsession = boto3.session.Session()\n" + "".join(
        f"session.client({name!r})\n" for name in clients
    )
    context = (
        "class Context:\n"
        "    function_name = 'bench'; memory_limit_in_mb = 512; aws_request_id = 'r'\n"
        "    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:bench'\n"
        "    def get_remaining_time_in_millis(self): return 30000\n"
    )
    floors, handlers, firsts = [], [], []
    for _ in range(runs):
        floor = _run(TIMED.format(body=floor_body, after="", extra=""))
        handler = _run(
            TIMED.format(
                body=HANDLER_INIT,
                after=context + FIRST_REQUEST.format(root=str(ROOT), trace_header=TRACE_HEADER),
                extra=', "first": first',
            )
        )
        assert isinstance(floor, dict) and isinstance(handler, dict)
        floors.append(floor["seconds"] * 1000)
        handlers.append(handler["seconds"] * 1000)
        firsts.append(handler["first"] * 1000)
    return ColdInit(
        clients=sorted(clients),
        floor_ms=median(floors),
        handler_ms=median(handlers),
        first_request_ms=median(firsts),
        runs=runs,
    )
