"""The AWS session of a user-facing command (`make user`, `make chat MODE=agentcore`).

The README tells users to set `AWS_REGION`, but boto3 reads the region only from `AWS_DEFAULT_REGION`
or the profile: botocore 1.44.5 `configprovider.py` maps the `region` setting to
`('region', 'AWS_DEFAULT_REGION', None, None)` (BOTOCORE_DEFAULT_SESSION_VARIABLES), so `AWS_REGION`
alone gives `NoRegionError` on the first client. This module resolves the region in the documented
order (an explicit `--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile) and fails with one line
naming what to set, before any request is made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
NO_REGION = (
    "no AWS region: set AWS_REGION (e.g. `export AWS_REGION=eu-west-1`), or AWS_DEFAULT_REGION, "
    "or `region` in your AWS profile"
)
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE (after `aws configure` or `aws sso login`) or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


class AwsSetupError(RuntimeError):
    """The region or the credentials are missing; the message names what to set."""


def region_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The region named by `AWS_REGION`, else `AWS_DEFAULT_REGION`; None when neither is set."""
    env = os.environ if environ is None else environ
    for name in REGION_ENVS:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def aws_session(region: str | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 session with a region and credentials, or AwsSetupError naming what is missing.

    The profile is boto3's usual `AWS_PROFILE`; credentials are boto3's usual chain (environment,
    profile/SSO, container and instance roles).
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    chosen = (region or "").strip() or region_from_env(environ)
    try:
        session = boto3.session.Session(region_name=chosen)
    except ProfileNotFound as exc:
        raise AwsSetupError(f"{exc}: set AWS_PROFILE to a profile in ~/.aws/config, or unset it") from None
    if not session.region_name:
        raise AwsSetupError(NO_REGION)
    if session.get_credentials() is None:
        raise AwsSetupError(NO_CREDENTIALS)
    return session
