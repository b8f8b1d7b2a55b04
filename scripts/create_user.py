"""Create a Cognito user who receives a temporary password by email, optionally in a team group.

Usage: python -m scripts.create_user --email someone@example.com [--team support] [--user-pool-id ID]
       [--region eu-west-1]
Without --user-pool-id the pool id is read from the identity stack's `UserPoolId` output. The region is
--region, else AWS_REGION, else AWS_DEFAULT_REGION, else your AWS profile's (scripts/aws_session.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from botocore.exceptions import BotoCoreError

from clients.aws_session import AwsSetupError, aws_session
from config import AppConfig, load_config
from config.foundation import EMAIL_PATTERN

logger = logging.getLogger(__name__)


class UserCreationError(RuntimeError):
    """The user could not be created; the message says why and what to do."""


def find_user_pool_id(cloudformation: Any, config: AppConfig) -> str:
    """Read the user pool id from the deployed identity stack's outputs."""
    stack_name = f"{config.prefix}-identity"
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        raise UserCreationError(
            f"stack {stack_name} is not deployed here ({exc}); run `make deploy` first"
        ) from None
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == "UserPoolId":
            return str(output["OutputValue"])
    raise UserCreationError(f"stack {stack_name} has no UserPoolId output")


def create_user(
    cognito: Any, user_pool_id: str, email: str, team: str | None, config: AppConfig
) -> dict[str, Any]:
    """Create the user (Cognito emails the temporary password) and add it to its team group."""
    if not EMAIL_PATTERN.match(email):
        raise UserCreationError(f"EMAIL {email!r} is not an email address")
    if team is not None and team not in config.identity.teams:
        raise UserCreationError(
            f"TEAM {team!r} is not a configured team; teams: {list(config.identity.teams)}"
        )
    try:
        user = cognito.admin_create_user(
            UserPoolId=user_pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            DesiredDeliveryMediums=["EMAIL"],
        )["User"]
    except cognito.exceptions.UsernameExistsException:
        raise UserCreationError(f"a user with email {email} already exists") from None
    if team is not None:
        cognito.admin_add_user_to_group(UserPoolId=user_pool_id, Username=user["Username"], GroupName=team)
    logger.info("created user %s (team %s)", email, team)
    return dict(user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--email", required=True)
    parser.add_argument("--team")
    parser.add_argument("--user-pool-id")
    parser.add_argument("--profile", default="dev", help="config profile (default dev)")
    parser.add_argument(
        "--region", help="the deployment's region (default: AWS_REGION, then your AWS config)"
    )
    args = parser.parse_args(argv)
    config = load_config({"profile": args.profile})
    try:
        session = aws_session(args.region)
        pool_id = args.user_pool_id or find_user_pool_id(session.client("cloudformation"), config)
        user = create_user(session.client("cognito-idp"), pool_id, args.email, args.team, config)
    except (UserCreationError, AwsSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotoCoreError as exc:  # no network, expired SSO token, ...: one line, not a traceback
        print(f"error: the AWS request failed: {exc}", file=sys.stderr)
        return 2
    print(f"created {args.email} ({user['UserStatus']}); Cognito emailed a temporary password")
    return 0


if __name__ == "__main__":
    sys.exit(main())
