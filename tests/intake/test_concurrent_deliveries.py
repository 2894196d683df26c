"""Copies of one delivery racing in separate execution environments publish one event.

Lambda runs concurrent deliveries in separate execution environments, so the copies of
a ticket that a retrying sender (or a rule firing on insert and update) sends at once
race each other through the DynamoDB deduplication record, not through one process.
Here each environment is its own :class:`IntakeService` with its own boto3 session on
one (moto) table, and the first copy's publish is slowed so the others arrive while it
is in progress. The embedded AWS's fixes are applied, as in the local runtime (moto's
conditional writes are otherwise not atomic across threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import boto3
import pytest

from intake.domain.errors import DeliveryInProgressError
from intake.domain.intake import IntakeService, Reply
from selfservice.local import moto_gaps
from selfservice_contracts.events import AnyEvent, RequestReceived
from selfservice_runtime.dedupe import DynamoDBDeduplicator
from selfservice_runtime.publisher import InMemoryPublisher
from tests.aws import create_dedupe_table, mocked_aws
from tests.intake.conftest import (
    NOW,
    SECRET_IDS,
    SECRETS,
    DictSecrets,
    example_settings,
    fixture,
    servicenow_delivery,
)
from tests.lambda_context import FakeContext

TABLE = "intake-idempotency"
ENVIRONMENTS = 5


class SlowBus(InMemoryPublisher):
    """EventBridge taking its time, so the first copy stays in progress a while."""

    def publish(self, events: Sequence[AnyEvent]) -> None:
        time.sleep(1.0)  # wide enough for the other copies to arrive on a busy machine
        super().publish(events)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    moto_gaps.apply()
    with mocked_aws(monkeypatch):
        create_dedupe_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
        yield


def _environment(bus: InMemoryPublisher) -> IntakeService:
    session = boto3.session.Session(region_name="us-east-1")
    deduplicator = DynamoDBDeduplicator(TABLE, 3600, boto3_session=session)
    # As the handler does: an in-progress record expires with the invocation.
    deduplicator.register_lambda_context(FakeContext())  # type: ignore[arg-type]
    return IntakeService(
        settings=example_settings(),
        secrets=DictSecrets(SECRETS),
        secret_ids=SECRET_IDS,
        publisher=bus,
        deduplicator=deduplicator,
    )


@pytest.mark.usefixtures("table")
def test_copies_in_flight_together_publish_once_and_all_end_with_the_first_reply() -> None:
    bus = SlowBus()
    environments = [_environment(bus) for _ in range(ENVIRONMENTS)]
    delivery = servicenow_delivery(fixture("servicenow-ritm-ec2-inserted.json"), at=NOW)
    start = threading.Barrier(ENVIRONMENTS)
    first_round: list[Reply | DeliveryInProgressError] = []
    lock = threading.Lock()

    def deliver(service: IntakeService) -> None:
        start.wait()
        try:
            answer: Reply | DeliveryInProgressError = service.handle(delivery)
        except DeliveryInProgressError as exc:
            answer = exc
        with lock:
            first_round.append(answer)

    threads = [threading.Thread(target=deliver, args=(s,)) for s in environments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    replies = [a for a in first_round if isinstance(a, Reply)]
    busy = [a for a in first_round if isinstance(a, DeliveryInProgressError)]
    # One copy ran; the copies that met it in progress were told to retry (503), never
    # published and never answered with a request id of their own.
    assert [r.outcome for r in replies].count("received") == 1
    assert busy, "no copy met the first one in progress: the race was not exercised"
    assert {e.status_code for e in busy} == {503}
    # The sender's retries, after the first copy finished, get its reply back.
    retried = [environments[n].handle(delivery) for n in range(len(busy))]
    assert {r.outcome for r in retried} == {"duplicate"}
    request_ids = {r.body["request_id"] for r in [*replies, *retried]}
    assert len(request_ids) == 1
    assert {r.status_code for r in [*replies, *retried]} == {202}
    (event,) = bus.events
    assert isinstance(event.data, RequestReceived)
