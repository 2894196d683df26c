"""A burst through the local runtime: distinct tickets, each delivered several times at once.

Every delivery is a signed ServiceNow webhook sent to the local webhook API (the real
intake handler in its worker, the embedded AWS behind it); the copies of one ticket
carry the same webhook id and body, as a sender's retries do, and are in flight
together. The platform runs unchanged — intake's schema and policy, the ledger, the
provisioner's tfvars and StartBuild, the real buildspec in the local CodeBuild, the
notifier writing to the ITSM sandbox — except for one thing: the ``ec2-app`` product's
Terraform module is replaced by a stand-in with the same variables and one
``terraform_data`` resource (``bench/standin/ec2-app``), so the figure measures the
platform, not the AWS provider creating thirty resources per ticket in moto.

Counted: the answers (202 and their request ids), the provisioning requests (builds the
local CodeBuild was asked for, deduplicated by idempotency token; the ledger's
entries), and the tickets whose terminal "finished successfully" write-back arrived.
Timed from the first delivery sent: every delivery answered, and every ticket written
back.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, median
from selfservice.develop.demo import Webhooks, _ledger
from selfservice.local.platform import LocalPlatform

TICKETS = 200
COPIES = 5
SENDERS = 50
"""Concurrent HTTP clients sending the deliveries."""
STANDIN = ROOT / "bench/standin/ec2-app"
PRODUCT_MODULE = "services/provisioner/products/ec2-app/terraform"
COPIED = ("template.yaml", "sam", "services", "schemas", "config")
SUCCESS_NOTE = "finished successfully"


@dataclass(frozen=True)
class Answer:
    """One delivery's answer."""

    ticket: int
    status: int
    request_id: str | None
    received_at: float


@dataclass(frozen=True)
class BurstFigures:
    """What :func:`measure` reports (seconds are counted from the first delivery sent)."""

    tickets: int
    copies: int
    accepted: int
    """Deliveries answered 202."""
    duplicates_with_original_id: int
    """Answers after a ticket's first that carry that first answer's request id."""
    distinct_request_ids: int
    builds: int
    """Builds the local CodeBuild was asked for (distinct idempotency tokens)."""
    ledger_entries: int
    written_back: int
    """Tickets whose terminal "finished successfully" work note the sandbox received."""
    accept_seconds: float
    start_build_seconds: float
    """Until the last StartBuild arrived."""
    written_back_seconds: float
    terraform_median_seconds: float
    """One build's buildspec (init, plan, apply, output) on this machine, median."""
    build_concurrency: int
    peak_rss_mib: dict[str, float]
    """Each function's execution environment (worker process): peak RSS after the burst."""
    invocations: dict[str, int]
    """How many times each function was invoked (batches, requests, runs)."""


