"""Ticket storage in DynamoDB (deployed): one item per ticket, keyed by (owner, ticket id).

Conditional writes give the storage protocol's guarantees: `attribute_not_exists` on insert
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html#Expressions.ConditionExpressions.PreventingOverwrites)
and a `version` condition on replace (optimistic locking); a failed condition raises
`ConditionalCheckFailedException` (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html,
"Errors"). Reads are strongly consistent, also the query on the local secondary index ("Strongly consistent
reads are only supported on tables and local secondary indexes",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
The boto3 `Table` is passed in: no AWS SDK import here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tools.tickets.storage import DuplicateTicketError, StaleTicketError, Ticket

logger = logging.getLogger(__name__)


class DynamoTicketRepository:
    """Tickets in DynamoDB: partition key `owner`, sort key `ticket_id`, local secondary index
    `by_created` (sort key `created_at`) for newest-first listing with strong consistency.

    Args:
        table: a boto3 `dynamodb.Table` resource.
    """

    PARTITION_KEY = "owner"
    SORT_KEY = "ticket_id"
    INDEX_NAME = "by_created"
    INDEX_SORT_KEY = "created_at"

    def __init__(self, table: Any) -> None:
        self._table = table
        self._conditional_failure = table.meta.client.exceptions.ConditionalCheckFailedException

    def insert(self, record: Ticket) -> None:
        try:
            self._table.put_item(
                Item=_to_item(record),
                ConditionExpression="attribute_not_exists(#o) AND attribute_not_exists(ticket_id)",
                ExpressionAttributeNames={"#o": "owner"},
            )
        except self._conditional_failure as exc:
            raise DuplicateTicketError(record["ticket_id"]) from exc

    def get(self, owner: str, ticket_id: str) -> Ticket | None:
        response = self._table.get_item(Key={"owner": owner, "ticket_id": ticket_id}, ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def list(self, owner: str, status: str | None, limit: int) -> list[Ticket]:
        query: dict[str, Any] = {
            "IndexName": self.INDEX_NAME,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": owner},
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        if status is not None:
            query["FilterExpression"] = "#s = :s"
            query["ExpressionAttributeNames"]["#s"] = "status"
            query["ExpressionAttributeValues"][":s"] = status
        records: list[Ticket] = []
        while len(records) < limit:
            response = self._table.query(**query, Limit=max(limit, 25))
            records.extend(_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return records[:limit]

    def replace(self, record: Ticket, expected_version: int) -> None:
        try:
            self._table.put_item(
                Item=_to_item(record),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": expected_version},
            )
        except self._conditional_failure as exc:
            raise StaleTicketError(record["ticket_id"]) from exc


def _to_item(record: Ticket) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


def _from_item(item: Mapping[str, Any]) -> Ticket:
    record = {key: _plain(value) for key, value in item.items()}
    record.setdefault("device", None)
    record.setdefault("comments", [])
    return record


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
