"""`make bench`: run every benchmark and write docs/benchmarks.md from the results."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from bench import (
    burst,
    cold_init,
    iam_overhead,
    intake_warm,
    local_runtime,
    notifier,
    plan_first,
    provisioner_start,
)
from bench.common import ROOT, load_average, machine
from selfservice.local.moto_server import USAGE_LOG_ENV

WARM_TARGET_MS = 5.0
COLD_TARGET_RATIO = 1.10
"""Cold init over the libraries floor (boto3 and the clients, plus the required libraries
as far as the function imports them); the old 1.3x-of-boto3 target is retired."""
MEMORY_TARGET_MIB = 128.0
DELIVERY_TARGET = 200.0
OVERHEAD_TARGET_MS = 100.0
DEMO_TARGET_SECONDS = 60.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _cold_rows(cold: cold_init.ColdInit, in_service: dict[str, float]) -> str:
    rows = []
    for f in cold.functions:
        served = in_service.get(f.function)
        peak = max(f.init_rss_mib, served or 0.0)
        rows.append(
            f"| {f.function} ({f.template}) | {f.init_ms:.0f} ms | {f.floor_ms:.0f} ms "
            f"| {f.libraries_floor_ms:.0f} ms ({f.library_modules} modules) "
            f"| {f.libraries_ratio:.2f}× | {_verdict(f.libraries_ratio <= COLD_TARGET_RATIO)} "
            f"| {f.init_rss_mib:.0f} MiB | {f'{served:.0f} MiB' if served else 'n/a'} "
            f"| {_verdict(peak < MEMORY_TARGET_MIB)} |"
        )
    return "\n".join(rows)


def _stage_rows(stages: cold_init.Breakdown) -> str:
    return "\n".join(f"| {s.stage.label} | {s.stage.kind} | {s.ms:.0f} ms |" for s in stages.stages)


def _stage(stages: cold_init.Breakdown, label: str) -> float:
    return next(s.ms for s in stages.stages if s.stage.label == label)


def _overhead_rows(figures: list[iam_overhead.Overhead]) -> str:
    return "\n".join(
        f"| {f.caller} | `{f.action}` | {f.hook_ms:.3f} ms | {f.off_ms:.2f} ms | {f.on_ms:.2f} ms |"
        for f in figures
    )


def _client_lines(cold: cold_init.ColdInit) -> str:
    return "\n".join(f"  - {f.function}: {', '.join(f.clients) or 'none'}" for f in cold.functions)


def _invocation_summary(storm: burst.BurstFigures) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(storm.invocations.items()))


def main() -> int:
    """Measure, print, and write the document; exit 0 (figures are reported, not gated)."""
    started = datetime.now(UTC)
    load_at_start = load_average()
    print("intake warm path …", flush=True)
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
    print("cold init of every function (fresh interpreters) …", flush=True)
    cold = cold_init.measure(say=lambda line: print(line, flush=True))
    intake = cold.function(cold_init.INTAKE_FUNCTION)
    print("local runtime: delivery, orchestration overhead, make demo …", flush=True)
    local = local_runtime.measure()
    print(
        f"  {local.events_per_second:,.0f} events/s; webhook→StartBuild "
        f"{local.webhook_to_start_build_median_ms:.0f} ms; build→ticket "
        f"{local.build_to_ticket_median_ms:.0f} ms; demo {local.demo_seconds:.0f} s",
        flush=True,
    )
    print(
        f"burst: {burst.TICKETS} tickets x {burst.COPIES} deliveries through the local runtime …",
        flush=True,
    )
    usage_log = ROOT / "build/bench-iam-usage.jsonl"
    usage_log.parent.mkdir(parents=True, exist_ok=True)
    usage_log.unlink(missing_ok=True)
    os.environ[USAGE_LOG_ENV] = str(usage_log)  # the embedded AWS logs each role's decision
    try:
        storm = burst.measure()
    except burst.EmbeddedAwsStoppedError as error:
        # On a shared machine another session's `pkill -f selfservice.local.moto_server`
        # ends ours too; the run is void, so run it once more from the start.
        print(f"  {error}; running the burst again", flush=True)
        storm = burst.measure()
    print(
        f"  {storm.accepted} accepted in {storm.accept_seconds:.1f} s; {storm.builds} builds; "
        f"{storm.written_back} written back after {storm.written_back_seconds:.0f} s",
        flush=True,
    )
    os.environ.pop(USAGE_LOG_ENV, None)
    decisions = len(usage_log.read_text().splitlines()) if usage_log.is_file() else 0
    print("IAM enforcement: cost per request of the embedded AWS …", flush=True)
    overhead = iam_overhead.measure()
    role_hook = max(f.hook_ms for f in overhead if f.caller == "role")
    print(f"  {role_hook:.2f} ms per role request; {decisions:,} role decisions in the burst")
    print(
        "planning first: the real ec2-app module, apply vs plan -out + apply tfplan …", flush=True
    )
    first = plan_first.measure()
    print(f"  {first.extra_seconds:+.1f} s ({100 * first.ratio:+.1f} % of a build)", flush=True)
    document = f"""# Benchmarks

