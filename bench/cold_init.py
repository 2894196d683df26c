"""Cold init of every function versus the floor: importing boto3 and creating the same clients.

The functions are the templates' (``template.yaml`` and the stacks it nests, read with
:mod:`selfservice.templates`), each started as Lambda starts it: a fresh interpreter
whose ``sys.path`` is the function's ``CodeUri`` and layers, whose environment is the
template's (resolved by deploying the templates into an embedded AWS, as the local
runtime does) plus what the Lambda runtime sets, and whose AWS is that embedded AWS on
127.0.0.1. Interpreter start-up is excluded.

A function's **init** is importing its ``Handler`` module (what Lambda's init phase
runs) and building what every handler module builds once per execution environment
and caches — its configuration and its AWS adapters (:data:`BUILDERS`; the handlers
build them lazily, so without this step the first request would pay for them). The
**floor** creates exactly the clients a discovery run recorded during that init
(botocore patched to list every client created, including any a library creates for
itself), after ``import boto3``. The **libraries floor** — what the target is judged
against — adds to that floor the required libraries (:data:`REQUIRED_LIBRARIES`) exactly
as far as the function's init imports them: every module of theirs the discovery run
found in ``sys.modules``, imported in the same order, and no module of the platform's.
Handler and floor runs alternate, so drift affects all alike; each figure is a median.

**Peak memory** is the interpreter's peak resident set size (``VmHWM``) right
after init, the part of a function's memory its code decides; the in-service figure
(after serving the burst) comes from :mod:`bench.burst`.

The environment is Lambda's as far as the libraries can tell: both Powertools' Tracer
and the X-Ray SDK recognise Lambda by ``LAMBDA_TASK_ROOT`` (which the runtime always
sets). Without it the Tracer disables itself and the X-Ray SDK prepares centralized
sampling (two X-Ray clients, each in a new botocore session) that a function in
Lambda never builds — a different, slower init than the one deployed. Nothing of the
benchmark's own environment is inherited (``POWERTOOLS_TRACE_DISABLED`` set by the warm
benchmark would silently switch the tracer off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bench.common import ROOT, median
from selfservice.local.deploy import deploy_platform
from selfservice.local.moto_server import EmbeddedAws
from selfservice.templates import FunctionSpec, load_platform

REQUIRED_LIBRARIES = (
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "cloudevents",
)
"""Top-level packages of the libraries the brief requires at run time besides boto3
(pydantic with its core, Powertools, the X-Ray SDK, the CloudEvents SDK): what the
libraries floor imports on top of the boto3 floor."""

BUILDERS = ("config", "adapters", "runtime", "index")
"""What handler modules build once per execution environment (each cached, no arguments);
a module defines ``config`` and the builder of its adapters under one of the others."""

INTAKE_FUNCTION = "WebhookFunction"
INTAKE_MODULE = "intake.handlers.webhook"

LAMBDA_RUNTIME = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
}
"""What the Lambda runtime sets besides the function's own variables (function name and
task root are per function; the credentials are the embedded AWS's root user, which its
IAM enforcement accepts everywhere)."""

INIT = """
import importlib
module = importlib.import_module({module!r})
for name in {builders!r}:
    builder = getattr(module, name, None)
    if callable(builder) and not isinstance(builder, type):
        builder()
"""

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
"""A sampled invocation: the first request records its trace as it would in Lambda."""

FIRST_REQUEST = """
import os, sys
sys.path.insert(0, {root!r})
from bench.intake_warm import stub_handler, signed_events
from intake.handlers import webhook
class Context:
    function_name = 'bench'; memory_limit_in_mb = 512; aws_request_id = 'r'
    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:bench'
    def get_remaining_time_in_millis(self): return 30000
