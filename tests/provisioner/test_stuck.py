"""The stuck-ticket rule (pure) and the in-flight index that serves it (moto)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from provisioner.adapters.ledger_dynamodb import (
    IN_FLIGHT_SINCE,
    IN_FLIGHT_STATE,
    DynamoDBInFlightIndex,
    DynamoDBLedger,
)
from provisioner.domain.ledger import LedgerEntry
from provisioner.domain.lifecycle import BUILDING, State
from provisioner.domain.stuck import WATCHED, InFlight, find_stuck, is_watched
from tests.aws import create_ledger_table, mocked_aws
from tests.provisioner.fakes import request

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
THRESHOLD = timedelta(minutes=150)


class FakeIndex:
    """Answers like the DynamoDB index: by state, entered strictly before the cutoff."""

    def __init__(self, entries: Iterable[InFlight]) -> None:
        self.entries = list(entries)
        self.asked: list[State] = []

    def entered_before(self, state: State, cutoff: datetime) -> Iterator[InFlight]:
        self.asked.append(state)
        return (e for e in self.entries if e.state is state and e.since < cutoff)


def _in_flight(name: str, state: State, minutes: float) -> InFlight:
    return InFlight(
        request_id=f"req-{name}",
        state=state,
        since=NOW - timedelta(minutes=minutes),
        product="ec2-app",
        instance=f"servicenow:{name}",
        attempt=1,
    )


def test_watched_states_are_queued_and_building_but_not_waiting_for_a_slot() -> None:
    assert frozenset({State.QUEUED, *BUILDING}) == WATCHED
    req = request()
    base = LedgerEntry(
        request_id=req.request_id,
        product=req.product,
        instance=str(req.ticket),
        state=State.QUEUED,
        version=1,
        action=req.action,
        attempt=1,
        request=req,
        updated_at=NOW,
    )
    assert {s for s in State if is_watched(replace(base, state=s))} == WATCHED
    assert not is_watched(replace(base, waiting_for_slot=True))


def test_only_requests_past_the_threshold_are_stuck_oldest_first() -> None:
    index = FakeIndex(
        [
            _in_flight("just-under", State.PROVISIONING, 149),
            _in_flight("exactly", State.PROVISIONING, 150),  # not past it yet
            _in_flight("updating", State.UPDATING, 151),
            _in_flight("queued", State.QUEUED, 600),
            _in_flight("destroying", State.DESTROYING, 300),
        ]
    )
    report = find_stuck(index, now=NOW, threshold=THRESHOLD)
    assert [t.entry.request_id for t in report.stuck] == [
        "req-queued",
        "req-destroying",
        "req-updating",
    ]
    assert [t.age_minutes for t in report.stuck] == [600, 300, 151]
    assert sorted(index.asked) == sorted(WATCHED)


def test_an_index_answer_past_the_cutoff_is_not_trusted() -> None:
    class Sloppy(FakeIndex):
        def entered_before(self, state: State, cutoff: datetime) -> Iterator[InFlight]:
            return (e for e in self.entries if e.state is state)

    report = find_stuck(
        Sloppy([_in_flight("fresh", State.QUEUED, 5)]), now=NOW, threshold=THRESHOLD
    )
    assert report.stuck == ()


def test_the_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        find_stuck(FakeIndex([]), now=NOW, threshold=timedelta(0))


@pytest.fixture
def ledger_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    with mocked_aws(monkeypatch):
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, "ledger")
        yield client


def test_an_entry_is_in_the_index_exactly_while_it_is_watched(ledger_table: object) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    ledger = DynamoDBLedger(client, "ledger")
    index = DynamoDBInFlightIndex(client, "ledger")
    req = request()
    entry = LedgerEntry(
        request_id=req.request_id,
        product=req.product,
        instance=str(req.ticket),
        state=State.PROVISIONING,
        version=1,
        action=req.action,
        attempt=2,
        request=req,
        updated_at=NOW,
        build_id="selfservice-provision:b-2",
        log_url="https://logs.example/b-2",
    )
    ledger.save(None, entry, [])
    (found,) = index.entered_before(State.PROVISIONING, NOW + timedelta(seconds=1))
    assert found == InFlight(
        request_id=req.request_id,
        state=State.PROVISIONING,
        since=NOW,
        product="ec2-app",
        instance=str(req.ticket),
        attempt=2,
        build_id="selfservice-provision:b-2",
        log_url="https://logs.example/b-2",
    )
    assert list(index.entered_before(State.PROVISIONING, NOW)) == []  # strictly before
    assert list(index.entered_before(State.QUEUED, NOW + timedelta(days=1))) == []
    succeeded = replace(entry, state=State.SUCCEEDED, version=2)
    ledger.save(entry, succeeded, [])
    assert list(index.entered_before(State.PROVISIONING, NOW + timedelta(days=1))) == []
    item = client.get_item(
        TableName="ledger", Key={"pk": {"S": req.request_id}, "sk": {"S": "STATE"}}
    )["Item"]
    assert IN_FLIGHT_STATE not in item
    assert IN_FLIGHT_SINCE not in item
    assert ledger.get(req.request_id) == succeeded  # the index keys never leak into entries
