"""The ledger on DynamoDB: one state item per request, its history beside it.

Items (table keys ``pk``/``sk``):

- ``pk=<request_id>, sk=STATE`` — the entry; every write is conditional on the
  version it was read at, so concurrent consumers cannot both move a request;
- ``pk=<request_id>, sk=H#000001…`` — one item per transition (written in the same
  transaction as the entry);
- ``pk=SLOT#<product>, sk=SLOT`` — the holder of a serial product's build slot and
  the requests waiting for it, in order.

A state item that the stuck-ticket check watches (queued or building, not waiting for
a slot: :func:`provisioner.domain.stuck.is_watched`) also carries ``inflight_state``
and ``inflight_since`` (epoch seconds it entered the state): the keys of the sparse
``InFlightByState`` index. Every write rewrites the whole item, so an entry leaves the
index the moment it leaves those states, and the index holds only the few requests in
flight — the check queries it instead of scanning the ledger and its whole history.

A live instance whose applied plan was priced also carries ``cost_scope``
(``<environment>#<cost center>``) and ``monthly_cost``: the sparse
``CommittedCostByScope`` index, which the budget guardrail sums for what a cost center
already runs in an environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.domain.ledger import (
    ConcurrentUpdateError,
    HeldPlan,
    LedgerEntry,
    Transition,
    live_cost_scope,
)
from provisioner.domain.lifecycle import State
from provisioner.domain.stuck import InFlight, is_watched
from selfservice_contracts.request import Action, ProvisioningRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutTypeDef,
        TransactWriteItemTypeDef,
    )

__all__ = [
    "COMMITTED_COST_INDEX",
    "COST_SCOPE",
    "IN_FLIGHT_INDEX",
    "IN_FLIGHT_PROJECTION",
    "IN_FLIGHT_SINCE",
    "IN_FLIGHT_STATE",
    "DynamoDBInFlightIndex",
    "DynamoDBLedger",
    "DynamoDBSerialSlot",
]

_STATE = "STATE"
IN_FLIGHT_INDEX = "InFlightByState"
"""The ledger table's sparse index of watched entries (sam/provisioner.yaml, LedgerTable)."""
IN_FLIGHT_STATE = "inflight_state"
"""Index partition key: the entry's state, present only while the entry is watched."""
IN_FLIGHT_SINCE = "inflight_since"
"""Index sort key: epoch seconds when the entry entered that state."""
IN_FLIGHT_PROJECTION = ("product", "instance", "attempt", "build_id", "log_url")
"""The non-key attributes the index carries (what a stuck-ticket report shows)."""
COMMITTED_COST_INDEX = "CommittedCostByScope"
"""The ledger table's sparse index of live, priced instances (sam/provisioner.yaml)."""
COST_SCOPE = "cost_scope"
"""Its partition key: ``<environment>#<cost center>``, present only on live priced entries."""


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _entry_item(entry: LedgerEntry) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": _s(entry.request_id),
        "sk": _s(_STATE),
        "product": _s(entry.product),
        "instance": _s(entry.instance),
        "state": _s(entry.state.value),
        "version": _n(entry.version),
        "action": _s(entry.action.value),
        "attempt": _n(entry.attempt),
        "request": _s(entry.request.model_dump_json()),
        "updated_at": _s(entry.updated_at.isoformat()),
        "waiting_for_slot": {"BOOL": entry.waiting_for_slot},
        "outputs": _s(json.dumps(entry.outputs)),
        "sequence": _n(entry.sequence),
    }
    for name in ("build_id", "log_url", "queued_by", "replan_because"):
        value = getattr(entry, name)
        if value is not None:
            item[name] = _s(value)
    if entry.plan_only:
        item["plan_only"] = {"BOOL": True}
    if entry.apply_held:
        item["apply_held"] = {"BOOL": True}
    if entry.held_plan is not None:
        held = entry.held_plan
        item["held_plan"] = {
            "M": {
                "sha256": _s(held.sha256),
                "attempt": _n(held.attempt),
                "module_sha256": _s(held.module_sha256),
                "monthly_cost": {"N": str(held.monthly_cost)},
            }
        }
    if entry.monthly_cost is not None:
        item["monthly_cost"] = {"N": str(entry.monthly_cost)}
    scope = live_cost_scope(entry)
    if scope is not None:
        item[COST_SCOPE] = _s(scope)
    if is_watched(entry):
        item[IN_FLIGHT_STATE] = _s(entry.state.value)
        item[IN_FLIGHT_SINCE] = _n(int(entry.updated_at.timestamp()))
    return item


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        request_id=item["pk"]["S"],
        product=item["product"]["S"],
        instance=item["instance"]["S"],
        state=State(item["state"]["S"]),
        version=int(item["version"]["N"]),
        action=Action(item["action"]["S"]),
        attempt=int(item["attempt"]["N"]),
        request=ProvisioningRequest.model_validate_json(item["request"]["S"]),
        updated_at=datetime.fromisoformat(item["updated_at"]["S"]),
        build_id=item.get("build_id", {}).get("S"),
        log_url=item.get("log_url", {}).get("S"),
        queued_by=item.get("queued_by", {}).get("S"),
        waiting_for_slot=item.get("waiting_for_slot", {}).get("BOOL", False),
        outputs=json.loads(item.get("outputs", {}).get("S", "{}")),
        sequence=int(item.get("sequence", {}).get("N", "0")),
        plan_only=item.get("plan_only", {}).get("BOOL", False),
        apply_held=item.get("apply_held", {}).get("BOOL", False),
        held_plan=_held_plan(item["held_plan"]["M"]) if "held_plan" in item else None,
        replan_because=item.get("replan_because", {}).get("S"),
        monthly_cost=Decimal(item["monthly_cost"]["N"]) if "monthly_cost" in item else None,
    )


