"""The real local tool server (`tools.server.ToolServer.build_app`, the MCP SDK transport, tickets in
SQLite with the Lambda's rules) with a small keyword knowledge backend instead of the embedded MiniLM
index, so it starts in about a second instead of half a minute (the index itself is tested in
tests/tools/test_local_index.py). Used by the reliability suite and `make soak --light-tools`
(local_stack.components.tool_server(..., light=True)).

    python -m local_stack.light_tools --port 8765 --db /tmp/tickets.db
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tools.local_index import Chunk, Hit
from tools.server import ToolServer
from tools.tickets import SqliteTicketRepository, TicketService

logger = logging.getLogger(__name__)

CHUNKS = (
    Chunk(
        1,
        "Router X200 User Manual",
        "corpus/router-x200-user-manual.pdf",
        6,
        "Factory reset",
        "Hold the recessed RESET button for 10 seconds until the Status ring blinks red.",
    ),
    Chunk(
        2,
        "Router X200 User Manual",
        "corpus/router-x200-user-manual.pdf",
        3,
        "LED indicators",
        "Blinking red status ring: factory reset in progress.",
    ),
    Chunk(
        3,
        "Returns policy",
        "corpus/returns-policy.md",
        None,
        "Returns",
        "Devices can be returned within 30 days of delivery.",
    ),
)


class KeywordKnowledge:
    """Ranks the fixed chunks by the number of query words they contain (deterministic, instant)."""

    def search(self, query: str, max_results: int) -> list[Hit]:
        words = {word for word in query.lower().split() if len(word) > 2}
        scored = [
            Hit(chunk, len(words & set(chunk.text.lower().split())) / (len(words) or 1)) for chunk in CHUNKS
        ]
        scored.sort(key=lambda hit: -hit.score)
        return [hit for hit in scored if hit.score > 0][:max_results]


def build(db: Path | str) -> ToolServer:
    return ToolServer(TicketService(SqliteTicketRepository(db)), KeywordKnowledge())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import uvicorn

    uvicorn.run(
        build(args.db).build_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
