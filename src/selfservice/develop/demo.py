"""`make demo`: tickets in, infrastructure applied, write-back visible — all local.

Two tickets go through the real platform on the embedded stack:

1. ServiceNow RITM0010042 asks for an EC2 application in dev; no approval is needed, so
   Terraform builds it at once and the ticket is closed with the outputs.
2. Jira ITSM-42 asks for one in staging, which policy gates on approval: Terraform plans
   it first, and the ticket shows the plan and its monthly cost while nothing exists yet;
   the approval (a transition in Jira) arrives; then exactly that plan is applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfservice.local.platform import LocalPlatform

__all__ = ["run_demo"]

TIMEOUT_SECONDS = 900
TICKETS = ("servicenow:RITM0010042", "jira:ITSM-42")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the local webhook API on loopback
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback only
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _standard_webhook(secret: str, body: bytes, webhook_id: str) -> dict[str, str]:
    import base64  # noqa: PLC0415

    timestamp = str(int(time.time()))
    digest = hmac.new(
        secret.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _hub(secret: str, body: bytes, identifier: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "X-Atlassian-Webhook-Identifier": identifier}


def _secret(platform: LocalPlatform, secret_id: str) -> str:
    document = json.loads(
        platform.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    )
    return str(document["current"])


Source = Literal["servicenow", "jira"]
_SECRET_VARIABLES: dict[Source, str] = {
    "servicenow": "SERVICENOW_HMAC_SECRET_ID",
    "jira": "JIRA_WEBHOOK_SECRET_ID",
}


@dataclass(frozen=True)
class Webhooks:
    """Deliveries to the local webhook API, signed as each ITSM signs them.

    The secrets are read once, as an ITSM is given them once when it is set up.
    """

    url: str
    secrets: dict[Source, str]

    @classmethod
    def of(cls, platform: LocalPlatform) -> Webhooks:
        """The platform's webhook API and the secrets its senders were given."""
        environment = platform.deployed.function("WebhookFunction")[1]
        return cls(
            platform.fronts["WebhookApi"].url,
            {s: _secret(platform, environment[v]) for s, v in _SECRET_VARIABLES.items()},
        )

    def headers(self, source: Source, body: bytes, delivery_id: str) -> dict[str, str]:
        """The signature headers of one attempt (ServiceNow's are signed at sending time)."""
        secret = self.secrets[source]
        if source == "jira":
            return _hub(secret, body, delivery_id)
        return _standard_webhook(secret, body, delivery_id)

    def send(self, source: Source, body: bytes, delivery_id: str) -> tuple[int, dict[str, Any]]:
        """POST one signed delivery; the status and the JSON answer."""
        return _post(f"{self.url}/webhooks/{source}", body, self.headers(source, body, delivery_id))


def _ledger(platform: LocalPlatform) -> dict[str, str]:
    table = platform.stack("Provisioner").refs["LedgerTable"]
    items = platform.client("dynamodb").scan(TableName=table).get("Items", [])
    return {
        item["instance"]["S"]: item["state"]["S"]
        for item in items
        if item.get("sk", {}).get("S") == "STATE"
    }


def _writebacks(platform: LocalPlatform) -> dict[str, list[str]]:
    state = platform.itsm.state
    notes: dict[str, list[str]] = {}
    for row in state.journal:
        if row["element"] == "work_notes":
            notes.setdefault("servicenow:RITM0010042", []).append(row["value"])
    for key, comments in state.jira_comments.items():
        for comment in comments:
            notes.setdefault(f"jira:{key}", []).append("\n".join(_adf_lines(comment["body"])))
    return notes


def _adf_lines(node: dict[str, Any], bullet: bool = False) -> list[str]:
    """The text of an Atlassian Document Format node, one line per paragraph or table row."""
    if node.get("type") == "tableRow":
        cells = [" ".join(_adf_lines(cell)) for cell in node.get("content", [])]
        return ["  | " + " | ".join(cells) + " |"]
    if node.get("type") == "paragraph":
        text = "".join(child.get("text", "") for child in node.get("content", []))
        return [f"  - {text}" if bullet else text]
    lines: list[str] = []
    for child in node.get("content", []):
        lines += _adf_lines(child, bullet or node.get("type") == "listItem")
    return lines


def _titles(root: Path, *outcomes: str) -> dict[str, str]:
    """The headline the notifier writes for each outcome (its messages document)."""
    messages = json.loads((root / "services/notifier/notifier/messages.json").read_text())
    return {
        outcome: f"[selfservice] {messages[f'selfservice.provisioning.{outcome}.v1']['title']}"
        for outcome in outcomes
    }


def _terminal_titles(root: Path) -> dict[str, str]:
    """The headline of each final outcome."""
    return _titles(root, "succeeded", "failed")