def _held_plan(item: dict[str, Any]) -> HeldPlan:
    return HeldPlan(
        sha256=item["sha256"]["S"],
        attempt=int(item["attempt"]["N"]),
        module_sha256=item["module_sha256"]["S"],
        monthly_cost=Decimal(item["monthly_cost"]["N"]),
    )


def _history_item(step: Transition) -> dict[str, AttributeValueTypeDef]:
    item: dict[str, AttributeValueTypeDef] = {
        "pk": _s(step.request_id),
        "sk": _s(f"H#{step.sequence:06d}"),
        "to_state": _s(step.to_state.value),
        "at": _s(step.at.isoformat()),
        "cause": _s(step.cause),
        "detail": _s(json.dumps(step.detail, default=str)),
    }
    if step.from_state is not None:
        item["from_state"] = _s(step.from_state.value)
    return item


def _transition(item: dict[str, Any]) -> Transition:
    from_state = item.get("from_state", {}).get("S")
    return Transition(
        request_id=item["pk"]["S"],
        sequence=int(item["sk"]["S"].removeprefix("H#")),
        from_state=State(from_state) if from_state else None,
        to_state=State(item["to_state"]["S"]),
        at=datetime.fromisoformat(item["at"]["S"]),
        cause=item["cause"]["S"],
        detail=json.loads(item["detail"]["S"]),
    )


