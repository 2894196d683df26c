"""What every fault case needs: a sender that behaves like an ITSM, what a ticket shows,
and an account of where every message is (source queues, DLQs).

The sender is the ITSM side of the contract intake documents: a 2xx or 4xx is an
answer; a 5xx (or no answer at all) is retried after ``Retry-After``, with the same
delivery id, as ServiceNow's REST message and Jira's webhooks retry.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from selfservice.develop.demo import Webhooks, _adf_lines
from selfservice.local.platform import LocalPlatform
from selfservice_contracts.envelope import build_event, to_eventbridge_entry
from selfservice_contracts.events import AnyEvent, TicketEventData
from selfservice_contracts.request import TicketRef, TicketSystem
from tests.conftest import ROOT
from tests.notifier.test_write_back import sample

T = TypeVar("T")

SOURCE_QUEUES = ("RequestQueue", "BuildEventsQueue", "WriteBackQueue")
UPDATED = "selfservice.ticket.updated.v1"
WRITE_BACK_FAILED = "selfservice.ticket.write-back-failed.v1"


def eventually(
    probe: Callable[[], T | None], what: str, *, timeout: float = 60, interval: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something other than None (or fail naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- the ITSM side -------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer intake gave (status None: the connection gave no answer)."""

    status: int | None
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    """``time.monotonic()`` when it came."""