<!-- Written by `make bench` (bench/run.py). Do not edit the figures by hand. -->

Measured {started:%Y-%m-%d %H:%M} UTC on: {machine()}.
One-minute load average when the run started and ended: {load_at_start:.1f} and
{load_average():.1f} (anything else running on the machine slows every figure below).
Reproduce with `make bench` from a fresh clone (this run took
{(datetime.now(UTC) - started).total_seconds() / 60:.0f} min).

## Intake

| figure | value | target | verdict |
|---|---|---|---|
| warm handler time per webhook, median (AWS calls stubbed) | {warm.median_ms:.3f} ms | < {WARM_TARGET_MS:g} ms | {_verdict(warm.median_ms < WARM_TARGET_MS)} |
| warm handler time per webhook, p95 / p99 | {warm.p95_ms:.3f} / {warm.p99_ms:.3f} ms | | |
| warm throughput per core (1 / median) | {warm.per_core_per_second:,.0f} webhooks/s | | |
| cold init of the handler (median of {intake.runs}) | {intake.init_ms:.0f} ms | | |
| boto3 floor: import boto3 + create the same clients | {intake.floor_ms:.0f} ms | | |
| libraries floor: the boto3 floor + the required libraries as the handler imports them | {intake.libraries_floor_ms:.0f} ms | | |
| cold init / libraries floor | {intake.libraries_ratio:.2f}× | ≤ {COLD_TARGET_RATIO:.2f}× | {_verdict(intake.libraries_ratio <= COLD_TARGET_RATIO)} |
| cold init / boto3 floor (the retired 1.3× target's ratio, for comparison) | {intake.ratio:.2f}× | | |
| first request after init (AWS stubbed) | {intake.first_request_ms or 0:.1f} ms | | |

How they are measured:

- **Warm** ({warm.count} deliveries after a warm-up): the real `lambda_handler` —
  Powertools logger, metrics flush, routing, HMAC verification, normalization, schema
  validation, policy, CloudEvent construction — with in-memory adapters instead of SSM,
  Secrets Manager, DynamoDB and EventBridge. Every delivery is a distinct signed
  ticket, so each takes the full accept-and-publish path. Tracing is off (no daemon).
- **Cold init**: `WebhookFunction`'s row of [every function's cold init](#cold-init-and-memory-every-function),
  measured as described there.
- **First request**: one sampled, traced delivery through the handler right after init,
  AWS stubbed in memory; it shows whether work was merely moved out of init.

Where intake's cold init goes, stage by stage (`bench/cold_init.py`, medians of
{cold.intake_stages.runs} fresh interpreters with the function's environment; a stage is charged
only for what it adds, libraries before the code using them):

| stage | whose cost | median |
|---|---|---|
{_stage_rows(cold.intake_stages)}
| **the floor** (separate runs: `import boto3` + the same 4 clients) | floor | {cold.intake_stages.floor_ms:.0f} ms |
| **the required libraries' stages, summed** | library | {cold.intake_stages.total("library"):.0f} ms |

**The target** is judged against the libraries floor: the boto3 floor plus the libraries
this project is required to use (pydantic, Powertools, the X-Ray SDK, the CloudEvents
SDK), imported as far as the handler imports them. Those libraries alone take the boto3
floor to **{cold.intake_stages.libraries_ratio:.2f}×** (pydantic's import alone is
{_stage(cold.intake_stages, "pydantic"):.0f} ms), which is why the retired target of 1.3×
of the boto3 floor could not be met without dropping one. The platform's own share is
what the init adds to the libraries floor: the contracts and intake's modules (model
definitions for the most part), the configuration and the adapters.