class DynamoDBLedger:
    """The ledger port on one DynamoDB table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, request_id: str) -> LedgerEntry | None:
        """The entry, read consistently."""
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": _s(request_id), "sk": _s(_STATE)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _entry(item) if item else None

    def save(
        self, before: LedgerEntry | None, after: LedgerEntry, transitions: list[Transition]
    ) -> None:
        """Write the entry and its new history in one transaction, iff unchanged."""
        put: PutTypeDef = {"TableName": self._table, "Item": _entry_item(after)}
        if before is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :version"
            put["ExpressionAttributeValues"] = {":version": _n(before.version)}
        history: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _history_item(step),
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
            for step in transitions
        ]
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put}, *history])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
            ):
                raise ConcurrentUpdateError(
                    f"{after.request_id} changed since version {before.version if before else 0}"
                ) from exc
            raise

    def history(self, request_id: str) -> list[Transition]:
        """Every transition, oldest first."""
        steps: list[Transition] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :h)",
            "ExpressionAttributeValues": {":pk": _s(request_id), ":h": _s("H#")},
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**kwargs)
            steps += [_transition(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return steps
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class DynamoDBSerialSlot:
    """One build at a time per serial product, with an ordered waiting list; no polling."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, product: str) -> dict[str, AttributeValueTypeDef]:
        return {"pk": _s(f"SLOT#{product}"), "sk": _s("SLOT")}

    def _conditional(self, **kwargs: Any) -> bool:
        try:
            self._client.update_item(TableName=self._table, **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def acquire(self, product: str, request_id: str) -> bool:
        """Take the slot, or join the waiting list behind its holder."""
        me = _s(request_id)
        for _ in range(5):
            if self._conditional(
                Key=self._key(product),
                UpdateExpression="SET holder = :me",
                ConditionExpression="attribute_not_exists(holder) OR holder = :me",
                ExpressionAttributeValues={":me": me},
            ):
                return True
            # Join the queue only while someone holds the slot (their release will
            # hand it to us); if it was just freed, try to take it again.
            if self._conditional(
                Key=self._key(product),
                UpdateExpression=(
                    "SET waiting = list_append(if_not_exists(waiting, :empty), :me_list)"
                ),
                ConditionExpression=(
                    "attribute_exists(holder) AND holder <> :me AND "
                    "(attribute_not_exists(waiting) OR NOT contains(waiting, :me_value))"
                ),
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":me_list": {"L": [me]},
                    ":me": me,
                    ":me_value": me,
                },
            ):
                return False
            item = self._client.get_item(
                TableName=self._table, Key=self._key(product), ConsistentRead=True
            ).get("Item", {})
            if me in item.get("waiting", {}).get("L", []):
                return False  # already queued (a retried message)
        raise ConcurrentUpdateError(f"the {product} build slot is contended")

    def release(self, product: str, request_id: str) -> str | None:
        """Hand the slot to the first waiting request (returned), or free it."""
        item = self._client.get_item(
            TableName=self._table, Key=self._key(product), ConsistentRead=True
        ).get("Item", {})
        if item.get("holder", {}).get("S") != request_id:
            return None
        waiting = [value["S"] for value in item.get("waiting", {}).get("L", [])]
        if waiting:
            handed = self._conditional(
                Key=self._key(product),
                UpdateExpression="SET holder = :next REMOVE waiting[0]",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":next": _s(waiting[0]), ":me": _s(request_id)},
            )
            return waiting[0] if handed else None
        self._conditional(
            Key=self._key(product),
            UpdateExpression="REMOVE holder",
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": _s(request_id)},
        )
        return None


class DynamoDBInFlightIndex:
    """The in-flight index port on the ledger table's ``InFlightByState`` index."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def entered_before(self, state: State, cutoff: datetime) -> Iterator[InFlight]:
        """Watched entries in ``state`` since before ``cutoff`` (one query, paginated)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": IN_FLIGHT_INDEX,
            "KeyConditionExpression": "#state = :state AND #since < :cutoff",
            "ExpressionAttributeNames": {"#state": IN_FLIGHT_STATE, "#since": IN_FLIGHT_SINCE},
            "ExpressionAttributeValues": {
                ":state": _s(state.value),
                ":cutoff": _n(int(cutoff.timestamp())),
            },
        }
        while True:
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                yield InFlight(
                    request_id=item["pk"]["S"],
                    state=State(item[IN_FLIGHT_STATE]["S"]),
                    since=datetime.fromtimestamp(int(item[IN_FLIGHT_SINCE]["N"]), UTC),
                    product=item.get("product", {}).get("S", ""),
                    instance=item.get("instance", {}).get("S", ""),
                    attempt=int(item.get("attempt", {}).get("N", "0")),
                    build_id=item.get("build_id", {}).get("S"),
                    log_url=item.get("log_url", {}).get("S"),
                )
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
