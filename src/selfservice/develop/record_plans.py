"""Record Terraform plan JSON fixtures of the products with real Terraform.

``make plans`` (``python -m selfservice.develop.record_plans``) starts the embedded AWS, runs
each product's module through a create, an update and a destroy — ``terraform plan
-out=tfplan`` then ``terraform show -json tfplan``, applying the create and the update
so the next plan has a state to differ from — and writes the plans, made machine-neutral
(no absolute path, no endpoint, a fixed timestamp), to ``tests/fixtures/plans/``.

The module runs unchanged; only its backend is overridden (``backend_override.tf``, a
Terraform override file) with a local state in the scratch directory. The provider comes
from the offline mirror (``selfservice.local.terraform``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from selfservice.local.moto_server import EmbeddedAws
from selfservice.local.terraform import ROOT_CREDENTIALS, terraform_binary, terraform_environment

__all__ = ["SCENARIOS", "Step", "main", "neutralise", "record"]

ROOT = Path(__file__).resolve().parents[3]
PRODUCTS = ROOT / "services/provisioner/products"
FIXTURES = ROOT / "tests/fixtures/plans"
REGION = "us-east-1"
FIXED_TIMESTAMP = "2026-12-01T00:00:00Z"

_EC2_APP: dict[str, Any] = {
    "request_id": "req-7f3c2a9e41d04b5c",
    "ticket": "servicenow:RITM0010042",
    "ticket_key": "RITM0010042",
    "requested_by": "abel.tuter",
    "ssm_run_allowed": False,
    "instance_type": "t3.small",
    "environment": "staging",
    "desired_capacity": 2,
    "cost_center": "CC-1042",
    "region": REGION,
    "expose_alb": True,
    "app_port": 8080,
    "justification": "checkout service staging tier",
    # A module setting (not a product variable), set here so the plans cover the NAT.
    "enable_nat": True,
}
_UPDATED = {**_EC2_APP, "instance_type": "m6i.large", "desired_capacity": 3}
_ACCOUNT: dict[str, Any] = {
    "request_id": "req-0b8d6e2f95a14c37",
    "ticket": "servicenow:RITM0010077",
    "ticket_key": "RITM0010077",
    "requested_by": "beth.anglin",
    "account_name": "checkout-staging",
    "account_email": "aws+checkout-staging@acme.example",
    "organizational_unit": "Workloads/NonProd",
    "environment": "staging",
    "cost_center": "CC-1042",
    "approvers": ["beth.anglin"],
}


@dataclass(frozen=True)
class Step:
    """One plan of a scenario: its fixture name, variables, whether it destroys or applies."""

    fixture: str
    variables: dict[str, Any]
    destroy: bool = False
    apply: bool = True
    """Apply the plan, so the next step differs from its state (a destroy never is)."""


@dataclass(frozen=True)
class Scenario:
    """A product's create, update and destroy, in order, applied one after the other."""

    product: str
    steps: list[Step] = field(default_factory=list)


SCENARIOS = [
    Scenario(
        "ec2-app",
        [
            Step("ec2-app-create", _EC2_APP),
            Step("ec2-app-update", _UPDATED),
            # A new port replaces the target group. Planned only: the module deletes the
            # group first, which its listener still uses, so the apply would fail.
            Step("ec2-app-update-port", {**_UPDATED, "app_port": 8443}, apply=False),
            Step("ec2-app-destroy", _UPDATED, destroy=True),
        ],
    ),
    Scenario(
        "aws-account",
        [
            Step("aws-account-create", _ACCOUNT),
            Step("aws-account-update", {**_ACCOUNT, "approvers": ["beth.anglin", "fred.luddy"]}),
            Step(
                "aws-account-destroy",
                {**_ACCOUNT, "approvers": ["beth.anglin", "fred.luddy"]},
                destroy=True,
            ),
        ],
    ),
]


def neutralise(plan: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    """The plan without machine-specific text: paths and endpoints replaced, fixed time."""
    text = json.dumps(plan)
    for old, new in replacements.items():
        text = text.replace(json.dumps(old)[1:-1], new)
    neutral: dict[str, Any] = json.loads(text)
    if "timestamp" in neutral:
        neutral["timestamp"] = FIXED_TIMESTAMP
    return neutral


def _seed_organization() -> None:
    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    workloads = organizations.create_organizational_unit(ParentId=root, Name="Workloads")
    organizations.create_organizational_unit(
        ParentId=workloads["OrganizationalUnit"]["Id"], Name="NonProd"
    )


def _terraform(args: list[str], cwd: Path, env: dict[str, str]) -> bytes:
    done = subprocess.run(  # noqa: S603 - terraform from PATH, fixed arguments
        [terraform_binary(), *args], cwd=cwd, env=env, capture_output=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout.decode() + done.stderr.decode())
        raise SystemExit(f"terraform {args[0]} failed in {cwd}")
    return done.stdout


def _run_scenario(scenario: Scenario, work: Path, env: dict[str, str], out: Path) -> list[Path]:
    module = work / scenario.product
    shutil.copytree(
        PRODUCTS / scenario.product / "terraform",
        module,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfvars.json", "tfplan"),
    )
    (module / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    _terraform(["init", "-no-color", "-input=false"], module, env)
    written = []
    for step in scenario.steps:
        (module / "request.auto.tfvars.json").write_text(json.dumps(step.variables, indent=2))
        destroy = ["-destroy"] if step.destroy else []
        _terraform(["plan", "-no-color", "-input=false", "-out=tfplan", *destroy], module, env)
        plan = json.loads(_terraform(["show", "-no-color", "-json", "tfplan"], module, env))
        neutral = neutralise(
            plan, {str(module): ".", str(work): ".", env["AWS_ENDPOINT_URL"]: "http://aws.local"}
        )
        path = out / f"{step.fixture}.json"
        path.write_text(json.dumps(neutral, indent=1, sort_keys=True) + "\n")
        written.append(path)
        if step.apply and not step.destroy:
            _terraform(["apply", "-no-color", "-input=false", "tfplan"], module, env)
    return written


def record(out: Path = FIXTURES) -> list[Path]:
    """Record every scenario's plans into ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="record-plans-") as scratch:
        work = Path(scratch)
        with EmbeddedAws(log_path=work / "moto.log") as aws:
            env = terraform_environment(
                work, aws.endpoint, region=REGION, credentials=ROOT_CREDENTIALS
            )
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                _seed_organization()
                return [
                    path
                    for scenario in SCENARIOS
                    for path in _run_scenario(scenario, work, env, out)
                ]
            finally:
                os.environ.clear()
                os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m selfservice.develop.record_plans``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=FIXTURES, help="directory of the fixtures")
    args = parser.parse_args(argv)
    for path in record(args.out):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
