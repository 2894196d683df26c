"""The least-privilege report: per role, what the templates grant and what was used.

The templates are deployed into a fresh embedded AWS (the same deployment the local
runtime makes, product deploy roles included) and every role's policies are read back
from its IAM; the usage logs the embedded AWS wrote during runs
(``$SELFSERVICE_IAM_USAGE_LOG``: one JSON line per authorization decision) say which
statement allowed which action on which resource. A statement nothing used, and the
actions of a statement that were never used, are the grants to question.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from selfservice.local.deploy import deploy_platform
from selfservice.local.moto_server import EmbeddedAws
from selfservice.templates import load_platform

READ_ONLY = ("Describe", "Get", "List")
LISTED_ACTIONS = 12
"""More unused actions than this are counted, not listed (a managed policy's dozens)."""

__all__ = ["Grant", "RoleReport", "granted", "read_usage", "render", "report"]


@dataclass
class Grant:
    """One Allow statement of a role's policies."""

    policy: str
    statement: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: bool
    used: Counter[str] = field(default_factory=Counter)
    """Allowed calls this statement decided, by action."""

    @property
    def key(self) -> str:
        """How the usage log names the statement (``policy#Sid`` or ``policy#index``)."""
        return f"{self.policy}#{self.statement}"

    def unused_actions(self) -> list[str]:
        """Granted actions (or patterns) no logged call matched."""
        return [a for a in self.actions if not any(fnmatch.fnmatchcase(u, a) for u in self.used)]


@dataclass
class RoleReport:
    """A role, its grants and what its sessions were refused."""

    name: str
    grants: list[Grant]
    refused: Counter[str] = field(default_factory=Counter)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _grants(policy: str, document: dict[str, Any] | str) -> list[Grant]:
    parsed = json.loads(document) if isinstance(document, str) else document
    statements = parsed.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return [
        Grant(
            policy=policy,
            statement=str(s.get("Sid") or index),
            actions=_strings(s.get("Action"))
            or tuple(f"NOT {a}" for a in _strings(s.get("NotAction"))),
            resources=_strings(s.get("Resource")) or ("*",),
            conditions=bool(s.get("Condition")),
        )
        for index, s in enumerate(statements)
        if s.get("Effect") == "Allow"
    ]


def granted(iam: Any, role_names: Iterable[str]) -> dict[str, RoleReport]:
    """Every role's Allow statements: inline policies, then attached managed policies."""
    roles: dict[str, RoleReport] = {}
    for name in sorted(role_names):
        grants: list[Grant] = []
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            grants += _grants(f"{name}/{policy}", document)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
            grants += _grants(arn, document["Document"])
        roles[name] = RoleReport(name, grants)
    return roles


def read_usage(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The usage logs' decisions (lines that are not JSON are skipped)."""
    entries = []
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def report(roles: dict[str, RoleReport], usage: list[dict[str, Any]]) -> dict[str, RoleReport]:
    """Attribute each logged decision to the statement (and role) it names."""
    by_key = {(r.name, g.key): g for r in roles.values() for g in r.grants}
    for entry in usage:
        role = roles.get(str(entry.get("principal")))
        if role is None:
            continue
        if entry.get("decision") == "Allow":
            grant = by_key.get((role.name, str(entry.get("statement"))))
            if grant is not None:
                grant.used[str(entry["action"])] += 1
        else:
            role.refused[f"{entry['action']} on {entry['resource']}"] += 1
    return roles


def _cell(values: Iterable[str]) -> str:
    return "<br>".join(f"`{v}`" for v in values) or "—"


def render(roles: dict[str, RoleReport], sources: list[str]) -> str:
    """The report as Markdown."""
    lines = [
        "# IAM least-privilege report",
        "",
        "Generated by `make iam-report` (`selfservice iam-report`); do not edit by hand.",
        "For each role the templates deploy: every Allow statement, the actions the runs",
        "below were allowed through it, and the granted actions nothing used. A statement",
        "with no use, or a wide grant (`*`, a managed policy) of which little was used, is",
        "a grant to question; a use is what the local runtime observed, so a path these",
        "runs did not take (an update of an ALB, a redrive) shows as unused too. X-Ray is",
        "not emulated (its grants never show use), and a call a resource-based policy",
        "allowed on its own (a role's trust naming the caller, a queue policy) is counted",
        "there, not against the caller's identity statement.",
        "",
        f"Usage from: {', '.join(sources) or 'no run'}.",
        "",
        "| role | statements | used | never used |",
        "|---|---|---|---|",
    ]
    for role in roles.values():
        used = sum(1 for g in role.grants if g.used)
        lines.append(f"| {role.name} | {len(role.grants)} | {used} | {len(role.grants) - used} |")
    wide = [
        (role.name, grant)
        for role in roles.values()
        for grant in role.grants
        if any("*" in r.split(":")[-1] or r == "*" for r in grant.resources)
        and any(not a.split(":")[-1].startswith(READ_ONLY) for a in grant.actions)
    ]
    lines += [
        "",
        "## Wide grants",
        "",
        "Statements that allow a change (an action other than Describe/Get/List) on a",
        "resource pattern ending in a wildcard, with what the runs used of them:",
        "",
        "| role | statement | on | used | never used |",
        "|---|---|---|---|---|",
    ]
    for name, grant in wide:
        unused = grant.unused_actions()
        never = _cell(unused) if len(unused) <= LISTED_ACTIONS else f"{len(unused)} actions"
        lines.append(
            f"| {name} | `{grant.key}` | {_cell(grant.resources)} | "
            f"{len(grant.actions) - len(unused)} of {len(grant.actions)} | {never} |"
        )
    for role in roles.values():
        lines += ["", f"## {role.name}", ""]
        lines += ["| statement | granted actions | on | used (calls) | never used |"]
        lines += ["|---|---|---|---|---|"]
        for grant in role.grants:
            name = f"`{grant.key}`" + (" (conditional)" if grant.conditions else "")
            calls = _cell(f"{a} ({n})" for a, n in sorted(grant.used.items()))
            unused = grant.unused_actions()
            never = (
                _cell(unused)
                if len(unused) <= LISTED_ACTIONS
                else f"{len(unused)} of {len(grant.actions)}"
            )
            lines.append(
                f"| {name} | {len(grant.actions)} | {_cell(grant.resources)} | {calls} | {never} |"
            )
        if role.refused:
            lines += ["", "Refused during the runs:", ""]
            lines += [f"- `{what}` ({n})" for what, n in sorted(role.refused.items())]
    return "\n".join(lines) + "\n"


def build_report(root: Path, usage_logs: list[Path]) -> str:
    """Deploy the templates into a fresh embedded AWS, read the roles, attribute usage."""
    with EmbeddedAws(enforce_iam=False, usage_log=None) as aws:
        deployment = deploy_platform(
            load_platform(root / "template.yaml"), endpoint_url=aws.endpoint
        )
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=aws.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the embedded AWS's root key
        )
        roles = granted(iam, deployment.roles())
    usage = read_usage(p for p in usage_logs if p.is_file())
    sources = [
        str(p.resolve().relative_to(root.resolve()))
        if p.resolve().is_relative_to(root.resolve())
        else p.name
        for p in usage_logs
        if p.is_file()
    ]
    return render(report(roles, usage), sources)


def main(root: Path, usage_logs: list[Path], output: Path | None) -> int:
    """Write (or print) the report."""
    text = build_report(root, usage_logs)
    if output is None:
        print(text, end="")  # noqa: T201 - the command's output
    else:
        output.write_text(text)
    return 0
