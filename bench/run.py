"""`make bench`: run every benchmark and write docs/benchmarks.md from the results."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from bench import cold_init, intake_warm, local_runtime, notifier, provisioner_start
from bench.common import ROOT, machine

WARM_TARGET_MS = 5.0
COLD_TARGET_RATIO = 1.3
DELIVERY_TARGET = 200.0
OVERHEAD_TARGET_MS = 100.0
DEMO_TARGET_SECONDS = 60.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def main() -> int:
    """Measure, print, and write the document; exit 0 (figures are reported, not gated)."""
    print("intake warm path …", flush=True)
    for name, value in cold_init.ENVIRONMENT.items():
        # The warm figure is taken untraced (no daemon): not "in Lambda" for the tracer.
        if name not in {"AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT"}:
            os.environ.setdefault(name, value)
    warm = intake_warm.measure()
    print(f"  median {warm.median_ms:.3f} ms, p99 {warm.p99_ms:.3f} ms", flush=True)
    print("provisioner: request event to StartBuild …", flush=True)
    start = provisioner_start.measure()
    print(f"  median {start.median_ms:.3f} ms, p95 {start.p95_ms:.3f} ms", flush=True)
    print("notifier: write-backs and overhead …", flush=True)
    notify = notifier.measure()
    print(
        f"  {notify.writes_per_second:,.0f} write-backs/s; overhead median "
        f"{notify.overhead_median_ms:.3f} ms",
        flush=True,
    )
    print("intake cold init (fresh interpreters) …", flush=True)
    cold = cold_init.measure()
    print(
        f"  handler {cold.handler_ms:.0f} ms vs floor {cold.floor_ms:.0f} ms "
        f"= {cold.ratio:.2f}x; first request {cold.first_request_ms:.1f} ms",
        flush=True,
    )
    print("local runtime: delivery, orchestration overhead, make demo …", flush=True)
    local = local_runtime.measure()
    print(
        f"  {local.events_per_second:,.0f} events/s; webhook→StartBuild "
        f"{local.webhook_to_start_build_median_ms:.0f} ms; build→ticket "
        f"{local.build_to_ticket_median_ms:.0f} ms; demo {local.demo_seconds:.0f} s",
        flush=True,
    )
    document = f"""# Benchmarks

<!-- Written by `make bench` (bench/run.py). Do not edit the figures by hand. -->

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on: {machine()}.
Reproduce with `make bench` from a fresh clone.

## Intake

| figure | value | target | verdict |
|---|---|---|---|
| warm handler time per webhook, median (AWS calls stubbed) | {warm.median_ms:.3f} ms | < {WARM_TARGET_MS:g} ms | {_verdict(warm.median_ms < WARM_TARGET_MS)} |
| warm handler time per webhook, p95 / p99 | {warm.p95_ms:.3f} / {warm.p99_ms:.3f} ms | | |
| warm throughput per core (1 / median) | {warm.per_core_per_second:,.0f} webhooks/s | | |
| cold init of the handler (median of {cold.runs}) | {cold.handler_ms:.0f} ms | | |
| floor: import boto3 + create the same clients | {cold.floor_ms:.0f} ms | | |
| cold init / floor | {cold.ratio:.2f}× | ≤ {COLD_TARGET_RATIO}× | {_verdict(cold.ratio <= COLD_TARGET_RATIO)} |
| first request after init (AWS stubbed) | {cold.first_request_ms:.1f} ms | | |

How they are measured:

- **Warm** ({warm.count} deliveries after a warm-up): the real `lambda_handler` —
  Powertools logger, metrics flush, routing, HMAC verification, normalization, schema
  validation, policy, CloudEvent construction — with in-memory adapters instead of SSM,
  Secrets Manager, DynamoDB and EventBridge. Every delivery is a distinct signed
  ticket, so each takes the full accept-and-publish path. Tracing is off (no daemon).
- **Cold init**: fresh interpreters, start-up excluded, in Lambda's environment as the
  libraries see it: `LAMBDA_TASK_ROOT` is set, so Powertools' Tracer is enabled and the
  X-Ray SDK uses its Lambda context and local sampling (no X-Ray clients of its own).
  The handler's init imports the handler module, validates its configuration and builds
  its adapters. The floor creates exactly the clients a discovery run recorded during
  that init: {", ".join(cold.clients)}. Runs alternate so drift affects both alike.
- **First request**: one sampled, traced delivery through the handler right after init,
  AWS stubbed; it shows whether work was merely moved out of init.