@dataclass
class Sender:
    """One ticket's delivery, sent and retried the way its ITSM does."""

    platform: LocalPlatform
    source: Literal["servicenow", "jira"]
    body: dict[str, Any]
    delivery_id: str
    answers: list[Answer] = field(default_factory=list)
    _webhooks: Webhooks | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # The ITSM was given the secret once, when the integration was set up.
        self._webhooks = Webhooks.of(self.platform)

    @property
    def webhooks(self) -> Webhooks:
        """The platform's webhook API and secrets, read when the sender was made."""
        assert self._webhooks is not None
        return self._webhooks

    def attempt(self) -> Answer:
        """One delivery attempt."""
        raw = json.dumps(self.body).encode()
        request = urllib.request.Request(
            f"{self.platform.fronts['WebhookApi'].url}/webhooks/{self.source}",
            data=raw,
            method="POST",
            # A retry is signed afresh, with the same delivery id.
            headers={
                "Content-Type": "application/json",
                **self.webhooks.headers(self.source, raw, self.delivery_id),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = Answer(
                    response.status, json.loads(response.read() or b"{}"), dict(response.headers), 0
                )
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, json.loads(error.read() or b"{}"), dict(error.headers), 0)
        except OSError:
            answer = Answer(None, {}, {}, 0)
        answer = Answer(answer.status, answer.body, answer.headers, time.monotonic())
        self.answers.append(answer)
        return answer

    def deliver(self, *, timeout: float = 90) -> Answer:
        """Attempt until intake answers 2xx or 4xx; wait ``Retry-After`` (or 1 s) between."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.attempt()
            if answer.status is not None and answer.status < 500:
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.delivery_id}: no answer but {answer} in {timeout} s")
            time.sleep(float(answer.headers.get("Retry-After", "1")))

    @property
    def statuses(self) -> list[int | None]:
        """Every status intake answered, in order."""
        return [answer.status for answer in self.answers]


def servicenow_request(number: str, sys_id: str, *, approval: str = "requested") -> dict[str, Any]:
    """A ServiceNow EC2 request in staging (policy: approval), as the business rule sends it."""
    body: dict[str, Any] = json.loads((ROOT / "demo/servicenow-ec2-request.json").read_text())
    body.update(number=number, sys_id=sys_id, approval=approval)
    body["variables"].update(environment="staging", instance_type="t3.small")
    return body


def jira_request(key: str, issue_id: str) -> dict[str, Any]:
    """A Jira EC2 request in staging (policy: approval), as Jira's webhook sends it."""
    body: dict[str, Any] = json.loads((ROOT / "demo/jira-ec2-request.json").read_text())
    body["issue"].update(key=key, id=issue_id)
    return body


def servicenow_ticket(number: str, sys_id: str) -> TicketRef:
    """The reference of a ServiceNow ticket (for events the test publishes itself)."""
    return TicketRef(
        system=TicketSystem.SERVICENOW,
        key=number,
        internal_id=sys_id,
        url=f"https://acme.service-now.com/sc_req_item.do?sys_id={sys_id}",
    )


def publish_lifecycle(
    platform: LocalPlatform, ticket: TicketRef, *event_types: str
) -> list[AnyEvent]:
    """Put a ticket's lifecycle events on the bus, in order, as the provisioner publishes them."""
    events = []
    for event_type in event_types:
        data = sample(event_type).data
        assert isinstance(data, TicketEventData)
        events.append(build_event(data.model_copy(update={"ticket": ticket})))
    bus = platform.stack("Notifier").parameters["EventBusName"]
    for event in events:  # one call each: the order on the bus is the order published
        response = platform.client("events").put_events(
            Entries=[to_eventbridge_entry(event, event_bus_name=bus)]
        )
        assert response["FailedEntryCount"] == 0
    return events


def reported(platform: LocalPlatform, since: int, detail_type: str) -> list[str | None]:
    """Event ids of ``detail_type`` put on the bus by the functions since entry ``since``."""
    front = platform.eventbridge
    assert front is not None
    return [
        e.event_id
        for e in front.entries[since:]
        if e.detail_type == detail_type and e.error_code is None
    ]


# -- what the ticket shows -----------------------------------------------------------


def servicenow_note_texts(platform: LocalPlatform, sys_id: str) -> list[str]:
    """Every work note on a ServiceNow ticket, whole, oldest first."""
    return [
        row["value"]
        for row in list(platform.itsm.state.journal)
        if row["element_id"] == sys_id and row["element"] == "work_notes"
    ]


def servicenow_notes(platform: LocalPlatform, sys_id: str) -> list[str]:
    """The first line of every work note on a ServiceNow ticket, oldest first."""
    return [note.splitlines()[0] for note in servicenow_note_texts(platform, sys_id)]


def jira_comments(platform: LocalPlatform, key: str) -> list[str]:
    """The first line of every comment on a Jira issue, oldest first."""
    return [
        _adf_lines(comment["body"])[0]
        for comment in list(platform.itsm.state.jira_comments.get(key, []))
    ]


# -- where the messages are ----------------------------------------------------------


def queue_depths(platform: LocalPlatform) -> dict[str, int]:
    """Every queue of the platform (``Stack/LogicalId``): messages visible, in flight or delayed."""
    sqs = platform.client("sqs")
    depths = {}
    for stack in platform.deployed.stacks():
        for logical, attrs in stack.attrs.items():
            if "QueueUrl" not in attrs:
                continue
            counts = sqs.get_queue_attributes(QueueUrl=attrs["QueueUrl"], AttributeNames=["All"])[
                "Attributes"
            ]
            depths[f"{stack.name.rsplit('-', 1)[-1]}/{logical}"] = sum(
                int(counts[name])
                for name in (
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                )
            )
    return depths


def dead_letters(depths: dict[str, int]) -> dict[str, int]:
    """Of :func:`queue_depths`, the DLQs' (the consumers' and EventBridge's)."""
    return {name: n for name, n in depths.items() if "DLQ" in name}


def settled(platform: LocalPlatform, *, timeout: float = 60) -> dict[str, int]:
    """Wait until every consumer's queue is empty; the depths then (DLQs included)."""

    def drained() -> dict[str, int] | None:
        depths = queue_depths(platform)
        busy = [name for name, n in depths.items() if name.endswith(SOURCE_QUEUES) and n]
        return None if busy else depths

    return eventually(drained, "every consumer's queue to be empty", timeout=timeout)
