"""frontend.auth: sign-ins in flight survive the redirect exactly once, for the same browser."""

from __future__ import annotations

import pytest

from clients.oauth import StateMismatch
from frontend.auth import PendingLogins, browser_identity


def test_callback_takes_the_verifier_once():
    store = PendingLogins()
    store.put("state-1", "verifier-1", "cookie-a")
    assert store.take("state-1", "cookie-a") == "verifier-1"
    with pytest.raises(StateMismatch):
        store.take("state-1", "cookie-a")


def test_unknown_state_is_rejected():
    store = PendingLogins()
    store.put("state-1", "verifier-1", None)
    with pytest.raises(StateMismatch):
        store.take("forged", None)
    with pytest.raises(StateMismatch):
        store.take(None, None)


def test_another_browser_cannot_complete_the_sign_in():
    store = PendingLogins()
    store.put("state-1", "verifier-1", "cookie-a")
    with pytest.raises(StateMismatch, match="another browser"):
        store.take("state-1", "cookie-b")
    assert len(store) == 0  # and the attempt is burnt


def test_sign_ins_expire():
    now = [1000.0]
    store = PendingLogins(ttl=600, clock=lambda: now[0])
    store.put("state-1", "verifier-1", None)
    now[0] += 601
    with pytest.raises(StateMismatch, match="expired"):
        store.take("state-1", None)


def test_browser_identity_sees_through_tornado_remasking():
    # the same token seen on two page loads (values captured from a real Streamlit session)
    first = browser_identity("2|baac825c|d48268e5e52fd6ffcde3df2809c898ec|1795482481")
    second = browser_identity("2|36445b47|586ab1fe69c70fe4410b0633852041f7|1795482481")
    assert first == second and first is not None
    assert browser_identity("2|00000001|586ab1fe69c70fe4410b0633852041f7|1795482481") != first


@pytest.mark.parametrize("cookie", [None, "", "2|zz|yy|1"])
def test_unreadable_cookies_bind_nothing(cookie):
    assert browser_identity(cookie) is None
