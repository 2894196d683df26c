"""What planning first costs a request that needs no approval (issue 18).

Builds used to run one ``terraform apply -auto-approve``. They now run ``terraform plan
-out=tfplan``, ``terraform show -json tfplan``, hash the plan, upload the three files
(beside the rest), review the plan (``buildtools/review.py plan``: policies, cost, budget,
with the request's review input the provisioner put in S3), then ``terraform apply
tfplan`` — the provider's schema is loaded by each Terraform command. This
creates the real ec2-app module against the embedded AWS both ways, alternating (ABAB…)
so drift in the machine's load falls on both, each on a fresh ticket, and compares the
build phase's time. ``terraform init`` (the same for both) is measured too, as the rest
of a build.

``python -m bench.plan_first`` measures and rewrites its section of docs/benchmarks.md;
``make bench`` includes it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import boto3
import yaml

from bench.common import ROOT, load_average, machine, median
from provisioner.domain.plan.build_review import ReviewInput, review_input_key
from provisioner.settings import PlanGuardrails
from selfservice.local.moto_server import EmbeddedAws
from selfservice.local.terraform import ROOT_CREDENTIALS, terraform_binary, terraform_environment
from selfservice_contracts.request import Action

__all__ = ["PlanFirst", "measure", "section"]

MODULE = ROOT / "services/provisioner/products/ec2-app/terraform"
S3COPY = ROOT / "services/provisioner/buildtools/s3copy.py"
BUCKET = "selfservice-artifacts"
ROUNDS = 3
TARGET_RATIO = 0.10
REGION = "us-east-1"
BEGIN, END = "<!-- plan-first: begin -->", "<!-- plan-first: end -->"
GUARDRAILS = ROOT / "config/provisioner.example.json"


@dataclass(frozen=True)
class PlanFirst:
    """Medians, in seconds, over the rounds."""

    rounds: int
    init_seconds: float
    apply_seconds: float
    """The old build phase: ``terraform apply -auto-approve``."""
    plan_first_seconds: float
    """The new build phase: the buildspec's build commands, run verbatim."""
    steps: dict[str, float]
    """The new build phase's steps."""
    load: tuple[float, float] = (0.0, 0.0)
    """One-minute load average when the runs started and ended."""

    @property
    def extra_seconds(self) -> float:
        """What planning first adds to the build phase."""
        return self.plan_first_seconds - self.apply_seconds

    @property
    def ratio(self) -> float:
        """The extra time as a share of the old build (init + apply)."""
        return self.extra_seconds / (self.init_seconds + self.apply_seconds)


