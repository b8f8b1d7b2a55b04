"""Sign-in state that must survive the browser's round trip to Cognito managed login.

Streamlit keeps `st.session_state` per browser connection, and the redirect to Cognito and back opens
a new connection. So the PKCE verifier waits here, in the server process, keyed by the unguessable
`state` and bound to the browser's `_streamlit_xsrf` cookie when it has one; the callback takes it
exactly once, within `ttl` seconds. (Deployed, the load balancer's sticky sessions bring the callback
back to the same task.)
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from clients.oauth import StateMismatch

LOGIN_TTL_SECONDS = 600.0
MAX_PENDING = 10_000


@dataclass(frozen=True)
class _Pending:
    state: str
    verifier: str
    binding: str
    created: float


class PendingLogins:
    """Process-wide store of sign-ins in flight: `put` when redirecting, `take` on the callback."""

    def __init__(self, ttl: float = LOGIN_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()

    def put(self, state: str, verifier: str, browser: str | None) -> None:
        with self._lock:
            self._expire()
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(0)
            self._pending.append(_Pending(state, verifier, _binding(browser), self._clock()))

    def take(self, state: str | None, browser: str | None) -> str:
        """The verifier of the sign-in that sent `state`, removed so a callback works once.

        Raises:
            StateMismatch: unknown, expired or already used state, or another browser's.
        """
        with self._lock:
            self._expire()
            for index, pending in enumerate(self._pending):
                if state and hmac.compare_digest(pending.state.encode(), state.encode()):
                    del self._pending[index]
                    if pending.binding and not hmac.compare_digest(pending.binding, _binding(browser)):
                        break
                    return pending.verifier
        raise StateMismatch(
            "state_mismatch", "this sign-in link is expired, already used or from another browser"
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl
        self._pending = [p for p in self._pending if p.created >= cutoff]


def browser_identity(xsrf_cookie: str | None) -> str | None:
    """The stable secret inside Streamlit's `_streamlit_xsrf` cookie, or None.

    Tornado writes the cookie as `2|<mask>|<token XOR mask>|<timestamp>` and re-masks it on every page
    load, so the raw value changes while the token stays; version-1 cookies are the token itself.
    """
    if not xsrf_cookie:
        return None
    parts = xsrf_cookie.split("|")
    if len(parts) == 4 and parts[0] == "2":
        try:
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        except ValueError:
            return None
        if len(mask) != 4 or not masked:
            return None
        return bytes(byte ^ mask[i % 4] for i, byte in enumerate(masked)).hex()
    return xsrf_cookie


def _binding(browser: str | None) -> str:
    return hashlib.sha256(browser.encode()).hexdigest() if browser else ""


PENDING_LOGINS = PendingLogins()
