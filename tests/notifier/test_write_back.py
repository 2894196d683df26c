"""Write-back against a real HTTP server on 127.0.0.1 that behaves like each API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.adapters.http import Transport
from notifier.adapters.itsm import (
    BasicCredentials,
    JiraWriter,
    OAuthClientCredentials,
    ServiceNowWriter,
)
from notifier.domain.retry import RetryPolicy
from notifier.domain.write_back import PermanentWriteBackError, RetryLaterError, WriteBackService
from notifier.settings import JiraWriteBack, ServiceNowWriteBack
from selfservice.local.itsm_sandbox import Fault, ItsmSandbox
from selfservice.local.moto_server import free_port
from selfservice_contracts.events import AnyEvent, TicketUpdated, WriteBackFailed
from selfservice_contracts.request import TicketSystem
from selfservice_runtime.parsing import parse_eventbridge_event
from selfservice_runtime.publisher import InMemoryPublisher
from tests.conftest import ROOT

SN_SYS_ID = "9d385017c611228701d22104cc95c371"


def sample(event_type: str) -> AnyEvent:
    return parse_eventbridge_event((ROOT / "events/catalog" / f"{event_type}.json").read_text())


SUCCEEDED = "selfservice.provisioning.succeeded.v1"
STARTED = "selfservice.provisioning.started.v1"
APPROVAL = "selfservice.request.approval-required.v1"  # a Jira ticket in the samples


@pytest.fixture
def sandbox() -> Iterator[ItsmSandbox]:
    with ItsmSandbox() as server:
        yield server


class Harness:
    def __init__(self, sandbox: ItsmSandbox, base_url: str | None = None, **jira: object) -> None:
        self.bus = InMemoryPublisher()
        self.sleeps: list[float] = []
        self.loads: list[bool] = []
        transport = Transport(connect_timeout=0.5, read_timeout=0.5)
        base = base_url or sandbox.url

        def sn_secret(force: bool) -> str:
            self.loads.append(force)
            return "selfservice:sandbox-password"

        self.servicenow = ServiceNowWriter(
            transport, ServiceNowWriteBack(), BasicCredentials(sn_secret), base
        )
        self.jira = JiraWriter(
            transport,
            JiraWriteBack(**jira),  # type: ignore[arg-type]
            BasicCredentials(lambda force: "selfservice@acme.example:sandbox-token"),
            base,
        )
        self.service = WriteBackService(
            {TicketSystem.SERVICENOW: self.servicenow, TicketSystem.JIRA: self.jira},
            self.bus,
            RetryPolicy(attempts=4, max_inline_wait_seconds=5),
            sleep=self.sleeps.append,
        )

    def write(self, event: AnyEvent, receive_count: int = 1, max_receives: int = 8) -> str:
        return self.service.on_event(event, receive_count=receive_count, max_receives=max_receives)


def test_servicenow_200_writes_the_note_and_moves_the_state(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox)
    assert h.write(sample(SUCCEEDED)) == "written"
    assert sandbox.state.servicenow[SN_SYS_ID]["state"] == "3"
    (entry,) = sandbox.state.journal
    assert entry["element"] == "work_notes"
    assert "instance_ids: i-0f1e2d3c4b5a69788" in entry["value"]
    (updated,) = h.bus.events
    assert isinstance(updated.data, TicketUpdated)
    assert updated.data.ticket_state == "3"


def test_429_with_retry_after_is_honoured(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox)
    sandbox.fail_next("servicenow", Fault(429, {"Retry-After": "2"}))
    assert h.write(sample(STARTED)) == "written"
    assert h.sleeps == [2.0]


def test_a_long_retry_after_goes_back_to_the_queue(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox)
    sandbox.fail_next("servicenow", Fault(429, {"Retry-After": "120"}))
    with pytest.raises(RetryLaterError) as caught:
        h.write(sample(STARTED))
    assert caught.value.wait_seconds == 120
    assert h.sleeps == []
    assert sandbox.state.journal == []


@pytest.mark.parametrize("status", [500, 503, 409])
def test_transient_errors_are_retried(sandbox: ItsmSandbox, status: int) -> None:
    h = Harness(sandbox)
    sandbox.fail_next("servicenow", Fault(status), Fault(status))
    assert h.write(sample(STARTED)) == "written"
    assert len(h.sleeps) == 2
    assert len(sandbox.state.journal) == 1  # the retry found nothing written and wrote once


def test_a_timeout_is_retried_without_a_duplicate(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox)
    sandbox.fail_next("servicenow", Fault(status=0, delay=1.0))  # stalls past the 0.5 s timeout
    assert h.write(sample(STARTED)) == "written"
    assert len(sandbox.state.journal) == 1


def test_401_then_success_after_the_credentials_are_refreshed(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox)
    sandbox.fail_next("servicenow", Fault(401))
    assert h.write(sample(STARTED)) == "written"
    assert h.loads == [False, True]  # read once, then re-read with force after the 401


def test_oauth_tokens_are_renewed_after_a_401(sandbox: ItsmSandbox) -> None:
    transport = Transport()
    credentials = OAuthClientCredentials(
        transport, f"{sandbox.url}/oauth_token.do", lambda force: "client-id:client-secret"
    )
    writer = ServiceNowWriter(
        transport,
        ServiceNowWriteBack(auth="oauth", instance_url="https://acme.service-now.com"),
        credentials,
        sandbox.url,
    )
    bus = InMemoryPublisher()
    service = WriteBackService({TicketSystem.SERVICENOW: writer}, bus, sleep=lambda _: None)
    assert service.on_event(sample(STARTED), receive_count=1, max_receives=8) == "written"
    sandbox.revoke_tokens()
    assert service.on_event(sample(SUCCEEDED), receive_count=1, max_receives=8) == "written"
    assert len(sandbox.state.journal) == 2


@pytest.mark.parametrize("status", [400, 404])
def test_permanent_refusals_publish_write_back_failed_at_once(
    sandbox: ItsmSandbox, status: int
) -> None:
    h = Harness(sandbox)
    sandbox.fail_next("servicenow", Fault(status))
    with pytest.raises(PermanentWriteBackError):
        h.write(sample(STARTED))
    (failed,) = h.bus.events
    assert isinstance(failed.data, WriteBackFailed)
    assert failed.data.status_code == status
    assert h.sleeps == []


def test_connection_refused_is_retried_then_handed_to_the_queue() -> None:
    with ItsmSandbox() as sandbox:
        h = Harness(sandbox, base_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(RetryLaterError):
            h.write(sample(STARTED), receive_count=1)
        assert h.bus.events == []  # not the last receive: nothing is declared failed yet
        with pytest.raises(RetryLaterError):
            h.write(sample(STARTED), receive_count=8)
        (failed,) = h.bus.events  # the last receive: the DLQ takes it, the event says so
        assert isinstance(failed.data, WriteBackFailed)
        assert failed.data.status_code is None


def test_an_outage_backs_off_across_receives_up_to_the_cap() -> None:
    # Without a wait named by the ITSM, each receive waits twice as long as the last:
    # 8 receives span about an hour, so an outage that long recovers by itself.
    with ItsmSandbox() as sandbox:
        h = Harness(sandbox, base_url=f"http://127.0.0.1:{free_port()}")
        waits = []
        for receive in range(1, 8):
            with pytest.raises(RetryLaterError) as caught:
                h.write(sample(STARTED), receive_count=receive)
            waits.append(caught.value.wait_seconds)
    assert waits == [30, 60, 120, 240, 480, 960, 1800]
    assert sum(waits) > 3600
    assert h.bus.events == []


def test_the_last_receive_hands_over_to_the_dlq_without_the_long_wait() -> None:
    # The DLQ takes it next; a 30-minute wait would only hold the queue's one FIFO group.
    with ItsmSandbox() as sandbox:
        h = Harness(sandbox, base_url=f"http://127.0.0.1:{free_port()}")
        with pytest.raises(RetryLaterError) as caught:
            h.write(sample(STARTED), receive_count=8, max_receives=8)
    assert caught.value.wait_seconds <= RetryPolicy().cap_seconds
    (failed,) = h.bus.events
    assert isinstance(failed.data, WriteBackFailed)


def test_a_conflict_on_one_ticket_keeps_the_short_wait(sandbox: ItsmSandbox) -> None:
    # 409 is about this ticket, not the ITSM: holding every ticket's updates behind it
    # for minutes would be the wrong trade.
    h = Harness(sandbox)
    for _ in range(4):
        sandbox.fail_next("servicenow", Fault(409))
    with pytest.raises(RetryLaterError) as caught:
        h.write(sample(STARTED), receive_count=5)
    assert caught.value.wait_seconds <= RetryPolicy().cap_seconds


def test_a_retry_after_within_the_inline_limit_still_backs_off_across_receives(
    sandbox: ItsmSandbox,
) -> None:
    h = Harness(sandbox)
    for _ in range(4):  # every attempt of the invocation answered 503, Retry-After: 1
        sandbox.fail_next("servicenow", Fault(503, {"Retry-After": "1"}))
    with pytest.raises(RetryLaterError) as caught:
        h.write(sample(STARTED), receive_count=3)
    assert caught.value.wait_seconds == 120
    assert h.sleeps == [1.0, 1.0, 1.0]


def test_jira_comment_in_adf_and_transition_by_name(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox, transitions={APPROVAL: "Start progress"})
    assert h.write(sample(APPROVAL)) == "written"
    (comment,) = sandbox.state.jira_comments["ITSM-42"]
    text = json.dumps(comment["body"])
    assert comment["body"]["type"] == "doc"
    assert "Waiting for approval" in text
    assert sandbox.state.jira_status["ITSM-42"] == "In Progress"


def test_a_jira_retry_after_a_failed_transition_does_not_comment_twice(
    sandbox: ItsmSandbox,
) -> None:
    h = Harness(sandbox, transitions={APPROVAL: "Start progress"})
    # comment posts (201), listing transitions fails with 503, then everything works.
    sandbox.fail_next("jira", Fault(status=0), Fault(503))
    assert h.write(sample(APPROVAL)) == "written"
    assert len(sandbox.state.jira_comments["ITSM-42"]) == 1
    assert sandbox.state.jira_status["ITSM-42"] == "In Progress"


def test_jsm_request_comments_are_public_when_configured(sandbox: ItsmSandbox) -> None:
    h = Harness(sandbox, mode="jsm", jsm_public=True)
    assert h.write(sample(APPROVAL)) == "written"
    (comment,) = sandbox.state.jsm_comments["ITSM-42"]
    assert comment["public"] is True
    assert "Waiting for approval" in comment["body"]


def test_no_secret_or_credential_appears_in_what_is_written(
    sandbox: ItsmSandbox, tmp_path: Path
) -> None:
    h = Harness(sandbox)
    h.write(sample(SUCCEEDED))
    written = json.dumps(sandbox.state.journal) + json.dumps(
        [e.model_dump(mode="json") for e in h.bus.events]
    )
    assert "sandbox-password" not in written


def test_settings_refuse_oauth_without_an_instance() -> None:
    with pytest.raises(ValueError, match=r"needs servicenow\.instance_url"):
        ServiceNowWriteBack(auth="oauth")
