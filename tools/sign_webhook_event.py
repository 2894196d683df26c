"""Re-sign the intake sample event (``events/WebhookFunction.json``) for ``sam local invoke``.

The sample is signed (Standard Webhooks, as the ServiceNow script action signs) with the
documented test secret ``selfservice-sample-hmac-secret`` at its own timestamp. Intake
refuses a timestamp more than 5 minutes from its clock, so the sample as committed is
answered 401 (``stale_timestamp``); this signs it again now, with that secret or yours::

    .venv/bin/python tools/sign_webhook_event.py > /tmp/webhook-now.json
    sam local invoke WebhookFunction -e /tmp/webhook-now.json
    .venv/bin/python tools/sign_webhook_event.py --secret "$MY_SECRET" --timestamp 1795252503

The function still needs its configuration and secrets (``docs/configuration.md``); the
HMAC secret's ``current`` value must be the secret used here.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[1] / "events" / "WebhookFunction.json"
SAMPLE_SECRET = "selfservice-sample-hmac-secret"  # noqa: S105 - a documented test value


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = secret.encode()
    if secret.startswith("whsec_"):  # Standard Webhooks' own secret format
        key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


def signed(event: dict[str, Any], secret: str, timestamp: int) -> dict[str, Any]:
    """The event with ``webhook-timestamp`` and ``webhook-signature`` set for its body."""
    body = event["body"]
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = dict(event["headers"])
    headers["webhook-timestamp"] = str(timestamp)
    headers["webhook-signature"] = signature(secret, headers["webhook-id"], timestamp, raw)
    return {**event, "headers": headers}


def main(argv: list[str] | None = None) -> int:
    """Print the sample (or ``--event``) signed now (or at ``--timestamp``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--event", type=Path, default=SAMPLE)
    parser.add_argument("--secret", default=SAMPLE_SECRET)
    parser.add_argument("--timestamp", type=int, default=None, help="unix seconds (default: now)")
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text())
    timestamp = int(time.time()) if args.timestamp is None else args.timestamp
    json.dump(signed(event, args.secret, timestamp), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
