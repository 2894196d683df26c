"""Ticket messages rendered from data (``notifier/messages.json``), never from code.

A message is a title and lines; ``{{name}}`` lines expand to one bullet per item
(rejection reasons, outputs, the end of a Terraform error) and vanish when empty;
``[[name]]`` lines place a table (the plan's: :mod:`notifier.domain.plan_table`) and
vanish when the event has none.
Nothing secret is ever in an event, and outputs marked sensitive never reach one, so
nothing secret can be rendered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from notifier.domain.plan_table import Table, format_value, plan_tables
from selfservice_contracts.events import (
    AnyEvent,
    ApprovalRequired,
    ProvisioningFailed,
    ProvisioningPlanned,
    ProvisioningRefused,
    ProvisioningStarted,
    ProvisioningSucceeded,
    RequestApproved,
    RequestRejected,
    TicketEventData,
)
from selfservice_contracts.plan import PlanVerdict

__all__ = ["Message", "Table", "render"]

_TEMPLATES = Path(__file__).resolve().parent.parent / "messages.json"
_LIST = re.compile(r"^\{\{(\w+)\}\}$")
_TABLE = re.compile(r"^\[\[(\w+)\]\]$")
_MAX_ITEMS = 20
_WHAT_TO_DO = {
    None: "What to do: the platform team has been alerted; change the request to retry, or "
    "ask them for help.",
    "PLAN_REFUSED": "What to do: change the request so that its plan meets the policies and "
    "the budget, or ask the platform team for an exception.",
    "NOT_STARTED": "What to do: nothing was built; the platform team has been alerted (the "
    "build could not start). Change the request to retry once they have fixed it.",
}
"""The last line of a failure, by ``build_status`` (``None``: every other status)."""


@dataclass(frozen=True)
class Message:
    """A rendered ticket message."""

    title: str
    lines: tuple[str, ...]
    bullets: dict[int, tuple[str, ...]]
    """Bullet items by line index (the line itself is empty)."""
    tables: dict[int, Table] = field(default_factory=dict)
    """Tables by line index (the line itself is empty)."""

    @property
    def text(self) -> str:
        """Plain text: the title, then each line, its bullets or its aligned table."""
        return self.render(Table.text_lines)

    def render(self, table: Callable[[Table], list[str]]) -> str:
        """The text with each table drawn by ``table`` (aligned text, ``[code]`` HTML…)."""
        out = [f"[selfservice] {self.title}"]
        for index, line in enumerate(self.lines):
            if index in self.bullets:
                out += [f"  - {item}" for item in self.bullets[index]]
            elif index in self.tables:
                out += table(self.tables[index])
            else:
                out.append(line)
        return "\n".join(out)


@cache
def _templates() -> dict[str, dict[str, Any]]:
    document: dict[str, dict[str, Any]] = json.loads(_TEMPLATES.read_text())
    return {key: value for key, value in document.items() if not key.startswith("_")}


def _fields(data: TicketEventData) -> tuple[dict[str, str], dict[str, list[str]]]:
    fields: dict[str, str] = {"ticket_key": data.ticket.key, "request_id": data.request_id}
    lists: dict[str, list[str]] = {}
    request = getattr(data, "request", None)
    product = getattr(data, "product", None) or (request.product if request else None)
    action = getattr(data, "action", None) or (request.action if request else None)
    fields["product"] = product or "the request"
    fields["product_or_request"] = product or "request"
    fields["action"] = action.value if action is not None else "request"
    fields["environment"] = (request.environment if request else None) or "its environment"
    fields["log_url"] = getattr(data, "log_url", None) or "not available"
    if isinstance(data, RequestRejected):
        lists["reasons"] = [
            f"{r.field}: {r.message}" if r.field else r.message for r in data.reasons
        ]
    if isinstance(data, ApprovalRequired):
        fields["policy"] = data.policy
        lists["approvers"] = [f"approver: {a}" for a in data.approvers]
    if isinstance(data, RequestApproved):
        fields["approved_by_phrase"] = f" by {data.approved_by}" if data.approved_by else ""
    if isinstance(
        data, ProvisioningStarted | ProvisioningPlanned | ProvisioningSucceeded | ProvisioningFailed
    ):
        fields["attempt"] = str(data.attempt)
    if isinstance(data, ProvisioningPlanned):
        _plan_fields(data, fields, lists)
    if isinstance(data, ProvisioningStarted):
        approved = data.approved_plan_sha256
        fields["plan_phrase"] = (
            f", applying the approved plan {approved[:12]}"
            if approved
            else ", planning only: nothing is applied before the approval"
            if data.plan_only
            else ""
        )
    if isinstance(data, ProvisioningSucceeded):
        seconds = data.duration_seconds
        fields["duration_phrase"] = f" in {round(seconds / 60, 1)} min" if seconds else ""
        fields["plan_phrase"] = f" (plan {data.plan_sha256[:12]})" if data.plan_sha256 else ""
        lists["outputs"] = [
            f"{name}: {format_value(value)}" for name, value in sorted(data.outputs.items())
        ]
    if isinstance(data, ProvisioningRefused):
        fields["reason"] = data.reason
        fields["state_phrase"] = f" (its instance is {data.state})" if data.state else ""
    if isinstance(data, ProvisioningFailed):
        fields["reason"] = data.reason
        lists["error_tail"] = list(data.error_tail)
        fields["what_to_do"] = _WHAT_TO_DO.get(data.build_status, _WHAT_TO_DO[None])
    return fields, lists


def _plan_fields(
    data: ProvisioningPlanned, fields: dict[str, str], lists: dict[str, list[str]]
) -> None:
    """The plan's phrases; its tables are :func:`plan_tables`'."""
    counts = data.summary.counts
    fields["counts"] = (
        f"{counts.add} to add, {counts.change} to change, {counts.replace} to replace, "
        f"{counts.destroy} to destroy"
    )
    cost = data.cost
    fields["cost_phrase"] = (
        f"{cost.monthly_after} {cost.currency}/month (was {cost.monthly_before}, change "
        f"{cost.monthly_delta:+}; on-demand prices of {cost.prices_as_of}, {cost.region})"
    )
    lists["cost_notes"] = list(cost.not_priced)
    failed = [c for c in data.policy.checks if not c.passed]
    total = len(data.policy.checks)
    fields["policy_phrase"] = (
        f"all {total} checks passed" if not failed else f"{len(failed)} of {total} checks failed"
    )
    # What a reviewer must not miss (exposure, IMDS, data deletion); policy failures
    # and their reasons are in the policy table.
    lists["findings"] = [f"{f.address}: {f.detail}" for f in data.summary.findings]
    budget = data.budget
    fields["budget_phrase"] = (
        budget.reason
        if budget is not None and budget.reason
        else "Within budget."
        if budget is not None and budget.ceiling is not None
        else "No budget applies."
    )
    fields["approval_phrase"] = {
        PlanVerdict.HOLD: f"Waiting for approval of plan {data.plan_sha256[:12]}: nothing is "
        "applied until it is approved, and then exactly this plan. Why:",
        PlanVerdict.REFUSE: "Refused: nothing is applied, because:",
        PlanVerdict.APPLY: "Applying exactly this plan now.",
    }[data.verdict]
    lists["verdict_reasons"] = list(data.reasons) if data.verdict is not PlanVerdict.APPLY else []
    lists["replanned"] = (
        [f"The approved plan was not applied: {data.replanned_because}. This new plan replaces it."]
        if data.replanned_because
        else []
    )
    fields["plan_json_s3_uri"] = data.artifacts.plan_json_s3_uri


def render(event: AnyEvent) -> Message | None:
    """The message for a lifecycle event, or None if the event is not written back."""
    template = _templates().get(event.type)
    if template is None or not isinstance(event.data, TicketEventData):
        return None
    fields, lists = _fields(event.data)
    named = plan_tables(event.data) if isinstance(event.data, ProvisioningPlanned) else {}
    lines: list[str] = []
    bullets: dict[int, tuple[str, ...]] = {}
    tables: dict[int, Table] = {}
    for line in template["lines"]:
        table = _TABLE.match(line)
        if table:
            if table.group(1) in named:
                tables[len(lines)] = named[table.group(1)]
                lines.append("")
            continue
        match = _LIST.match(line)
        if match:
            items = lists.get(match.group(1), [])[:_MAX_ITEMS]
            if items:
                bullets[len(lines)] = tuple(items)
                lines.append("")
            continue
        # substitute (not safe_substitute): a placeholder the event cannot fill is a bug.
        lines.append(Template(line).substitute(fields))
    return Message(title=template["title"], lines=tuple(lines), bullets=bullets, tables=tables)