def _wait_for_note(platform: LocalPlatform, ticket: str, title: str) -> str | None:
    """The first note on ``ticket`` that starts with ``title`` (None after a minute)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for note in _writebacks(platform).get(ticket, []):
            if note.startswith(title):
                return note
        time.sleep(0.2)
    return None


def _running(platform: LocalPlatform, ticket: str) -> list[str]:
    """The running instances tagged with the ticket, as ``id (type)``."""
    reservations = platform.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:selfservice:ticket", "Values": [ticket]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]
    return [
        f"{i['InstanceId']} ({i['InstanceType']})" for r in reservations for i in r["Instances"]
    ]


def _wait(
    platform: LocalPlatform,
    done: Callable[[dict[str, str]], bool],
    say: Any,
    seen: dict[str, str],
) -> dict[str, str]:
    """Poll the ledger until ``done``, saying each state change once (``seen`` persists)."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        states = _ledger(platform)
        for ticket, state in states.items():
            if seen.get(ticket) != state:
                say(f"  ledger  {ticket:26} → {state}")
        seen.update(states)
        if done(states):
            return states
        time.sleep(0.5)
    raise TimeoutError(f"not finished after {TIMEOUT_SECONDS} s: {seen}")


def _wait_for_write_backs(
    platform: LocalPlatform, states: dict[str, str], titles: dict[str, str]
) -> set[str]:
    """Wait until each ticket shows its final outcome; the tickets that never did."""
    deadline = time.monotonic() + 60
    while True:
        notes = _writebacks(platform)
        missing = {
            ticket
            for ticket, state in states.items()
            if not any(note.startswith(titles.get(state, "?")) for note in notes.get(ticket, []))
        }
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.1)


def run_demo(root: Path, say: Any = print) -> int:
    """Run the demo; 0 when both tickets end provisioned and written back."""
    workdir = Path(tempfile.mkdtemp(prefix="selfservice-demo-"))
    with LocalPlatform(root, workdir, say=say) as platform:
        webhooks = Webhooks.of(platform)
        say("\n1) ServiceNow RITM0010042: an EC2 application in dev (no approval needed)")
        body = (root / "demo/servicenow-ec2-request.json").read_bytes()
        status, reply = webhooks.send("servicenow", body, "msg_demo_1")
        say(f"  intake  {status} {reply}")
        say("\n2) Jira ITSM-42: an EC2 application in staging (policy: approval required)")
        body = (root / "demo/jira-ec2-request.json").read_bytes()
        status, reply = webhooks.send("jira", body, "demo-created")
        say(f"  intake  {status} {reply}")
        seen: dict[str, str] = {}
        _wait(platform, lambda s: s.get("jira:ITSM-42") == "awaiting_approval", say, seen)
        plan = _wait_for_note(platform, "jira:ITSM-42", _titles(root, "planned")["planned"])
        if plan is None:
            say("  ITSM-42 was never shown its plan: demo FAILED (see the notifier's log)")
            return 1
        say("\n  Before anyone approves, ITSM-42 shows the plan and what it will cost:")
        say("   " + plan.replace("\n", "\n   "))
        built = _running(platform, "jira:ITSM-42")
        say(f"  built for ITSM-42 so far: {', '.join(built) or 'nothing'}")
        if built:
            say("  something was built before the approval: demo FAILED")
            return 1
        say("  … the approver moves ITSM-42 to In Progress")
        body = (root / "demo/jira-ec2-approved.json").read_bytes()
        status, reply = webhooks.send("jira", body, "demo-approved")
        say(f"  intake  {status} {reply}")
        say(
            "\nTerraform runs in the local CodeBuild (real buildspec and Terraform, embedded AWS) …"
        )
        finished = {"succeeded", "failed"}
        states = _wait(
            platform, lambda s: len(s) == len(TICKETS) and set(s.values()) <= finished, say, seen
        )
        unwritten = _wait_for_write_backs(platform, states, _terminal_titles(root))
        say("\nWhat the tickets show (written back by the notifier):")
        for ticket, notes in sorted(_writebacks(platform).items()):
            say(f"\n== {ticket}")
            for note in notes:
                # ITSM-42's plan was shown in full above, before the approval.
                shown = note.splitlines()[0] + "\n(the plan shown above)" if note == plan else note
                say("   " + shown.replace("\n", "\n   "))
        say("\nWhat was built:")
        for ticket in sorted(states):
            say(f"  {ticket:26} {states[ticket]:10} " + ", ".join(_running(platform, ticket)))
        for ticket in sorted(unwritten):
            say(f"  {ticket}: the outcome never reached the ticket (see the notifier's log)")
        ok = not unwritten and all(state == "succeeded" for state in states.values())
        say(f"\ndemo {'succeeded' if ok else 'FAILED'}; logs and build workspaces in {workdir}")
        return 0 if ok else 1
