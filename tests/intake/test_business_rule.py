"""The shipped ServiceNow business rule and intake's parser are one contract.

The script runs in Node with stand-ins for the Glide APIs it calls (GlideRecord,
GlideCertificateEncryption, RESTMessageV2…); what it would send must authenticate
with intake's verifier and normalize into the expected request.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from datetime import datetime, timedelta
from typing import Any

import pytest

from intake.domain.intake import Delivery
from selfservice_contracts.events import RequestReceived
from selfservice_contracts.request import Action
from tests.intake.conftest import NOW, ROOT, make_service

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is needed to run the business rule")

RECORD = {
    "number": "RITM0010042",
    "sys_id": "9d385017c611228701d22104cc95c371",
    "state": "1",
    "stage": "request_approved",
    "approval": "approved",
    "short_description": "AWS EC2 Instance",
    "request": {"number": "REQ0010040", "sys_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
    "cat_item": {"sys_id": "04b7e94b4f7b4200086eeed18110c7fd", "name": "AWS EC2 Instance"},
    "opened_by": {
        "sys_id": "6816f79cc0a8016401c5a33be04be441",
        "user_name": "ana.ruiz",
        "name": "Ana Ruiz",
        "email": "ana.ruiz@acme.example",
    },
    "requested_for": {
        "sys_id": "6816f79cc0a8016401c5a33be04be441",
        "user_name": "ana.ruiz",
        "name": "Ana Ruiz",
        "email": "ana.ruiz@acme.example",
    },
}
VARIABLES = {
    "instance_type": "t3.micro",
    "environment": "dev",
    "desired_capacity": "1",
    "cost_center": "CC-1042",
    "aws_region": "us-east-1",
    "justification": "Lasttest für das Kassenteam",
}


def _run(**overrides: Any) -> dict[str, Any]:
    scenario = {
        "operation": "insert",
        "record": RECORD,
        "variables": VARIABLES,
        "display": {"aws_region": "US East (N. Virginia)"},
        "changed": [],
        "secret": "sn-current-secret",
        "now_ms": int(NOW.timestamp() * 1000),
        **overrides,
    }
    completed = subprocess.run(
        [
            str(NODE),
            str(ROOT / "tests/intake/business_rule_harness.js"),
            str(ROOT / "itsm/servicenow/business-rule.js"),
            str(ROOT / "itsm/servicenow/script-action.js"),
        ],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _delivery(sent: dict[str, Any], received_at: datetime = NOW) -> Delivery:
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    return Delivery("servicenow", headers, sent["body"].encode("utf-8"), received_at)


def test_an_inserted_item_is_signed_sent_and_understood() -> None:
    sent = _run()
    # The rule only queues; the script action sends, in the background, once.
    assert [(q["parm1"], q["parm2"].split("|")[0]) for q in sent["queued"]] == [
        ("sc_req_item.inserted", "1")
    ]
    assert len(sent["requests"]) == 1
    assert sent["scheduled"] == []
    assert sent["work_notes"] == []
    assert sent["method"] == "post"
    assert sent["requests"][0]["timeout_ms"] == 30000
    service, bus = make_service()
    reply = service.handle(_delivery(sent))
    assert reply.status_code == 202, reply.body
    (event,) = bus.events
    assert isinstance(event.data, RequestReceived)
    assert event.data.request.parameters["justification"] == "Lasttest für das Kassenteam"
    assert event.data.request.parameters["region"] == "us-east-1"  # the value, not the label


def test_a_tampered_body_fails_authentication() -> None:
    sent = _run()
    sent["body"] = sent["body"].replace("t3.micro", "m6i.32xlarge")
    service, _ = make_service()
    with pytest.raises(Exception, match="unauthorized"):
        service.handle(_delivery(sent))


def test_updates_are_sent_only_for_approval_changes_and_cancellations() -> None:
    assert _run(operation="update", changed=[])["sent"] is False
    approval = _run(operation="update", changed=["approval"])
    assert json.loads(approval["body"])["event"] == "sc_req_item.updated"
    cancelled = _run(operation="update", changed=["state"], record={**RECORD, "state": "4"})
    assert json.loads(cancelled["body"])["event"] == "sc_req_item.cancelled"
    service, bus = make_service()
    assert service.handle(_delivery(cancelled)).status_code == 202
    assert bus.events[0].data.request.action is Action.DESTROY  # type: ignore[union-attr]


def test_the_integration_users_own_updates_are_not_sent_back() -> None:
    sent = _run(
        operation="update", changed=["approval"], user="selfservice", skip_user="selfservice"
    )
    assert sent["sent"] is False


def test_a_missing_secret_sends_nothing_and_says_why() -> None:
    sent = _run(secret=None)
    assert sent["sent"] is False
    assert any("was not sent" in line for line in sent["log"])
    (note,) = sent["work_notes"]
    assert "not delivered" in note
    assert "not configured" in note


def test_intake_unavailable_is_retried_with_one_webhook_id_until_delivered() -> None:
    sent = _run(
        answers=[
            {"status": 503, "headers": {"Retry-After": "600"}},
            {"throw": "Connection refused"},
            {"status": 429, "headers": {"Retry-After": "5"}},
            {"status": 202},
        ]
    )
    # 30 s doubling, or intake's Retry-After when that is longer.
    assert [s["delay_seconds"] for s in sent["scheduled"]] == [600, 60, 120]
    assert [s["parm2"].split("|")[0] for s in sent["scheduled"]] == ["2", "3", "4"]
    requests = sent["requests"]
    assert len(requests) == 4
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1
    stamps = [int(r["headers"]["webhook-timestamp"]) for r in requests]
    assert [b - a for a, b in itertools.pairwise(stamps)] == [600, 60, 120]
    # The attempt that got through is signed for its own moment and understood.
    service, bus = make_service()
    late = _delivery(sent, received_at=NOW + timedelta(seconds=780))
    assert service.handle(late).status_code == 202
    assert isinstance(bus.events[0].data, RequestReceived)
    assert sent["work_notes"] == []


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "5"}], ids=["plain", "retry-after-5"])
def test_a_delivery_that_never_gets_through_ends_with_a_note_on_the_item(
    headers: dict[str, str],
) -> None:
    # Intake answers every 503 with Retry-After: 5; that must not shorten the schedule.
    sent = _run(answers=[{"status": 503, "headers": headers}])
    assert len(sent["requests"]) == 8
    assert [s["delay_seconds"] for s in sent["scheduled"]] == [30, 60, 120, 240, 480, 960, 1800]
    (note,) = sent["work_notes"]
    assert "no success after 8 attempts, last: HTTP 503" in note
    assert any(line.startswith("ERROR selfservice: gave up") for line in sent["log"])


@pytest.mark.parametrize("status", [401, 404, 413])
def test_a_refusal_intake_cannot_write_on_the_ticket_is_noted_on_the_item(status: int) -> None:
    sent = _run(answers=[{"status": status}])
    assert len(sent["requests"]) == 1
    assert sent["scheduled"] == []
    (note,) = sent["work_notes"]
    assert f"intake answered HTTP {status}" in note


@pytest.mark.parametrize("status", [400, 422])
def test_a_refusal_intake_writes_on_the_ticket_itself_is_not_noted_twice(status: int) -> None:
    rejection = {"request_id": "r", "ticket": "servicenow:RITM0010042", "status": "rejected"}
    sent = _run(answers=[{"status": status, "body": {**rejection, "reasons": []}}])
    assert len(sent["requests"]) == 1
    assert sent["scheduled"] == []
    assert sent["work_notes"] == []


def test_a_400_intake_could_not_tie_to_a_ticket_is_noted_on_the_item() -> None:
    unreadable = {
        "message": "instance https://other.service-now.com is not the ServiceNow instance",
        "errors": [{"field": "instance", "message": "not served here"}],
    }
    sent = _run(answers=[{"status": 400, "body": unreadable}])
    (note,) = sent["work_notes"]
    assert "intake answered HTTP 400" in note


def test_a_retry_due_after_a_cancellation_sends_nothing() -> None:
    # Queued as "inserted", sent only once the item is already cancelled: provisioning
    # it now would build what the requester withdrew.
    sent = _run(record={**RECORD, "state": "4"})
    assert [q["parm1"] for q in sent["queued"]] == ["sc_req_item.inserted"]
    assert sent["requests"] == []
    assert any("cancelled since" in line for line in sent["log"])


_GLIDE_ELEMENT_CONDITION = """
// A GlideElement stand-in: its value through toString(), none of String's methods.
function GlideElement(value) { this.value = value; }
GlideElement.prototype.toString = function () { return this.value; };
var results = [];
for (var i = 0; i < NAMES.length; i++) {
    var current = {cat_item: {name: new GlideElement(NAMES[i])}};
    results.push(Boolean(eval(CONDITION)));
}
console.log(JSON.stringify(results));
"""


def test_the_documented_condition_works_on_a_glide_element() -> None:
    """Found by testing as a user: the README's startsWith fails on a GlideElement (ES5)."""
    readme = (ROOT / "itsm/servicenow/README.md").read_text()
    condition = readme.split("Condition (recommended", 1)[1].split("`", 2)[1]
    assert "startsWith" not in condition
    names = ["AWS EC2 Instance", "AWS account", "Laptop", "Not AWS ", "aws lowercase"]
    script = f"var NAMES = {json.dumps(names)}; var CONDITION = {json.dumps(condition)};"
    assert NODE is not None
    ran = subprocess.run(
        [NODE, "-e", script + _GLIDE_ELEMENT_CONDITION],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(ran.stdout) == [True, True, False, False, False]
    assert condition in (ROOT / "itsm/servicenow/business-rule.js").read_text()
