"""``selfservice status TICKET``: what happened to a ticket, from the record.

Two records, merged into one timeline: the provisioner's ledger (the state of each
product instance of the ticket, every transition with its time and cause, the current
build and its log link, the outputs) and the audit trail (every event about the
ticket: received, approvals, rejections, builds, each write-back to the ticket and
each write-back that failed), replayed events included, marked ``[replayed]`` with the
replay's name. The latest plan of each instance (``provisioning.planned``) is shown as
the ticket was shown it: counts, resources, cost, policy and budget results, the verdict,
the plan's SHA-256 and where the full plan is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from selfservice.operator.resources import ResourceError, add_arguments, resolve, trail_events
from selfservice_contracts.request import TicketRef, TicketSystem, derive_request_id

__all__ = ["Step", "TicketStatus", "add_parser", "latest_plans", "plan_lines", "ticket_status"]

ROOT = Path(__file__).resolve().parents[3]
PRODUCTS_DIR = ROOT / "schemas/selfservice_contracts/products"
PLANNED = "selfservice.provisioning.planned.v1"


@dataclass(frozen=True)
class Step:
    """One line of the timeline."""

    at: datetime
    source: str
    """``ledger`` or the producing service."""
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class TicketStatus:
    """A ticket's instances and its timeline."""

    ticket: str
    instances: list[dict[str, Any]]
    timeline: list[Step]
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The latest ``provisioning.planned`` event of each request id (as delivered)."""

    def as_json(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "ticket": self.ticket,
            "instances": self.instances,
            "plans": {
                request_id: event["detail"]["data"] for request_id, event in self.plans.items()
            },
            "timeline": [
                {"at": s.at.isoformat(), "source": s.source, "what": s.what, "detail": s.detail}
                for s in self.timeline
            ],
        }


def parse_ticket(text: str) -> str:
    """``servicenow:RITM0010042``, ``jira:ITSM-42``, or a bare key (the system guessed)."""
    system, sep, key = text.partition(":")
    if not sep:
        key = text
        system = "servicenow" if key[:4].upper() in {"RITM", "REQ0", "SCTA", "INC0"} else "jira"
    try:
        TicketSystem(system)
    except ValueError as exc:
        raise ValueError(f"unknown ticket system {system!r} (servicenow or jira)") from exc
    return f"{system}:{key}"


def _on_path(service: str) -> None:
    # The operator tools read the record as the services write and render it.
    path = str(ROOT / "services" / service)
    if path not in sys.path:
        sys.path.append(path)


def latest_plans(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last plan of each request id, by attempt then time (replays left out)."""
    latest: dict[str, dict[str, Any]] = {}

    def order(event: dict[str, Any]) -> tuple[int, str]:
        detail = event["detail"]
        return int(detail["data"].get("attempt", 1)), str(detail.get("time", ""))

    for event in events:
        detail = event.get("detail") or {}
        if event.get("detail-type") != PLANNED or "replay-name" in event:
            continue
        request_id = str(detail.get("requestid") or (detail.get("data") or {}).get("request_id"))
        if request_id not in latest or order(event) >= order(latest[request_id]):
            latest[request_id] = event
    return latest


def plan_lines(event: dict[str, Any]) -> list[str]:
    """A plan as its ticket was shown it (the notifier's own text), for the terminal."""
    _on_path("notifier")
    from notifier.domain.messages import render  # noqa: PLC0415
    from selfservice_runtime.parsing import parse_eventbridge_event  # noqa: PLC0415

    planned = parse_eventbridge_event({k: v for k, v in event.items() if k != "replay-name"})
    message = render(planned)
    if message is None:  # pragma: no cover - the notifier renders every planned event
        return []
    data = event["detail"]["data"]
    head = f"plan {data['plan_sha256']}, {data['verdict']}"
    # The ticket groups the resources a reviewer need not check; the operator sees each.
    resources = data["summary"]["resources"]
    every = [f"Every resource in the plan ({len(resources)}):"] + [
        f"  {resource['action']:8} {resource['address']}" for resource in resources
    ]
    return [head, *message.text.splitlines()[1:], *every]


def _products() -> list[str]:
    return sorted(p.stem for p in PRODUCTS_DIR.glob("*.json"))


def _ledger(resources: Any, ticket: str) -> tuple[list[dict[str, Any]], list[Step]]:
    if resources.ledger_table is None:
        raise ResourceError("no ledger table found; give --stack or deploy the provisioner")
    _on_path("provisioner")  # the adapter reads the ledger as it writes it
    from provisioner.adapters.ledger_dynamodb import DynamoDBLedger  # noqa: PLC0415

    ledger = DynamoDBLedger(resources.client("dynamodb"), resources.ledger_table)
    system, key = ticket.split(":", 1)
    instances, steps = [], []
    for product in _products():
        request_id = derive_request_id(
            TicketRef.model_construct(system=TicketSystem(system), key=key, internal_id="", url=""),
            product,
        )
        entry = ledger.get(request_id)
        if entry is None:
            continue
        instances.append(
            {
                "request_id": entry.request_id,
                "product": entry.product,
                "state": entry.state.value,
                "action": entry.action.value,
                "attempt": entry.attempt,
                "build_id": entry.build_id,
                "log_url": entry.log_url,
                "updated_at": entry.updated_at.isoformat(),
                "outputs": entry.outputs,
            }
        )
        for transition in ledger.history(request_id):
            before = transition.from_state.value if transition.from_state else "∅"
            steps.append(
                Step(
                    transition.at,
                    "ledger",
                    f"{product}: {before} → {transition.to_state.value}",
                    {"cause": transition.cause, **transition.detail},
                )
            )
    return instances, steps