What was already cut: every library component used to create its own boto3 session,
each re-reading botocore's endpoint data (~22 ms a time) — intake shares one session
for all its clients (−150 ms), and in Lambda the X-Ray SDK samples locally and creates
no clients. Parse-only code (the Powertools parser models, the event-union validator)
is not imported by producers, contract models are compiled on first use, model
annotations are not postponed (pydantic would re-evaluate each one from its string),
and `PYDANTIC_DISABLE_PLUGINS` stops pydantic scanning every installed distribution
for plugins at the first model.

## Cold init and memory, every function

| function (template) | cold init | boto3 floor | libraries floor | init / libraries floor | ≤ {COLD_TARGET_RATIO:.2f}× | peak RSS after init | peak RSS in service | < {MEMORY_TARGET_MIB:g} MiB |
|---|---|---|---|---|---|---|---|---|
{_cold_rows(cold, storm.peak_rss_mib)}

How they are measured (`bench/cold_init.py`; medians of {cold.runs} runs per function):

- **The functions** are the templates' (`template.yaml` and the stacks it nests), each
  started as Lambda starts it: a fresh interpreter (start-up excluded) whose `sys.path`
  is the function's `CodeUri` and layers, whose environment is the template's —
  resolved by deploying the templates into an embedded AWS, as the local runtime does
  — plus what the Lambda runtime sets, `LAMBDA_TASK_ROOT` included (so Powertools'
  Tracer is enabled and the X-Ray SDK uses its Lambda context and local sampling), and
  nothing inherited from the benchmark's own process.
- **Cold init**: importing the `Handler` module, then building what every handler
  module builds once per execution environment and caches: its configuration and its
  adapters with their AWS clients (`{"`, `".join(cold_init.BUILDERS)}`, whichever the
  module defines). The handlers build these lazily, so the first request would
  otherwise pay for them. AWS calls made while building (the notifier reads its
  configuration document from SSM) go to the embedded AWS on 127.0.0.1.
- **Floor**: `import boto3` and one session creating exactly the clients a discovery
  run recorded during that init (botocore patched to list every client created,
  including those a library creates for itself). The **libraries floor** adds the
  required libraries (`{"`, `".join(cold_init.REQUIRED_LIBRARIES)}`) exactly as far as the
  init imports them: every module of theirs the discovery run found in `sys.modules`,
  imported in the same order, and none of the platform's. The target, ≤ {COLD_TARGET_RATIO:.2f}×,
  is the init over the libraries floor: what the platform's own code and configuration
  add to what any function using these libraries pays. Floor and init runs alternate,
  so drift affects all alike. The clients:
{_client_lines(cold)}
- **Peak RSS after init**: the interpreter's peak resident set size (`VmHWM`) at the end
  of the init above. (`ru_maxrss` would not do: Linux carries it across `exec`, so a
  child started from the benchmark reports the benchmark's own peak.)
- **Peak RSS in service**: `VmHWM` of each function's execution environment (its worker
  process in the local runtime) after [the burst](#burst-through-the-local-runtime),
  then one run of each schedule and the ops API's sample command (a real command on an
  eligible instance), so every function has served: invocations
  {_invocation_summary(storm)}.
  Figures in MiB; Lambda's memory setting is in MiB as well.

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

