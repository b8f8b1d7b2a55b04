"""Support tickets: the rules (`service`) and two storage backends behind one protocol (`storage`):
DynamoDB (`storage_dynamodb`, deployed) and SQLite (`storage_sqlite`, local mode)."""

from tools.tickets.service import MAX_COMMENTS_PER_TICKET, TicketService, ticket_tools
from tools.tickets.storage import DuplicateTicketError, StaleTicketError, Ticket, TicketRepository
from tools.tickets.storage_dynamodb import DynamoTicketRepository
from tools.tickets.storage_sqlite import SqliteTicketRepository

__all__ = [
    "MAX_COMMENTS_PER_TICKET",
    "DuplicateTicketError",
    "DynamoTicketRepository",
    "SqliteTicketRepository",
    "StaleTicketError",
    "Ticket",
    "TicketRepository",
    "TicketService",
    "ticket_tools",
]
