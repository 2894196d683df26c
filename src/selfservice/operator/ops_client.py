"""``selfservice ops``: call the ops API with SigV4, the way ``awscurl`` does.

Credentials come from the standard AWS chain (environment, shared config and SSO
profiles, container and instance roles) through botocore; requests are signed for the
``execute-api`` service. The same client talks to a deployed API
(``https://{id}.execute-api.{region}.amazonaws.com``) and to the local runtime
(``selfservice up`` prints its URL and writes the operator's credentials).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import botocore.session
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

__all__ = ["OpsClient", "OpsClientError", "add_parser"]

HTTP_TIMEOUT_SECONDS = 35.0
"""Longer than the HTTP API's 29 s integration limit, so the API's own 504 is seen."""
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class OpsClientError(Exception):
    """The client cannot make the call (no URL, no credentials, unreachable API)."""


@dataclass(frozen=True)
class OpsResponse:
    """Status and decoded JSON body."""

    status: int
    body: dict[str, Any]


class OpsClient:
    """A SigV4-signing client of one ops API."""

    def __init__(self, url: str, *, region: str | None = None, profile: str | None = None) -> None:
        self.url = url.rstrip("/")
        session = botocore.session.Session(profile=profile)
        match = _REGION_IN_HOST.search(urlsplit(self.url).netloc)
        self.region = (
            region
            or (match.group(1) if match else None)
            or session.get_config_variable("region")
            or "us-east-1"
        )
        credentials = session.get_credentials()
        if credentials is None:
            raise OpsClientError(
                "no AWS credentials found (environment, profile, SSO or role); "
                "for the local runtime, load the file `selfservice up` wrote"
            )
        self._credentials = credentials
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=HTTP_TIMEOUT_SECONDS), retries=False
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> OpsResponse:
        """Sign and send one request."""
        data = json.dumps(body).encode() if body is not None else None
        request = AWSRequest(
            method=method,
            url=f"{self.url}{path}",
            data=data,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(
            request
        )
        try:
            response = self._http.request(
                method, str(request.url), body=data, headers=dict(request.headers.items())
            )
        except urllib3.exceptions.HTTPError as exc:
            raise OpsClientError(f"cannot reach {self.url}: {exc}") from exc
        try:
            decoded = json.loads(response.data or b"{}")
        except ValueError:
            decoded = {"message": response.data.decode(errors="replace")}
        return OpsResponse(response.status, decoded if isinstance(decoded, dict) else {})

    def run_commands(self, **body: Any) -> OpsResponse:
        """``POST /run-commands``."""
        return self.call("POST", "/run-commands", {k: v for k, v in body.items() if v is not None})

    def get_command(self, command_id: str) -> OpsResponse:
        """``GET /commands/{command_id}``."""
        return self.call("GET", f"/commands/{command_id}")

    def start_association(self, association_ids: list[str]) -> OpsResponse:
        """``POST /start-association``."""
        return self.call("POST", "/start-association", {"association_ids": association_ids})


# -- command line ---------------------------------------------------------------------


def _tags(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    tags = {}
    for value in values:
        key, sep, tag_value = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"selfservice ops: --tag wants KEY=VALUE, got {value!r}")
        tags[key] = tag_value
    return tags


def _print_results(response: OpsResponse, out: TextIO) -> None:
    body = response.body
    if response.status >= 400:  # noqa: PLR2004 - HTTP error range
        # The API's own envelope, else API Gateway's ({"Message": ...}: an IAM refusal).
        error, message = body.get("error", ""), body.get("message") or body.get("Message", "")
        print(f"HTTP {response.status} {error}: {message}", file=out)
        for refused in body.get("refused", []):
            print(f"  refused {refused['command']!r}: {refused['reason']}", file=out)
        for error in body.get("errors", []):
            print(f"  {error.get('loc') or 'body'}: {error.get('message')}", file=out)
        if body.get("command_ids"):
            ids = ", ".join(body["command_ids"])
            print(f"  still running; later: selfservice ops get-command {ids}", file=out)
    summary = ", ".join(f"{k} {v}" for k, v in body.get("summary", {}).items())
    if summary:
        print(f"{len(body.get('results', []))} instance(s): {summary}", file=out)
    for result in body.get("results", []):
        print(
            f"── {result['instance_id']}  {result['status']} (exit {result['response_code']})"
            f"  command {result['command_id']}",
            file=out,
        )
        if result.get("stdout"):
            print(result["stdout"].rstrip("\n"), file=out)
        if result.get("stderr"):
            print("stderr: " + result["stderr"].rstrip("\n"), file=out)
        if result.get("truncated"):
            print(f"(output truncated; full text at {result.get('stdout_url') or 'SSM'})", file=out)


def _exit_code(response: OpsResponse) -> int:
    if response.status >= 400:  # noqa: PLR2004 - HTTP error range
        return 1
    statuses = {r.get("status") for r in response.body.get("results", [])}
    return 0 if statuses <= {"Success"} else 1


def _run(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("SELFSERVICE_OPS_URL")
    if not url:
        print("selfservice ops: give --url or set SELFSERVICE_OPS_URL", file=sys.stderr)
        return 2
    try:
        client = OpsClient(url, region=args.region, profile=args.profile)
        if args.ops_command == "run-commands":
            if bool(args.instance_id) == bool(args.tag):
                print("selfservice ops: give --instance-id or --tag (not both)", file=sys.stderr)
                return 2
            print(
                "sending; waiting for results"
                + (f" (up to {args.wait:g} s)" if args.wait else "")
                + " …",
                file=sys.stderr,
            )
            response = client.run_commands(
                instance_id=args.instance_id,
                tags=_tags(args.tag),
                commands=args.commands or None,
                wait_seconds=args.wait,
                comment=args.comment,
            )
        elif args.ops_command == "get-command":
            response = client.get_command(args.command_id)
        else:
            response = client.start_association(args.association_ids)
    except OpsClientError as exc:
        print(f"selfservice ops: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"status": response.status, **response.body}, indent=2))
    else:
        _print_results(response, sys.stdout)
        if args.ops_command == "start-association" and response.status < 400:  # noqa: PLR2004
            print(f"started: {', '.join(response.body.get('association_ids', []))}")
    return _exit_code(response)


def add_parser(commands: Any) -> None:
    """Add ``ops`` and its subcommands to the ``selfservice`` parser."""
    ops = commands.add_parser("ops", help="call the ops API (SigV4-signed)")
    ops_commands = ops.add_subparsers(dest="ops_command", required=True, metavar="OPERATION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", help="ops API base URL (default: $SELFSERVICE_OPS_URL)")
        parser.add_argument("--region", help="signing region (default: from the URL or config)")
        parser.add_argument("--profile", help="AWS profile of the credential chain")
        parser.add_argument("--json", action="store_true", help="print the raw JSON response")
        parser.set_defaults(func=_run)

    run = ops_commands.add_parser("run-commands", help="run allow-listed commands on instances")
    run.add_argument("commands", nargs="*", metavar="COMMAND", help="default: diagnostic set")
    run.add_argument("--instance-id", help="one instance")
    run.add_argument("--tag", action="append", metavar="KEY=VALUE", help="select by tags")
    run.add_argument("--wait", type=float, help="seconds to wait for results (max 25)")
    run.add_argument("--comment", help="SSM comment (100 characters)")
    common(run)
    get = ops_commands.add_parser("get-command", help="results of an earlier command")
    get.add_argument("command_id")
    common(get)
    start = ops_commands.add_parser("start-association", help="apply associations once, now")
    start.add_argument("association_ids", nargs="+", metavar="ASSOCIATION_ID")
    common(start)
