"""Ticket messages rendered from data (``notifier/messages.json``), never from code.

A message is a title and lines; ``{{name}}`` lines expand to one bullet per item
(rejection reasons, outputs, the end of a Terraform error) and vanish when empty.
Nothing secret is ever in an event, and outputs marked sensitive never reach one, so
nothing secret can be rendered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from selfservice_contracts.events import (
    AnyEvent,
    ApprovalRequired,
    ProvisioningFailed,
    ProvisioningStarted,
    ProvisioningSucceeded,
    RequestApproved,
    RequestRejected,
    TicketEventData,
)

__all__ = ["Message", "render"]

_TEMPLATES = Path(__file__).resolve().parent.parent / "messages.json"
_LIST = re.compile(r"^\{\{(\w+)\}\}$")
_MAX_ITEMS = 20


@dataclass(frozen=True)
class Message:
    """A rendered ticket message."""

    title: str
    lines: tuple[str, ...]
    bullets: dict[int, tuple[str, ...]]
    """Bullet items by line index (the line itself is empty)."""

    @property
    def text(self) -> str:
        """Plain text: the title, then each line or its bullets."""
        out = [f"[selfservice] {self.title}"]
        for index, line in enumerate(self.lines):
            if index in self.bullets:
                out += [f"  - {item}" for item in self.bullets[index]]
            else:
                out.append(line)
        return "\n".join(out)


@cache
def _templates() -> dict[str, dict[str, Any]]:
    document: dict[str, dict[str, Any]] = json.loads(_TEMPLATES.read_text())
    return {key: value for key, value in document.items() if not key.startswith("_")}


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "none"
    return str(value)


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
    if isinstance(data, ProvisioningStarted | ProvisioningSucceeded | ProvisioningFailed):
        fields["attempt"] = str(data.attempt)
    if isinstance(data, ProvisioningSucceeded):
        seconds = data.duration_seconds
        fields["duration_phrase"] = f" in {round(seconds / 60, 1)} min" if seconds else ""
        lists["outputs"] = [
            f"{name}: {_format_value(value)}" for name, value in sorted(data.outputs.items())
        ]
    if isinstance(data, ProvisioningFailed):
        fields["reason"] = data.reason
        lists["error_tail"] = list(data.error_tail)
    return fields, lists


def render(event: AnyEvent) -> Message | None:
    """The message for a lifecycle event, or None if the event is not written back."""
    template = _templates().get(event.type)
    if template is None or not isinstance(event.data, TicketEventData):
        return None
    fields, lists = _fields(event.data)
    lines: list[str] = []
    bullets: dict[int, tuple[str, ...]] = {}
    for line in template["lines"]:
        match = _LIST.match(line)
        if match:
            items = lists.get(match.group(1), [])[:_MAX_ITEMS]
            if items:
                bullets[len(lines)] = tuple(items)
                lines.append("")
            continue
        # substitute (not safe_substitute): a placeholder the event cannot fill is a bug.
        lines.append(Template(line).substitute(fields))
    return Message(title=template["title"], lines=tuple(lines), bullets=bullets)