events = signed_events(1)
stub_handler()
# The runtime sets each invocation's trace header before calling the handler.
os.environ["_X_AMZN_TRACE_ID"] = {trace_header!r}
devnull = os.open(os.devnull, os.O_WRONLY); saved = os.dup(1); os.dup2(devnull, 1)
t = time.perf_counter()
response = webhook.lambda_handler(events[0], Context())
extra["first"] = time.perf_counter() - t
os.dup2(saved, 1)
assert response["statusCode"] == 202, response
"""

TIMED = """
import time
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
import json
# Peak RSS of this process image: VmHWM. (ru_maxrss would not do: Linux carries it
# across exec, so a child started from a large parent reports the parent's peak.)
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
extra = {{"max_rss_kib": int(hwm.split()[1])}}
{after}
print("RESULT " + json.dumps({{"seconds": elapsed, **extra}}))
"""

DISCOVER = """
import botocore.session, json, sys
created = []
original = botocore.session.Session.create_client
def recording(self, service_name, *args, **kwargs):
    created.append(service_name)
    return original(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording
{body}
# sys.modules keeps insertion order: a package before the modules it imports.
libraries = [name for name in sys.modules if name.partition(".")[0] in {libraries!r}]
print("RESULT " + json.dumps({{"clients": created, "libraries": libraries}}))
"""


def discover_code(body: str) -> str:
    """A run of ``body`` that reports the clients created and the library modules imported."""
    return DISCOVER.format(body=body, libraries=REQUIRED_LIBRARIES)


@dataclass(frozen=True)
class Stage:
    """One step of an init, timed on its own; ``kind`` says whose cost it is."""

    label: str
    code: str
    kind: Literal["floor", "library", "platform"]


INTAKE_STAGES = (
    Stage("import boto3", "import boto3", "floor"),
    Stage("pydantic", "from pydantic import BaseModel, Field, TypeAdapter", "library"),
    Stage(
        "X-Ray SDK (what Powertools' Tracer loads when it is enabled)",
        "import aws_xray_sdk.core",
        "library",
    ),
    Stage(
        "Powertools: Logger, Metrics, Tracer",
        "from aws_lambda_powertools import Logger, Metrics, Tracer",
        "library",
    ),
    Stage(
        "Powertools: event handler (HTTP API resolver)",
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver",
        "library",
    ),
    Stage(
        "Powertools: parameters (SSM, Secrets Manager)",
        "from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider",
        "library",
    ),
    Stage(
        "CloudEvents SDK",
        "from cloudevents.core.v1.event import CloudEvent\n"
        "from cloudevents.core.formats.json import JSONFormat",
        "library",
    ),
    Stage(
        "the platform's shared layer (`selfservice_contracts`, `selfservice_runtime`)",
        "import selfservice_contracts.events, selfservice_runtime.publisher, "
        "selfservice_runtime.dedupe, selfservice_runtime.observability",
        "platform",
    ),
    Stage(
        "intake's own modules (settings, normalizers, policy, the handler module and its "
        "Logger, Metrics, Tracer and resolver)",
        f"import {INTAKE_MODULE} as handler",
        "platform",
    ),
    Stage(
        "building configuration and adapters: the session and its 4 clients (the floor's "
        "second half), the Tracer's botocore patch, the parameter providers",
        "handler.config()\nhandler.adapters()",
        "platform",
    ),
)
"""Intake's init in the order its imports happen, each library before the code using it,
so each stage is charged only for what it adds."""

STAGED = """
import json, time
marks = [time.perf_counter()]
{body}
print("RESULT " + json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""


def staged_code(stages: tuple[Stage, ...]) -> str:
    """One interpreter running every stage in order, marking the clock after each."""
    body = "".join(f"{stage.code}\nmarks.append(time.perf_counter())\n" for stage in stages)
    return STAGED.format(body=body)


@dataclass(frozen=True)
class StageTime:
    """A stage's median over the runs."""

    stage: Stage
    ms: float


@dataclass(frozen=True)
class Breakdown:
    """Where intake's cold init goes, against its floor."""

    stages: list[StageTime]
    floor_ms: float
    runs: int

    def total(self, kind: str) -> float:
        """The stages of one kind, summed."""
        return sum(s.ms for s in self.stages if s.stage.kind == kind)

    @property
    def libraries_ratio(self) -> float:
        """The floor plus only the required libraries, over the floor."""
        return (self.floor_ms + self.total("library")) / self.floor_ms


@dataclass(frozen=True)
class FunctionInit:
    """One function's medians (milliseconds, MiB) and the clients its init creates."""

    function: str
    template: str
    clients: list[str]
    init_ms: float
    floor_ms: float
    libraries_floor_ms: float
    """The floor plus the required libraries' modules the init imports (the target's base)."""
    library_modules: int
    init_rss_mib: float
    floor_rss_mib: float
    runs: int
    first_request_ms: float | None = None
    """Intake only: one traced delivery right after init, AWS stubbed in memory."""

    @property
    def ratio(self) -> float:
        """Init over the boto3 floor."""
        return self.init_ms / self.floor_ms

    @property
    def libraries_ratio(self) -> float:
        """Init over the libraries floor: what the ≤ 1.10x target judges."""
        return self.init_ms / self.libraries_floor_ms


@dataclass(frozen=True)
class ColdInit:
    """Every function of the templates, in template order."""

    functions: list[FunctionInit]
    runs: int
    intake_stages: Breakdown

    def function(self, logical_id: str) -> FunctionInit:
        """One function's figures."""
        return next(f for f in self.functions if f.function == logical_id)


def floor_code(clients: list[str], libraries: list[str] | None = None) -> str:
    """The floor: import boto3, one session, the recorded clients in the recorded order;
    with ``libraries``, then each of those modules imported in the recorded order."""
    code = "import boto3\nsession = boto3.session.Session()\n" + "".join(
        f"session.client({name!r})\n" for name in clients
    )
    if libraries:
        code += (
            f"import importlib\nfor _name in {libraries!r}:\n    importlib.import_module(_name)\n"
        )
    return code


def init_code(module: str) -> str:
    """A function's init: import the handler module, then run its builders."""
    return INIT.format(module=module, builders=BUILDERS)


def parse_result(stdout: str) -> Any:
    """The JSON after the ``RESULT `` marker (the last such line: libraries may print)."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise ValueError("the run printed no RESULT line")
    return json.loads(lines[-1].removeprefix("RESULT "))


def function_environment(
    spec: FunctionSpec, template_environment: dict[str, str], endpoint: str
) -> dict[str, str]:
    """The whole environment of a function's fresh interpreter (nothing inherited)."""
    path = os.pathsep.join([*(str(p) for p in spec.import_paths), sysconfig.get_paths()["purelib"]])
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": path,
        **LAMBDA_RUNTIME,
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "AWS_ENDPOINT_URL": endpoint,
        **template_environment,
    }


def _runner(environment: dict[str, str]) -> Callable[[str], Any]:
    def run(code: str) -> Any:
        completed = subprocess.run(  # noqa: S603 - our interpreter, our code
            [sys.executable, "-S", "-c", code],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"cold-init run failed:\n{completed.stderr[-3000:]}")
        return parse_result(completed.stdout)

    return run


def _measure_function(spec: FunctionSpec, environment: dict[str, str], runs: int) -> FunctionInit:
    run = _runner(environment)
    body = init_code(spec.handler_module)
    discovered = run(discover_code(body))
    clients, libraries = discovered["clients"], discovered["libraries"]
    assert isinstance(clients, list)
    assert isinstance(libraries, list)
    after = ""
    if spec.logical_id == INTAKE_FUNCTION:
        after = FIRST_REQUEST.format(root=str(ROOT), trace_header=TRACE_HEADER)
    floors, library_floors, inits, firsts = [], [], [], []
    for _ in range(runs):
        floors.append(run(TIMED.format(body=floor_code(clients), after="")))
        library_floors.append(run(TIMED.format(body=floor_code(clients, libraries), after="")))
        inits.append(run(TIMED.format(body=body, after=after)))
        if after:
            firsts.append(inits[-1]["first"] * 1000)
    return FunctionInit(
        function=spec.logical_id,
        template=spec.template.name,
        clients=clients,
        init_ms=median([r["seconds"] * 1000 for r in inits]),
        floor_ms=median([r["seconds"] * 1000 for r in floors]),
        libraries_floor_ms=median([r["seconds"] * 1000 for r in library_floors]),
        library_modules=len(libraries),
        init_rss_mib=median([r["max_rss_kib"] / 1024 for r in inits]),
        floor_rss_mib=median([r["max_rss_kib"] / 1024 for r in floors]),
        runs=runs,
        first_request_ms=median(firsts) if firsts else None,
    )


def breakdown(
    spec: FunctionSpec, environment: dict[str, str], floor_ms: float, runs: int
) -> Breakdown:
    """Intake's init stage by stage (medians of ``runs`` fresh interpreters)."""
    run = _runner(environment)
    results = [run(staged_code(INTAKE_STAGES)) for _ in range(runs)]
    return Breakdown(
        stages=[
            StageTime(stage, median([r[i] * 1000 for r in results]))
            for i, stage in enumerate(INTAKE_STAGES)
        ],
        floor_ms=floor_ms,
        runs=runs,
    )


def measure(runs: int = 7, say: Callable[[str], None] = print) -> ColdInit:
    """Every function of the templates, one after another."""
    with EmbeddedAws() as aws:
        deployment = deploy_platform(
            load_platform(ROOT / "template.yaml"), endpoint_url=aws.endpoint
        )
        results = []
        stages: Breakdown | None = None
        for stack in deployment.stacks():
            for spec in stack.functions:
                environment = function_environment(
                    spec, stack.environments[spec.logical_id], aws.endpoint
                )
                result = _measure_function(spec, environment, runs)
                say(
                    f"  {result.function}: init {result.init_ms:.0f} ms vs floor + libraries "
                    f"{result.libraries_floor_ms:.0f} ms = {result.libraries_ratio:.2f}x "
                    f"(boto3 floor {result.floor_ms:.0f} ms), {result.init_rss_mib:.0f} MiB"
                )
                results.append(result)
                if spec.logical_id == INTAKE_FUNCTION:
                    stages = breakdown(spec, environment, result.floor_ms, runs)
                    say(
                        f"  {spec.logical_id}: the required libraries alone take the floor "
                        f"to {stages.libraries_ratio:.2f}x"
                    )
    if stages is None:
        raise RuntimeError(f"the templates define no {INTAKE_FUNCTION}")
    return ColdInit(results, runs, stages)
