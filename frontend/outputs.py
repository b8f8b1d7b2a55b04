"""Settings for running the chat on a laptop against a deployed runtime, read from the stacks' outputs.

    python -m frontend.outputs [--prefix aaf] [--region eu-west-1]

prints `CHAT_MODE`, `AGENT_RUNTIME_ARN`, `AWS_REGION`, `COGNITO_DOMAIN_URL` and `COGNITO_CLIENT_ID` as
`NAME=value` lines (`make chat MODE=agentcore` loads them). The region is --region, else AWS_REGION, else
AWS_DEFAULT_REGION, else your AWS profile's; a missing region or missing credentials end with one line
naming what to set (exit 2). The browser client accepts
http://localhost:8501/ as a callback (config `identity.callback_urls`), so managed login works locally.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

# (stack suffix, output key) -> environment variable
OUTPUTS = {
    ("agentcore", "RuntimeArn"): "AGENT_RUNTIME_ARN",
    ("identity", "ManagedLoginUrl"): "COGNITO_DOMAIN_URL",
    ("identity", "BrowserClientId"): "COGNITO_CLIENT_ID",
}


class OutputsError(RuntimeError):
    """A stack or output is missing; the message names it."""


def chat_environment(prefix: str, region: str | None = None, cloudformation: Any = None) -> dict[str, str]:
    """The chat's AgentCore-mode settings from the deployed `<prefix>-agentcore` and `<prefix>-identity` stacks."""
    if cloudformation is None:  # only this laptop CLI needs AWS credentials
        from clients.aws_session import aws_session

        cloudformation = aws_session(region).client("cloudformation")
    env = {"CHAT_MODE": "agentcore", "AWS_REGION": region or cloudformation.meta.region_name}
    cache: dict[str, dict[str, str]] = {}
    for (suffix, key), name in OUTPUTS.items():
        stack = f"{prefix}-{suffix}"
        if stack not in cache:
            try:
                described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
            except cloudformation.exceptions.ClientError as exc:
                raise OutputsError(f"stack {stack} is not deployed in {env['AWS_REGION']}: {exc}") from None
            cache[stack] = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        if key not in cache[stack]:
            raise OutputsError(f"stack {stack} has no output {key}; redeploy it with this version")
        env[name] = cache[stack][key]
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prefix", default="aaf", help="project.name_prefix of the deployment")
    parser.add_argument("--region", default=None, help="the deployment's region (default: your AWS config)")
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError

    from clients.aws_session import AwsSetupError

    try:
        env = chat_environment(args.prefix, args.region)
    except (OutputsError, AwsSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotoCoreError as exc:  # no network, expired SSO token, ...: one line, not a traceback
        print(f"error: the AWS request failed: {exc}", file=sys.stderr)
        return 2
    for name, value in env.items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
