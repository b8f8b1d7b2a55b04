"""Tool gateway hot paths, measured in-process: actor-token verification (stdlib RS256) and ticket
operations through the tool table (`tools.dispatch.ToolTable`) on the SQLite repository.

Usage: .venv/bin/python -m benchmarks.tool_gateway [--iterations N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from functions.interceptor.jwt_verify import ActorTokenVerifier
from tools.dispatch import ToolTable
from tools.tickets import SqliteTicketRepository, TicketService, ticket_tools

ISSUER = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_bench"


def measure(label: str, call: Callable[[], object], iterations: int) -> None:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<40} median {statistics.median(samples):7.3f} ms   p95 {p95:7.3f} ms   (n={iterations})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "use": "sig"}
    verifier = ActorTokenVerifier.create(ISSUER, ["client"], fetch=lambda _url: {"keys": [jwk]})
    now = int(time.time())
    token = jwt.encode(
        {"sub": "user", "iss": ISSUER, "client_id": "client", "token_use": "access", "exp": now + 3600},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    measure("verify actor token (RS256)", lambda: verifier.verify(token), args.iterations)

    with tempfile.TemporaryDirectory() as directory:
        repository = SqliteTicketRepository(Path(directory) / "tickets.db")
        service = TicketService(repository)
        arguments = {"email": "a@example.com", "subject": "s", "description": "d" * 500}
        table = ToolTable(ticket_tools(service), identity_source="benchmark")
        created = table.call("create_ticket", arguments, "user")
        measure(
            "create_ticket (SQLite)",
            lambda: table.call("create_ticket", arguments, "user"),
            args.iterations,
        )
        ticket = {"ticket_id": created["ticket_id"]}
        measure("get_ticket (SQLite)", lambda: table.call("get_ticket", ticket, "user"), args.iterations)
        measure(
            "list_tickets limit 10 (SQLite)",
            lambda: table.call("list_tickets", {}, "user"),
            args.iterations,
        )
        repository.close()


if __name__ == "__main__":
    main()
