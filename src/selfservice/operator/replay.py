"""``selfservice replay``: re-deliver a time window of archived events, for an audit.

An audit replay (the default) reaches only the audit trail: the tool creates a rule of
its own on the bus that matches this replay's events (and ``--type``), pointing at the
trail, and starts an EventBridge replay whose ``FilterArns`` names that rule alone. The
consumers' rules refuse replayed events (``replay-name`` must not exist), so nothing is
provisioned or written back again.

``--reprocess`` names the replay ``reprocess-…`` and adds the consumers' reprocess
rules, which accept exactly such replays: the events reach the provisioner and the
notifier again, who handle them idempotently (a request already built is not built
twice, a ticket update already written is not written twice).

The same code drives AWS and the local runtime (whose moto honours the window and the
filters — see ``selfservice.local.moto_gaps``).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from selfservice.operator.resources import (
    PlatformResources,
    ResourceError,
    add_arguments,
    resolve,
    trail_events,
)

__all__ = ["ReplayPlan", "ReplayReport", "add_parser", "plan_replay", "run_replay"]

TERMINAL = {"COMPLETED", "CANCELLED", "FAILED"}


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay will do."""

    name: str
    start: datetime
    end: datetime
    types: tuple[str, ...]
    reprocess: bool
    reprocess_rules: tuple[str, ...]

    @property
    def rule_name(self) -> str:
        """The replay's own rule (the audit trail's door for this replay)."""
        return f"replay-{self.name}"[:64]


@dataclass
class ReplayReport:
    """What a replay did (or, dry, would do)."""

    plan: ReplayPlan
    state: str
    by_type: Counter[str] = field(default_factory=Counter)
    event_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "replay": self.plan.name,
            "state": self.state,
            "window": [self.plan.start.isoformat(), self.plan.end.isoformat()],
            "types": list(self.plan.types),
            "reprocess": self.plan.reprocess,
            "reprocess_rules": list(self.plan.reprocess_rules),
            "events": sum(self.by_type.values()),
            "by_type": dict(sorted(self.by_type.items())),
            "event_ids": self.event_ids,
        }


def _event_time(event: dict[str, Any]) -> datetime | None:
    value = event.get("time")
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _cloudevent_id(event: dict[str, Any]) -> str:
    detail = event.get("detail")
    return str(detail.get("id")) if isinstance(detail, dict) else str(event.get("id"))


def _reprocess_rules(resources: PlatformResources) -> tuple[str, ...]:
    events = resources.client("events")
    found = []
    for page in events.get_paginator("list_rules").paginate(EventBusName=resources.bus_name):
        for rule in page.get("Rules", []):
            pattern = json.loads(rule.get("EventPattern") or "{}")
            if pattern.get("replay-name") == [{"prefix": "reprocess-"}]:
                found.append(rule["Arn"])
    return tuple(sorted(found))


def plan_replay(
    resources: PlatformResources,
    start: datetime,
    end: datetime,
    *,
    types: tuple[str, ...] = (),
    reprocess: bool = False,
) -> ReplayPlan:
    """Check the request and name the replay."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("give times with a zone, e.g. 2026-11-21T09:00:00Z")
    if start >= end:
        raise ValueError("--start must be before --end")
    if resources.archive_arn is None:
        raise ResourceError(f"the bus {resources.bus_name} has no archive")
    if reprocess and types:
        # The consumers' queues admit only their own rules, which cannot filter a replay
        # by type: reprocessing replays the window's events to every consumer.
        raise ValueError("--type narrows audit replays only; --reprocess takes the whole window")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{'reprocess' if reprocess else 'audit'}-{stamp}-{secrets.token_hex(3)}"
    rules = _reprocess_rules(resources) if reprocess else ()
    if reprocess and not rules:
        raise ResourceError("no reprocess rules on the bus (replay-name prefix reprocess-)")
    return ReplayPlan(name, start, end, types, reprocess, rules)


def in_window(resources: PlatformResources, plan: ReplayPlan) -> list[dict[str, Any]]:
    """The live events the audit trail holds for the plan's window and types."""
    since = int(plan.start.timestamp() * 1000)
    found = []
    for event in trail_events(resources, since_ms=since):
        at = _event_time(event)
        if "replay-name" in event or at is None or not plan.start <= at < plan.end:
            continue
        if plan.types and event.get("detail-type") not in plan.types:
            continue
        found.append(event)
    return found


