"""The ledger's ``CommittedCostByScope`` index behind the :class:`CommittedCost` port.

Live instances whose applied plan was priced carry ``cost_scope`` (``<environment>#<cost
center>``) and ``monthly_cost`` in their ledger item (:mod:`.ledger_dynamodb`); the index
holds only those, so what a cost center already runs is one partition's sum.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from provisioner.adapters.ledger_dynamodb import COMMITTED_COST_INDEX, COST_SCOPE
from provisioner.domain.ledger import cost_scope

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["DynamoDBCommittedCost"]


class DynamoDBCommittedCost:
    """What a cost center already runs in an environment, from ``CommittedCostByScope``."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def committed(
        self, environment: str | None, cost_center: str | None, *, excluding: str
    ) -> Decimal:
        """The monthly cost of the scope's live instances but ``excluding`` (the request's
        own instance, whose cost its new plan replaces)."""
        total = Decimal("0.00")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": COMMITTED_COST_INDEX,
            "KeyConditionExpression": "#scope = :scope",
            "ExpressionAttributeNames": {"#scope": COST_SCOPE},
            "ExpressionAttributeValues": {":scope": {"S": cost_scope(environment, cost_center)}},
        }
        while True:
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                if item["pk"]["S"] != excluding and "monthly_cost" in item:
                    total += Decimal(item["monthly_cost"]["N"])
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