Where the cold-init time goes (per-stage timing of one init on this machine): every
library component used to create its own boto3 session, each re-reading botocore's
endpoint data (~22 ms a time) — intake now shares one session for all its clients
(−150 ms), and in Lambda the X-Ray SDK samples locally and creates no clients. What
remains above the floor (~200 ms) is import and definition cost that the first request
needs anyway: pydantic itself (~65 ms), Powertools (~50 ms, ~35 of them the event
handler package, which imports every resolver and every event data class), the X-Ray
SDK and its botocore patch (~20 ms), and the platform's own modules (~70 ms: the
contracts ~30, intake's settings ~17, the ServiceNow and Jira payload models ~18),
about 20 ms of which is compiling their source (Lambda's /var/task is read-only and
the build ships no bytecode). Parse-only code (the Powertools parser models, the
event-union validator) is no longer imported by producers, contract models are
compiled on first use, and model annotations are no longer postponed (pydantic would
re-evaluate each one from its string).

## Provisioner

| figure | value |
|---|---|
| request event on the queue → StartBuild called, median ({start.count} events) | {start.median_ms:.3f} ms |
| same, p95 | {start.p95_ms:.3f} ms |

Measured in-process through the real `RequestConsumerFunction` handler (SQS batch of
one, envelope and contract parsing, per-event deduplication, the ledger decision and
its writes, the tfvars document) up to the StartBuild call, with typed in-memory
adapters in place of DynamoDB, S3, EventBridge and CodeBuild: the platform's own
overhead, without network latency. Terraform's own time is not part of it.

## Notifier

| figure | value |
|---|---|
| write-backs per second to a local ServiceNow ({notify.writes} sequential writes) | {notify.writes_per_second:,.0f} |
| the notifier's own overhead per event, median ({notify.overhead_events} events) | {notify.overhead_median_ms:.3f} ms |
| same, p95 | {notify.overhead_p95_ms:.3f} ms |

Throughput: the real ServiceNow writer (urllib3, basic auth, JSON) and the write-back
service write distinct events one after another to the ITSM sandbox on 127.0.0.1, a
threaded `http.server` in the same process — so the figure is bounded by that server,
not by a real instance (ServiceNow's own rate limits apply there). Overhead: the real
`WriteBackFunction` handler (SQS batch of one, parsing, per-event deduplication,
rendering, the ticket-updated event) with a writer that answers at once.

## Local runtime

| figure | value | target | verdict |
|---|---|---|---|
| EventBridge → SQS delivery on the embedded AWS ({local_runtime.DELIVERY_EVENTS} events) | {local.events_per_second:,.0f} events/s | ≥ {DELIVERY_TARGET:g} events/s | {_verdict(local.events_per_second >= DELIVERY_TARGET)} |
| webhook sent → StartBuild received, median of {local_runtime.TICKETS} tickets | {local.webhook_to_start_build_median_ms:,.0f} ms | < {OVERHEAD_TARGET_MS:g} ms | {_verdict(local.webhook_to_start_build_median_ms < OVERHEAD_TARGET_MS)} |
| build finished → ticket updated, median of {local_runtime.TICKETS} tickets | {local.build_to_ticket_median_ms:,.0f} ms | < {OVERHEAD_TARGET_MS:g} ms | {_verdict(local.build_to_ticket_median_ms < OVERHEAD_TARGET_MS)} |
| `make demo` wall time (dependencies installed) | {local.demo_seconds:.0f} s | < {DEMO_TARGET_SECONDS:g} s | {_verdict(local.demo_seconds < DEMO_TARGET_SECONDS)} |

How they are measured: see `bench/local_runtime.py`. The two orchestration legs run
through the real platform (every function in its worker process, the real buildspec
and Terraform in the local CodeBuild) and exclude Terraform's own time: the first leg
ends when the local CodeBuild receives StartBuild, the second starts when the build's
state change is put on the bus and ends when the ITSM sandbox receives the "finished
successfully" work note.

Where the time goes (profiled while writing this page): each leg crosses two or three
SQS queues, and each crossing waits for a poller's long poll (1 s) and, on the
provisioner's queues, the template's `MaximumBatchingWindowInSeconds: 1`, which the
local pollers honour as Lambda does. Delivery on the embedded AWS is bounded by moto's
SQS `SendMessage`, which computes every queue attribute, including counts that scan
the whole queue, on each send (cost grows with the queue's depth); the undrained
queue of this benchmark is its worst case.
"""
    (ROOT / "docs/benchmarks.md").write_text(document)
    print(f"wrote {ROOT / 'docs/benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