def run_replay(
    resources: PlatformResources,
    plan: ReplayPlan,
    *,
    say: Any = print,
    poll_seconds: float = 2.0,
    settle_seconds: float = 10.0,
    timeout_seconds: float = 3600.0,
) -> ReplayReport:
    """Start the replay, follow it to its end, count what reached the audit trail."""
    events = resources.client("events")
    pattern: dict[str, Any] = {"replay-name": [plan.name]}
    if plan.types:
        pattern["detail-type"] = list(plan.types)
    rule_arn = events.put_rule(
        Name=plan.rule_name,
        EventBusName=resources.bus_name,
        EventPattern=json.dumps(pattern),
        Description=f"selfservice replay {plan.name} into the audit trail (temporary)",
    )["RuleArn"]
    try:
        events.put_targets(
            Rule=plan.rule_name,
            EventBusName=resources.bus_name,
            Targets=[{"Id": "audit-trail", "Arn": resources.audit_log_group_arn}],
        )
        started = time.monotonic()
        events.start_replay(
            ReplayName=plan.name,
            Description="selfservice replay",
            EventSourceArn=resources.archive_arn,
            EventStartTime=plan.start,
            EventEndTime=plan.end,
            Destination={"Arn": resources.bus_arn, "FilterArns": [rule_arn, *plan.reprocess_rules]},
        )
        state = "STARTING"
        window = (plan.end - plan.start).total_seconds()
        while time.monotonic() - started < timeout_seconds:
            replay = events.describe_replay(ReplayName=plan.name)
            state = replay["State"]
            last = replay.get("EventLastReplayedTime")
            done = (
                f"{min(100.0, 100 * (last - plan.start).total_seconds() / window):.0f}%"
                if isinstance(last, datetime)
                else "…"
            )
            say(f"replay {plan.name}: {state} {done}")
            if state in TERMINAL:
                break
            time.sleep(poll_seconds)
        report = ReplayReport(plan, state)
        if state == "COMPLETED":
            _count_delivered(resources, plan, report, settle_seconds, poll_seconds)
        return report
    finally:
        events.remove_targets(
            Rule=plan.rule_name, EventBusName=resources.bus_name, Ids=["audit-trail"]
        )
        events.delete_rule(Name=plan.rule_name, EventBusName=resources.bus_name)


def _count_delivered(
    resources: PlatformResources,
    plan: ReplayPlan,
    report: ReplayReport,
    settle_seconds: float,
    poll_seconds: float,
) -> None:
    """Count the replay's events in the trail once deliveries stop arriving."""
    since = int(plan.start.timestamp() * 1000)
    previous, quiet = -1, 0.0
    while True:
        found = [
            e for e in trail_events(resources, since_ms=since) if e.get("replay-name") == plan.name
        ]
        if len(found) == previous:
            quiet += poll_seconds
        else:
            previous, quiet = len(found), 0.0
        if quiet >= settle_seconds or settle_seconds == 0:
            break
        time.sleep(poll_seconds)
    report.by_type = Counter(str(e.get("detail-type")) for e in found)
    report.event_ids = sorted(_cloudevent_id(e) for e in found)


# -- command line -----------------------------------------------------------------------


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run(args: argparse.Namespace) -> int:
    try:
        resources = resolve(args)
        plan = plan_replay(
            resources, args.start, args.end, types=tuple(args.type or ()), reprocess=args.reprocess
        )
        if args.dry_run:
            live = in_window(resources, plan)
            report = ReplayReport(plan, "DRY_RUN", Counter(str(e.get("detail-type")) for e in live))
            report.event_ids = sorted(_cloudevent_id(e) for e in live)
        else:
            report = run_replay(resources, plan, say=lambda line: print(line, file=sys.stderr))
    except (ValueError, ResourceError) as exc:
        print(f"selfservice replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        verb = "would replay" if args.dry_run else "replayed"
        target = "the audit trail and the consumers" if plan.reprocess else "the audit trail"
        total = sum(report.by_type.values())
        print(
            f"{plan.name}: {verb} {total} event(s) of {plan.start:%Y-%m-%d %H:%M:%S} to "
            f"{plan.end:%Y-%m-%d %H:%M:%S} UTC into {target} ({report.state})"
        )
        for event_type, count in sorted(report.by_type.items()):
            print(f"  {count:5}  {event_type}")
    return 0 if report.state in {"COMPLETED", "DRY_RUN"} else 1


def add_parser(commands: Any) -> None:
    """Add ``replay`` to the ``selfservice`` parser."""
    replay = commands.add_parser(
        "replay", help="re-deliver archived events of a time window (audit or reprocessing)"
    )
    replay.add_argument(
        "--start", type=_time, required=True, help="ISO 8601, e.g. 2026-11-21T09:00Z"
    )
    replay.add_argument("--end", type=_time, required=True, help="ISO 8601 (exclusive)")
    replay.add_argument(
        "--type", action="append", metavar="EVENT_TYPE", help="only these types (audit replays)"
    )
    replay.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    replay.add_argument(
        "--reprocess",
        action="store_true",
        help="also deliver to the provisioner and notifier (idempotent consumers)",
    )
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(replay)
    replay.set_defaults(func=_run)
