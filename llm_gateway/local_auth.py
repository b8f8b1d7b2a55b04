"""Authentication for the local gateway, which runs without a database.

LiteLLM checks any key other than the master key against its database; without one it answers
`400 No connected db.` for a wrong key. The local gateway has exactly one key (the master key
generated per run), so this hook (LiteLLM `general_settings.custom_auth`) accepts that key and answers
`401` to anything else, as the deployed gateway does for an unknown virtual key. Only the local
config uses it; the deployed gateway authenticates virtual keys against Aurora.
"""

from __future__ import annotations

import logging
import os
import secrets

from fastapi import Request
from litellm.constants import LITELLM_PROXY_ADMIN_NAME, LITELLM_PROXY_MASTER_KEY_ALIAS
from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

logger = logging.getLogger(__name__)

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """Accept the local master key (constant-time comparison); raise a 401 ProxyException otherwise.

    Args:
        request: the incoming request (unused beyond logging the path).
        api_key: the key LiteLLM extracted from `Authorization` (with or without `Bearer `).
    """
    expected = os.environ.get(MASTER_KEY_ENV, "")
    if not expected:
        raise ProxyException(
            message=f"the local gateway has no master key: set {MASTER_KEY_ENV}",
            type=ProxyErrorTypes.auth_error,
            param="api_key",
            code=500,
        )
    presented = (api_key or "").removeprefix("Bearer ").strip()
    if presented and secrets.compare_digest(presented.encode(), expected.encode()):
        # The same identity LiteLLM gives the master key (never the raw key, which would reach logs).
        return UserAPIKeyAuth(
            api_key=LITELLM_PROXY_MASTER_KEY_ALIAS,
            user_id=LITELLM_PROXY_ADMIN_NAME,
            user_role=LitellmUserRoles.PROXY_ADMIN,
        )
    logger.info("rejected a request to %s with %s key", request.url.path, "a wrong" if presented else "no")
    raise ProxyException(
        message="Authentication Error: invalid or missing API key for the local gateway",
        type=ProxyErrorTypes.auth_error,
        param="api_key",
        code=401,
    )