Where the time goes (traced once while writing this page, not re-measured): each leg
is a chain of sequential calls to the embedded AWS over loopback HTTP — on the first,
intake's idempotency record and PutEvents, the rule's delivery to SQS, the
provisioner's ledger reads and writes, the tfvars document and StartBuild; on the
second, the ledger update, PutEvents, SQS, the notifier's deduplication record and
the HTTP write to the ITSM — 2–20 ms each depending on the machine's load. A poller's
long poll returns as soon as a message arrives, so a queue crossing costs a round trip,
not the poll's wait. The first ticket also pays every function's cold start, which is
why the figure is a median. Two costs found earlier are gone: the provisioner's queues
no longer have a batching window (`MaximumBatchingWindowInSeconds: 1` added up to a
second to each leg), and moto's `SendMessage` no longer reads the clock once per
message already queued (its cost grew with the queue's depth).

## Burst through the local runtime

| figure | value | target | verdict |
|---|---|---|---|
| deliveries sent: distinct tickets × copies of each, concurrently | {storm.tickets} × {storm.copies} = {storm.tickets * storm.copies:,} | | |
| answered 202 Accepted | {storm.accepted:,} | all | {_verdict(storm.accepted == storm.tickets * storm.copies)} |
| later copies answered with their ticket's original request id | {storm.duplicates_with_original_id:,} | {storm.tickets * (storm.copies - 1):,} | {_verdict(storm.duplicates_with_original_id == storm.tickets * (storm.copies - 1))} |
| distinct request ids | {storm.distinct_request_ids:,} | {storm.tickets} | {_verdict(storm.distinct_request_ids == storm.tickets)} |
| provisioning requests (builds the local CodeBuild was asked for) | {storm.builds:,} | exactly {storm.tickets} | {_verdict(storm.builds == storm.tickets)} |
| tickets in the ledger | {storm.ledger_entries:,} | {storm.tickets} | {_verdict(storm.ledger_entries == storm.tickets)} |
| tickets written back ("finished successfully", terminal) | {storm.written_back:,} | {storm.tickets} | {_verdict(storm.written_back == storm.tickets)} |
| time to accept every delivery | {storm.accept_seconds:,.1f} s | | |
| time until the last StartBuild | {storm.start_build_seconds:,.1f} s | | |
| time until every ticket is written back | {storm.written_back_seconds:,.0f} s | | |
| one build (the whole buildspec: install checks, tfvars download, init, apply, outputs upload), median | {storm.terraform_median_seconds:.1f} s | | |
| builds run at once by the local CodeBuild (default: the project's `ConcurrentBuildLimit`, capped at the machine's cores, at least 2) | {storm.build_concurrency} | | |

How it is measured (`bench/burst.py`): {storm.tickets} distinct ServiceNow tickets (the
demo's request, approved, `dev`, so no approval step), each sent {storm.copies} times
as signed webhooks by {burst.SENDERS} concurrent clients to the local webhook API, the
copies of a ticket queued side by side so they are in flight together; a copy carries
the same webhook id and body, as a sender's retry does. Times are counted from the
first delivery sent. Provisioning requests are the builds the local CodeBuild was asked
for, deduplicated as CodeBuild does by the provisioner's idempotency token; a ticket
is written back when the ITSM sandbox receives its terminal "finished successfully"
work note. The local runtime runs one execution environment
per function, so concurrent deliveries queue at the webhook function rather than race
inside it; the race between execution environments is
`tests/intake/test_concurrent_deliveries.py`'s.

The product is `ec2-app`, with its Terraform module replaced for this run by a
stand-in (`bench/standin/ec2-app`: the real module's variables, the S3 backend with a
per-ticket state and lock file, one `terraform_data` resource, no provider) in a
scratch copy of the checkout; everything else — intake's schema and policy, the
ledger, the tfvars document, the real buildspec, the notifier — is unchanged. The real
module creates some thirty resources through the AWS provider per ticket, and
{storm.tickets} of those on this machine would measure the provider and moto, not the
platform. The stand-in's apply is still a full buildspec run per ticket; of that,
Terraform's own commands are the smaller part and the buildspec's Python steps (the
`import boto3` check, the tfvars download, the outputs upload, each a fresh
interpreter importing boto3) most of the rest (profiled while writing this page).

## IAM enforcement

Every request to the embedded AWS is authenticated and authorized against the
templates' policies ([iam-enforcement.md](iam-enforcement.md)); the demo and the burst
above ran with it, as everything local does. What it costs per request, measured in
process (`bench/iam_overhead.py`: moto without sockets, so the figure is the
enforcement's own CPU time; the hook's median over 200 requests, the whole request as
the best of five batches):

| caller | action | enforcement per request | request, enforcement off | request, on |
|---|---|---|---|---|
{_overhead_rows(overhead)}

During the burst the functions, the builds and Terraform made **{decisions:,}**
authorized requests as their roles (the usage log; the tooling's own calls as root are
not logged). At {role_hook:.2f} ms each, enforcement added about
**{decisions * role_hook / 1000:,.1f} s of CPU** to a burst whose deliveries took
{storm.written_back_seconds:,.0f} s to be written back, and the demo stays at
{local.demo_seconds:.0f} s against its {DEMO_TARGET_SECONDS:g} s goal.

{plan_first.section(first)}
"""
    (ROOT / "docs/benchmarks.md").write_text(document)
    print(f"wrote {ROOT / 'docs/benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