def _summary(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    detail = event.get("detail") or {}
    data = detail.get("data") or {}
    kind = str(event.get("detail-type", "?")).removeprefix("selfservice.").removesuffix(".v1")
    keep = {
        k: data[k]
        for k in (
            "action",
            "product",
            "reasons",
            "build_id",
            "log_url",
            "error",
            "channel",
            "ticket_state",
            "outputs",
            "attempt",
            "attempts",
            "reason",
            "build_status",
            "phase",
            "status_code",
            "verdict",
            "plan_sha256",
            "approved_plan_sha256",
            "replanned_because",
        )
        if k in data and data[k] not in (None, [], {})
    }
    reply_to = data.get("in_reply_to")
    if isinstance(reply_to, dict) and reply_to.get("type"):
        keep["in_reply_to"] = str(reply_to["type"]).removeprefix("selfservice.").removesuffix(".v1")
    keep["event_id"] = detail.get("id")
    if "replay-name" in event:
        keep["replay"] = event["replay-name"]
    return kind, keep


def ticket_status(resources: Any, ticket: str) -> TicketStatus:
    """The ticket's record."""
    instances, steps = _ledger(resources, ticket)
    # Events about the ticket, and about its instances (a modify or decommission item
    # is another ticket acting on this one's instance: same request id).
    request_ids = {i["request_id"] for i in instances}
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    for term in (ticket, *sorted(request_ids)):
        for event in trail_events(resources, pattern=f'"{term}"'):
            detail = event.get("detail") or {}
            # A replayed event keeps its id: each replay's delivery is a step of its own.
            delivery = f"{detail.get('id')}|{event.get('replay-name', '')}"
            if delivery in seen:
                continue
            if detail.get("subject") != ticket and detail.get("requestid") not in request_ids:
                continue
            seen.add(delivery)
            events.append(event)
            steps.append(_step(event))
    steps.sort(key=lambda s: (s.at, s.source != "ledger"))
    return TicketStatus(ticket, instances, steps, latest_plans(events))


def _step(event: dict[str, Any]) -> Step:
    detail = event.get("detail") or {}
    kind, keep = _summary(event)
    if detail.get("subject"):
        keep["ticket"] = detail["subject"]
    at = datetime.fromisoformat(str(detail.get("time", event.get("time"))).replace("Z", "+00:00"))
    source = str(detail.get("source", event.get("source", ""))).removeprefix("selfservice.")
    if "replay-name" in event:  # at its original time, marked: the replay did not happen then
        kind = f"{kind} [replayed]"
    return Step(at, source, kind, keep)


def _render(status: TicketStatus) -> str:
    lines = [f"{status.ticket}"]
    if not status.instances and not status.timeline:
        return f"{status.ticket}: nothing recorded (no ledger entry, no event in the audit trail)"
    for instance in status.instances:
        lines.append(
            f"  {instance['product']:12} {instance['state']:12} action {instance['action']}, "
            f"attempt {instance['attempt']}, request {instance['request_id']}"
        )
        if instance["build_id"]:
            lines.append(f"  {'':12} build {instance['build_id']}")
        if instance["log_url"]:
            lines.append(f"  {'':12} log   {instance['log_url']}")
        for name, value in sorted(instance["outputs"].items()):
            lines.append(f"  {'':12} {name} = {json.dumps(value)}")
    for event in status.plans.values():
        lines.append("")
        lines += [f"  {line}" if line else "" for line in plan_lines(event)]
    lines.append("")
    for step in status.timeline:
        extra = ", ".join(
            f"{k}={v}"
            for k, v in step.detail.items()
            if k != "event_id" and not (k == "ticket" and v == status.ticket)
        )
        at = step.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"  {at}  {step.source:12} {step.what}" + (f"  ({extra})" if extra else ""))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    try:
        ticket = parse_ticket(args.ticket)
        status = ticket_status(resolve(args), ticket)
    except (ValueError, ResourceError) as exc:
        print(f"selfservice status: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(status.as_json(), indent=2, default=str) if args.json else _render(status))
    return 0 if status.instances or status.timeline else 1


def add_parser(commands: Any) -> None:
    """Add ``status`` to the ``selfservice`` parser."""
    status = commands.add_parser("status", help="a ticket's ledger state and full timeline")
    status.add_argument("ticket", help="servicenow:RITM0010042, jira:ITSM-42, or the bare key")
    status.add_argument("--json", action="store_true", help="print the record as JSON")
    add_arguments(status)
    status.set_defaults(func=_run)