def staged_root(destination: Path) -> Path:
    """A copy of the checkout's platform with the ec2-app module replaced by the stand-in."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".terraform", "*.tfstate*", "tfplan")
    destination.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        else:
            shutil.copy2(source, destination / name)
    module = destination / PRODUCT_MODULE
    for path in module.glob("*.tf"):
        if path.name != "variables.tf":  # the real interface stays
            path.unlink()
    for path in STANDIN.glob("*.tf"):
        shutil.copy2(path, module / path.name)
    return destination


def delivery_bodies(tickets: int) -> list[bytes]:
    """One ServiceNow request body per ticket (the demo's request, distinct numbers)."""
    template: dict[str, Any] = json.loads((ROOT / "demo/servicenow-ec2-request.json").read_text())
    return [
        json.dumps({**template, "number": f"RITM{5_000_000 + n:07d}", "sys_id": sys_id(n)}).encode()
        for n in range(tickets)
    ]


def sys_id(ticket: int) -> str:
    """The ServiceNow sys_id of the ``ticket``-th benchmark ticket."""
    return f"{0xBE_0000 + ticket:032x}"


def count_answers(answers: list[Answer]) -> tuple[int, int, int]:
    """(202s, later answers repeating their ticket's first request id, distinct ids).

    "First" is the earliest answer received for a ticket; an answer without a request
    id, or with another one, is not counted as a faithful duplicate.
    """
    accepted = sum(1 for a in answers if a.status == 202)
    first: dict[int, Answer] = {}
    for answer in sorted(answers, key=lambda a: a.received_at):
        first.setdefault(answer.ticket, answer)
    duplicates = sum(
        1
        for a in answers
        if a is not first[a.ticket]
        and a.request_id is not None
        and a.request_id == first[a.ticket].request_id
    )
    distinct = len({a.request_id for a in answers if a.request_id is not None})
    return accepted, duplicates, distinct


def completion_times(journal: list[dict[str, Any]], wanted: set[str]) -> dict[str, float]:
    """When each wanted ticket's first "finished successfully" work note arrived."""
    done: dict[str, float] = {}
    for row in journal:
        element = str(row.get("element_id"))
        if (
            element in wanted
            and element not in done
            and row.get("element") == "work_notes"
            and SUCCESS_NOTE in str(row.get("value"))
        ):
            done[element] = float(row["received_at"])
    return done


@contextmanager
def running_platform(root: Path, **options: Any) -> Iterator[LocalPlatform]:
    """The local platform on ``root`` (staged), stopped and its work directory removed."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-burst-") as workdir,
        LocalPlatform(root, Path(workdir), say=lambda _: None, **options) as platform,
    ):
        yield platform


def peak_rss_mib(pid: int) -> float:
    """A live process's peak resident set size (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM for process {pid}")


def _invoke_the_rest(platform: LocalPlatform) -> None:
    """One invocation of each function the burst does not reach: the schedules run once,
    the ops API runs its sample request against an eligible instance."""
    for schedule in platform.schedules.values():
        schedule.tick()
    platform.configure_ops((platform.root / "config/ops-api.example.json").read_text())
    (instance,) = platform.launch_instances(1)
    event: dict[str, Any] = json.loads((ROOT / "events/OpsApiFunction.json").read_text())
    event["body"] = json.dumps({**json.loads(event["body"]), "instance_id": instance})
    reply = platform.workers["OpsApiFunction"].invoke(event)
    if reply.get("statusCode") != 200:
        raise RuntimeError(f"the ops API did not run the sample command: {reply}")


def _deliver(
    platform: LocalPlatform, bodies: list[bytes], copies: int
) -> tuple[list[Answer], float]:
    webhooks = Webhooks.of(platform)
    answers: list[Answer] = []
    lock = threading.Lock()

    def send(ticket: int) -> None:
        raw = bodies[ticket]
        # A retry carries the same webhook id and body (signed at the time of sending).
        status, reply = webhooks.send("servicenow", raw, f"bench-burst-{ticket}")
        request_id = reply.get("request_id")
        with lock:
            answers.append(
                Answer(
                    ticket, status, request_id if isinstance(request_id, str) else None, time.time()
                )
            )

    started = time.time()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        # The copies of a ticket are queued side by side, so they are in flight together.
        for ticket in range(len(bodies)):
            for _ in range(copies):
                pool.submit(send, ticket)
    return answers, started


class EmbeddedAwsStoppedError(RuntimeError):
    """The embedded AWS stopped answering mid-run; the run's figures are void."""


def _wait(
    platform: LocalPlatform, condition: Callable[[], bool], deadline: float, what: str
) -> None:
    checked = time.monotonic()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        if time.monotonic() - checked > 5:
            checked = time.monotonic()
            # Fail now rather than at the deadline when the embedded AWS is gone (another
            # session's `pkill -f selfservice.local.moto_server` stops ours too).
            if not platform.embedded.answers():
                raise EmbeddedAwsStoppedError(f"the embedded AWS stopped answering; {what}")
        time.sleep(0.25)


def measure(
    tickets: int = TICKETS, copies: int = COPIES, *, timeout_seconds: float = 3600
) -> BurstFigures:
    """Run the burst and count and time it."""
    with tempfile.TemporaryDirectory(prefix="bench-burst-root-") as scratch:
        root = staged_root(Path(scratch))
        with running_platform(root) as platform:
            assert platform.codebuild is not None
            codebuild = platform.codebuild.client
            bodies = delivery_bodies(tickets)
            answers, started = _deliver(platform, bodies, copies)
            accepted_at = max(a.received_at for a in answers)
            wanted = {sys_id(n) for n in range(tickets)}
            deadline = time.monotonic() + timeout_seconds
            _wait(
                platform,
                lambda: len(completion_times(list(platform.itsm.state.journal), wanted)) >= tickets,
                deadline,
                "not every ticket was written back",
            )
            done = completion_times(list(platform.itsm.state.journal), wanted)
            time.sleep(2)  # anything still in flight would show up as an extra build
            builds = dict(codebuild.requested_at)
            runs = list(codebuild.runs)
            ledger = _ledger(platform)
            _invoke_the_rest(platform)
            # The worker's process is the function's execution environment.
            memory = {name: peak_rss_mib(worker.pid) for name, worker in platform.workers.items()}
            invocations = {name: w.invocations for name, w in platform.workers.items()}
            accepted, duplicates, distinct = count_answers(answers)
            statuses = Counter(a.status for a in answers)
            if set(statuses) != {202}:
                print(f"  answers by status: {dict(statuses)}", flush=True)
            return BurstFigures(
                tickets=tickets,
                copies=copies,
                accepted=accepted,
                duplicates_with_original_id=duplicates,
                distinct_request_ids=distinct,
                builds=len(builds),
                ledger_entries=sum(1 for key in ledger if key.startswith("servicenow:RITM5")),
                written_back=len(done),
                accept_seconds=accepted_at - started,
                start_build_seconds=max(builds.values()) - started,
                written_back_seconds=max(done.values()) - started,
                terraform_median_seconds=median(
                    [(r.ended_at - r.started_at).total_seconds() for r in runs]
                ),
                build_concurrency=platform.codebuild.concurrency,
                peak_rss_mib=memory,
                invocations=dict(invocations),
            )
