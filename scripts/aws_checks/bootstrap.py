"""`make bootstrap`: `cdk bootstrap aws://<account>/<region>` with the pinned CLI, for the credentials' account.

    python -m scripts.aws_checks.bootstrap --cdk node_modules/.bin/cdk [-- extra cdk bootstrap args]

The account comes from STS GetCallerIdentity, the region from AWS_REGION, AWS_DEFAULT_REGION or the
profile (boto3 alone ignores AWS_REGION), so the environment bootstrapped is the one `make deploy` uses.
Source: AWS CDK v2 developer guide, "Bootstrap your environment for use with the AWS CDK"
(https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html): `cdk bootstrap aws://ACCOUNT/REGION`.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from scripts.aws_checks.common import AwsContext, RegionMissing, classify, resolve_region

logger = logging.getLogger(__name__)


def bootstrap_command(cdk: str, aws: AwsContext, extra: Sequence[str]) -> list[str]:
    """The cdk bootstrap argv for the credentials' account and the resolved region."""
    account = str(aws.client("sts").get_caller_identity()["Account"])
    return [cdk, "bootstrap", f"aws://{account}/{aws.region}", *extra]


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="make bootstrap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdk", required=True, help="the pinned CDK CLI (node_modules/.bin/cdk)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="arguments after -- go to cdk bootstrap")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    extra = [a for a in args.extra if a != "--"]
    try:
        aws = AwsContext(resolve_region())
        command = bootstrap_command(args.cdk, aws, extra)
    except (BotoCoreError, ClientError, RegionMissing) as error:
        failure = classify(error, "sts:GetCallerIdentity")
        sys.stderr.write(f"error: {failure.cause}: {failure.fix}\n")
        return 2
    sys.stderr.write(f"+ {' '.join(command)}\n")
    # The CDK CLI reads AWS_REGION; pass the resolved region so it bootstraps what we printed.
    env = {**os.environ, "AWS_REGION": aws.region, "AWS_DEFAULT_REGION": aws.region}
    return subprocess.run(command, check=False, env=env).returncode  # noqa: S603 - the pinned CLI


if __name__ == "__main__":
    sys.exit(main())