def _run(args: list[str], cwd: Path, env: dict[str, str], stdout: Path | None = None) -> float:
    started = time.perf_counter()
    with open(stdout, "wb") if stdout else open(os.devnull, "wb") as out:
        done = subprocess.run(  # noqa: S603 - fixed commands
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed: {done.stderr.decode()[-2000:]}")
    return time.perf_counter() - started


def _module(work: Path, ticket: str) -> Path:
    module = work / ticket
    shutil.copytree(
        MODULE, module, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "tfplan")
    )
    # The same local backend for both ways: the comparison is of the commands run.
    (module / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    variables = {
        "request_id": f"req-{ticket.lower()}",
        "ticket": f"servicenow:{ticket}",
        "ticket_key": ticket,
        "requested_by": "abel.tuter",
        "ssm_run_allowed": True,
        "instance_type": "t3.micro",
        "environment": "dev",
        "desired_capacity": 1,
        "cost_center": "CC-1042",
        "region": REGION,
        "expose_alb": False,
        "app_port": 80,
    }
    (module / "request.auto.tfvars.json").write_text(json.dumps(variables))
    return module


def _old_build(module: Path, env: dict[str, str]) -> float:
    return _run([terraform_binary(), "apply", "-no-color", "-auto-approve"], module, env)


def _build_commands() -> list[str]:
    spec = yaml.safe_load((ROOT / "services/provisioner/buildspec.yml").read_text())
    commands: list[str] = spec["phases"]["build"]["commands"]
    return commands


def _label(command: str) -> str:
    first = command.strip().splitlines()[0]
    if "APPROVED_PLAN_SHA256" in first:
        return "plan -out, show -json, review, apply tfplan (uploads beside)"
    return first[:60].replace("|", "\\|")  # a table cell


def _review_input(s3: Any, ticket: str) -> None:
    """What the provisioner writes before a build: the request's side of the review."""
    guardrails = PlanGuardrails.model_validate_json(GUARDRAILS.read_text())
    document = ReviewInput(
        product="ec2-app",
        action=Action.CREATE,
        environment="dev",
        cost_center="CC-1042",
        guardrails=guardrails,
    )
    s3.put_object(
        Bucket=BUCKET,
        Key=review_input_key(f"req-{ticket.lower()}", 1),
        Body=document.model_dump_json().encode(),
    )


_STEPS = {
    "terraform plan ": "  of it: `terraform plan -out=tfplan`",
    "terraform show ": "  of it: `terraform show -json tfplan`",
    "review.py plan": "  of it: `review.py plan` (policies, cost, budget; its record to S3)",
    "terraform apply ": "  of it: `terraform apply tfplan`",
}
_TRACED = re.compile(r"^\++ (\d+\.\d+) (.*)$")


def _steps(trace: str) -> dict[str, float]:
    """How long each step of the plan-first block took, from bash's timestamped trace.

    A step ends when the shell traces its next command (the background upload's own
    trace line, which may land anywhere, is skipped).
    """
    traced = [m.groups() for line in trace.splitlines() if (m := _TRACED.match(line))]
    lines = [(float(stamp), text) for stamp, text in traced if "s3copy.py" not in text]
    steps: dict[str, float] = {}
    for (stamp, text), (after, _) in pairwise(lines):
        for marker, label in _STEPS.items():
            if marker in text and label not in steps:
                steps[label] = after - stamp
    return steps


def _new_build(module: Path, env: dict[str, str], ticket: str) -> dict[str, float]:
    """The buildspec's build phase, verbatim, each command timed (and the big one's steps)."""
    timings = module / "timings"
    trace = module / "trace"
    # bash's xtrace, each line stamped (EPOCHREALTIME: no subprocess), to its own file.
    lines = [f"exec 9>>{trace}; BASH_XTRACEFD=9; PS4='+ $EPOCHREALTIME '; set -x"]
    for index, command in enumerate(_build_commands()):
        quoted = shlex.quote(command)
        lines.append(
            f'echo "{index} $(date +%s.%N)" >> {timings}; eval {quoted} || exit 1; '
            f'echo "{index} $(date +%s.%N)" >> {timings}'
        )
    build_env = {
        **env,
        "ACTION": "create",
        "PRODUCT": "ec2-app",
        "REQUEST_ID": f"req-{ticket.lower()}",
        "TICKET_REF": f"servicenow:{ticket}",
        "ATTEMPT": "1",
        "ARTIFACTS_BUCKET": BUCKET,
        "TOOLS": str(S3COPY.parent),
    }
    _run(["bash", "-c", "\n".join(lines)], module, build_env)
    marks: dict[int, list[float]] = {}
    for line in timings.read_text().splitlines():
        number, stamp = line.split()
        marks.setdefault(int(number), []).append(float(stamp))
    commands = _build_commands()
    timed = {_label(commands[i]): end - begin for i, (begin, end) in sorted(marks.items())}
    return timed | _steps(trace.read_text())


def measure(rounds: int = ROUNDS) -> PlanFirst:
    """Create the module ``rounds`` times each way, alternating; the medians."""
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-plan-first-") as scratch:
        work = Path(scratch)
        with EmbeddedAws(log_path=work / "moto.log") as aws:
            env = terraform_environment(
                work, aws.endpoint, region=REGION, credentials=ROOT_CREDENTIALS
            )
            s3 = boto3.client(
                "s3",
                endpoint_url=aws.endpoint,
                region_name=REGION,
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket=BUCKET)
            inits, old, new, steps = [], [], [], []
            for index in range(rounds):
                for way in ("old", "new"):
                    ticket = f"RITM{9000000 + 2 * index + (way == 'new'):07d}"
                    module = _module(work, ticket)
                    inits.append(
                        _run([terraform_binary(), "init", "-no-color", "-input=false"], module, env)
                    )
                    if way == "old":
                        old.append(_old_build(module, env))
                    else:
                        _review_input(s3, ticket)
                        step = _new_build(module, env, ticket)
                        steps.append(step)
                        new.append(sum(v for k, v in step.items() if k not in _STEPS.values()))
    return PlanFirst(
        rounds=rounds,
        init_seconds=median(inits),
        apply_seconds=median(old),
        plan_first_seconds=median(new),
        steps={name: median([s[name] for s in steps]) for name in steps[0]},
        load=(load_at_start, load_average()),
    )


def section(result: PlanFirst) -> str:
    """The benchmarks.md section, between its markers."""
    verdict = "met" if result.ratio < TARGET_RATIO else "**missed**"
    steps = "\n".join(f"| {name} | {seconds:.1f} s |" for name, seconds in result.steps.items())
    return f"""{BEGIN}
## Planning first (issue 18)

The build phase of a request that needs no approval, the real ec2-app module created
against the embedded AWS (dev: one t3.micro, no load balancer), medians of
{result.rounds} runs each way, alternated, each on a fresh ticket (`bench/plan_first.py`;
one-minute load average {result.load[0]:.1f} at the start and {result.load[1]:.1f} at the end, on
{machine()}):

| figure | value | target | verdict |
|---|---|---|---|
| `terraform init` (the same either way) | {result.init_seconds:.1f} s | | |
| before: `terraform apply -auto-approve` | {result.apply_seconds:.1f} s | | |
| now: the buildspec's build phase (plan -out, show -json, sha256sum, the review, apply tfplan; the uploads beside) | {result.plan_first_seconds:.1f} s | | |
| extra time planning first | {result.extra_seconds:+.1f} s | | |
| extra / the build before (init + apply) | {100 * result.ratio:.1f} % | < {100 * TARGET_RATIO:.0f} % | {verdict} |

| command of the new build phase | median |
|---|---|
{steps}

Where the extra time goes: three steps now run one after the other before anything is
applied — the separate `terraform plan` (a provider start, the refresh and the diff),
`terraform show -json` (another provider start, to read the plan with the provider's
schema) and the review (a Python process: policies, cost, budget, its record to S3) —
and only the apply's own plan is saved (`apply tfplan` skips the refresh and diff a
plain `apply` does). The uploads of `tfplan`, `plan.json` and the hash run beside the
review and the apply. Neither `show -json` nor the review can overlap the apply: the
verdict decides whether the apply runs at all. Against the embedded AWS every resource is
ready at once, so the apply is short and the plan's share large; in AWS the same apply
waits minutes for the NAT gateway and the instances while these steps stay at a few
seconds — this page measures only the embedded case, where the goal is missed.
{END}"""


def write(result: PlanFirst, document: Path = ROOT / "docs/benchmarks.md") -> None:
    """Replace (or append) this section of the document."""
    text = document.read_text()
    block = section(result)
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    document.write_text(text)


def main() -> int:
    """Measure and rewrite the section."""
    load = load_average()
    result = measure()
    write(result)
    sys.stdout.write(
        f"{machine()}, load {load:.1f} -> {load_average():.1f}: init {result.init_seconds:.1f} s, "
        f"apply {result.apply_seconds:.1f} s, plan-first {result.plan_first_seconds:.1f} s "
        f"({100 * result.ratio:+.1f} %)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
