"""The ``selfservice dlq list`` and ``selfservice dlq redrive`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from selfservice.operator.dlq.backlog import HELD_MINUTES, SourceBacklog
from selfservice.operator.dlq.dead_letters import DeadLetters
from selfservice.operator.dlq.queues import DEFAULT_PREFIX, DeadLetterQueue, DlqError
from selfservice.operator.dlq.reasons import ParkedMessage

__all__ = ["add_parser"]


def _clients(args: argparse.Namespace) -> DeadLetters:
    # AWS_REGION too (what Lambda and `selfservice up`'s operator.env set; botocore reads
    # only AWS_DEFAULT_REGION and the config files).
    region = args.region or os.environ.get("AWS_REGION") or None
    session = boto3.session.Session(profile_name=args.profile, region_name=region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url)  # type: ignore[call-overload]

    return DeadLetters(
        client("sqs"),
        client("events"),
        client("logs"),
        prefix=args.prefix,
        warn=lambda text: print(f"warning: {text}", file=sys.stderr),
        cloudwatch=client("cloudwatch"),
    )


def _print_backlog(backlog: SourceBacklog) -> None:
    age = (
        f"; oldest {_minutes(backlog.oldest_age_seconds)}"
        if backlog.oldest_age_seconds is not None
        else ""
    )
    held = ""
    if backlog.held:
        held = " — HELD" + (
            ": its one FIFO group waits behind the in-flight message(s)"
            if backlog.fifo and backlog.in_flight
            else ""
        )
    print(
        f"  source {backlog.name}: {backlog.waiting} waiting, {backlog.in_flight} in flight"
        f"{age}{held}"
    )
    if backlog.last_failure is not None:
        print(
            f"    failing: {backlog.failing_message_id} since {backlog.failing_since}: "
            f"{backlog.last_failure.text}"
        )
        print(f"         ({backlog.last_failure.origin})")


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"  # noqa: PLR2004


def _print_listing(dlq: DeadLetterQueue, parked: Sequence[ParkedMessage]) -> None:
    depth = dlq.queue.visible + dlq.queue.in_flight
    count = f"{depth} message{'s' if depth != 1 else ''}" if depth else "empty"
    if dlq.queue.in_flight:
        count += f", {dlq.queue.in_flight} in flight"
    print(f"{dlq.queue.name}  ({count}; {dlq.describe()})")
    for message in parked:
        event = " ".join(
            part
            for part in (
                message.event_type or "(not an event of ours)",
                f"ticket {message.ticket}" if message.ticket else "",
                f"request {message.request_id}" if message.request_id else "",
            )
            if part
        )
        print(
            f"  {message.message_id}  sent {message.sent_at or '?'}  "
            f"received {message.receive_count}x  {event}"
        )
        if message.reason:
            print(f"    why: {message.reason.text}")
            print(f"         ({message.reason.origin})")
        else:
            print("    why: unknown (no failure attributes; no failure line in the log groups)")
        if message.contract_error and (
            message.reason is None or message.contract_error not in message.reason.text
        ):
            print(f"    body: {message.contract_error}")
    if parked and len(parked) < depth:
        more = depth - len(parked)
        hint = " (a FIFO queue shows one message group's first batch)" if dlq.queue.fifo else ""
        print(f"  … and {more} more{hint}; --max shows more")


def _list(args: argparse.Namespace) -> int:
    tools = _clients(args)
    listing = []
    for dlq in tools.discover():
        messages = tools.peek(dlq, args.max)
        parked = tools.explain(dlq, messages, args.log_group)
        backlogs = tools.backlogs(dlq, args.log_group, held_minutes=args.held_minutes)
        listing.append((dlq, parked, backlogs))
    if args.json:
        document = [
            {
                "name": dlq.queue.name,
                "url": dlq.queue.url,
                "fifo": dlq.queue.fifo,
                "depth": dlq.queue.visible + dlq.queue.in_flight,
                "in_flight": dlq.queue.in_flight,
                "redrivable": dlq.redrivable,
                "redrives_to": [s.name for s in dlq.sources],
                "eventbridge_rules": list(dlq.rules),
                "note": dlq.describe(),
                "messages": [asdict(p) for p in parked],
                "sources": [asdict(b) for b in backlogs],
            }
            for dlq, parked, backlogs in listing
        ]
        print(json.dumps({"dead_letter_queues": document}, indent=2))
        return 0
    if not listing:
        print(f"no dead-letter queues found with the prefix {args.prefix!r}")
    for dlq, parked, backlogs in listing:
        _print_listing(dlq, parked)
        for backlog in backlogs:
            _print_backlog(backlog)
    return 0


def _redrive(args: argparse.Namespace) -> int:
    tools = _clients(args)
    dlqs = tools.discover()
    if args.queue:
        chosen = [tools.select(dlqs, args.queue)]
        if not chosen[0].redrivable:
            raise DlqError(f"{chosen[0].queue.name}: {chosen[0].describe()}")
    else:
        chosen = []
        for dlq in dlqs:
            if dlq.redrivable:
                chosen.append(dlq)
            elif dlq.queue.visible + dlq.queue.in_flight:
                print(f"skipped {dlq.queue.name}: {dlq.describe()}")
    status = 0
    for dlq in chosen:
        result = tools.redrive(
            dlq,
            limit=args.max,
            dry_run=args.dry_run,
            progress=lambda text: print(text, file=sys.stderr),
        )
        if args.dry_run:
            for message_id, target in result.would_move:
                print(f"would move {message_id} → {target}")
            print(f"{dlq.queue.name}: dry run, {len(result.would_move)} message(s) would move")
            continue
        for message_id, error in result.failed:
            print(f"  not moved {message_id}: {error} (still in {dlq.queue.name})")
        for message_id, error in result.not_deleted:
            print(
                f"  sent {message_id} but could not delete it: {error} "
                "(a later redrive sends it again; consumers are idempotent on the event id)"
            )
        targets = ", ".join(s.name for s in dlq.sources)
        print(
            f"{dlq.queue.name} → {targets}: moved {len(result.moved)}, "
            f"failed {len(result.failed)}, sent but not deleted {len(result.not_deleted)}"
        )
        status = status or (0 if result.ok else 1)
    return status


def _run(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = _list if args.dlq_command == "list" else _redrive
    try:
        return handler(args)
    except DlqError as exc:
        print(f"selfservice dlq: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"selfservice dlq: {exc}", file=sys.stderr)
        return 1


def add_parser(commands: Any) -> None:
    """Add ``dlq`` and its subcommands to the ``selfservice`` parser."""
    dlq = commands.add_parser("dlq", help="what is parked in the DLQs and why; redrive")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="OPERATION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--prefix",
            default=DEFAULT_PREFIX,
            help=f"the stack's names start with this (default {DEFAULT_PREFIX})",
        )
        parser.add_argument(
            "--endpoint-url", help="AWS endpoint (local runtime; default: $AWS_ENDPOINT_URL or AWS)"
        )
        parser.add_argument(
            "--region", help="AWS region (default: $AWS_REGION, else the config chain)"
        )
        parser.add_argument("--profile", help="AWS profile of the credential chain")
        parser.set_defaults(func=_run)

    listing = dlq_commands.add_parser("list", help="each DLQ's messages and why they are there")
    listing.add_argument("--max", type=int, default=10, help="messages shown per DLQ (default 10)")
    listing.add_argument(
        "--log-group",
        action="append",
        help="search only this log group for failure lines (repeatable; default: the stack's)",
    )
    listing.add_argument(
        "--held-minutes",
        type=float,
        default=HELD_MINUTES,
        help="a source queue whose oldest message or current failure is this old is shown"
        f" as HELD (default {HELD_MINUTES})",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    common(listing)
    redrive = dlq_commands.add_parser(
        "redrive", help="move messages back to their source queue (after the fix)"
    )
    redrive.add_argument("--queue", help="one DLQ: its name, URL or a unique part of its name")
    redrive.add_argument(
        "--max", type=int, default=None, help="move at most this many per DLQ (default: all)"
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="show what would move; move nothing"
    )
    common(redrive)
