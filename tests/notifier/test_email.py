"""E-mail write-back through SES (moto)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.ses.models import ses_backends

from notifier.adapters.email import EmailWriter
from notifier.domain.write_back import PermanentWriteBackError, WriteBackService
from notifier.settings import EmailWriteBack, NotifierSettings
from selfservice_contracts.events import TicketUpdated
from selfservice_contracts.request import TicketSystem
from selfservice_runtime.publisher import InMemoryPublisher
from tests.aws import mocked_aws
from tests.notifier.test_write_back import APPROVAL, sample

SETTINGS = EmailWriteBack(
    from_address="selfservice@acme.example", to_address="jira@acme.atlassian.net"
)


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    with mocked_aws(monkeypatch):
        yield boto3.client("ses", region_name="us-east-1")


def test_the_issue_key_leads_the_subject_and_both_bodies_are_sent(ses: object) -> None:
    ses.verify_email_identity(EmailAddress="selfservice@acme.example")  # type: ignore[attr-defined]
    bus = InMemoryPublisher()
    service = WriteBackService({TicketSystem.JIRA: EmailWriter(ses, SETTINGS)}, bus)  # type: ignore[arg-type]
    assert service.on_event(sample(APPROVAL), receive_count=1, max_receives=8) == "written"
    (sent,) = ses_backends["123456789012"]["us-east-1"].sent_messages
    assert sent.subject == "ITSM-42 Waiting for approval"
    assert sent.destinations["ToAddresses"] == ["jira@acme.atlassian.net"]
    assert "<li>approver: piet.jansen@acme.example</li>" in sent.body
    (updated,) = bus.events
    assert isinstance(updated.data, TicketUpdated)
    assert updated.data.channel.value == "email"


def test_an_unverified_sender_is_a_permanent_refusal(ses: object) -> None:
    bus = InMemoryPublisher()
    service = WriteBackService({TicketSystem.JIRA: EmailWriter(ses, SETTINGS)}, bus)  # type: ignore[arg-type]
    with pytest.raises(PermanentWriteBackError):
        service.on_event(sample(APPROVAL), receive_count=1, max_receives=8)
    assert bus.events[0].type == "selfservice.ticket.write-back-failed.v1"


def test_email_mode_needs_its_addresses() -> None:
    with pytest.raises(ValueError, match="needs the email section"):
        NotifierSettings.model_validate({"jira": {"mode": "email"}})
