"""`make deploy`: `cdk deploy` with the pinned CLI; when it fails, the first failed resource's reason.

    python -m scripts.aws_checks.deploy --cdk node_modules/.bin/cdk -- deploy --all --require-approval never

CDK prints every stack event, so the one that matters (the first `*_FAILED` with a real reason) is easy
to miss among the `Resource creation cancelled` rollbacks it causes. After a failed deploy this reads the
events of the foundation's stacks (`<prefix>-*`, DescribeStackEvents, newest first, only events since the
deploy started) and prints, per failed stack, the earliest `*_FAILED` event whose reason is not the
cancellation of a sibling. A failed nested stack is followed into its own events.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from clients.aws_session import AwsSetupError, aws_session
from config import ConfigError, load_config
from scripts.aws_checks.common import (
    AwsContext,
    RegionMissing,
    classify,
    context_from_args,
    resolve_region,
    stack_console_url,
)

logger = logging.getLogger(__name__)

CANCELLED = "Resource creation cancelled"
MAX_EVENT_PAGES = 20  # 100 events a page: plenty for one deploy, and a bound on a very old stack
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class FailedResource:
    stack: str
    logical_id: str
    resource_type: str
    status: str
    reason: str
    timestamp: datetime


def _events_since(cfn: Any, stack: str, since: datetime) -> list[dict[str, Any]]:
    """The stack's events at or after `since`, oldest first (the API returns newest first)."""
    events: list[dict[str, Any]] = []
    paginator = cfn.get_paginator("describe_stack_events")
    for page_number, page in enumerate(paginator.paginate(StackName=stack)):
        page_events = page["StackEvents"]
        events += [e for e in page_events if e["Timestamp"] >= since]
        if page_number + 1 >= MAX_EVENT_PAGES or (page_events and page_events[-1]["Timestamp"] < since):
            break
    return sorted(events, key=lambda e: e["Timestamp"])


def first_failure(cfn: Any, stack: str, since: datetime, depth: int = 0) -> FailedResource | None:
    """The earliest `*_FAILED` event of `stack` since `since` with a reason other than a cancellation;
    a failed nested stack (AWS::CloudFormation::Stack) is followed to its own first failure."""
    for event in _events_since(cfn, stack, since):
        status = str(event.get("ResourceStatus", ""))
        reason = str(event.get("ResourceStatusReason", ""))
        if not status.endswith("_FAILED") or reason.startswith(CANCELLED):
            continue
        if event.get("LogicalResourceId") == event.get("StackName"):
            continue  # the stack's own event only repeats "The following resource(s) failed ..."
        nested = event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("PhysicalResourceId")
        if nested and depth < 3:
            inner = first_failure(cfn, str(event["PhysicalResourceId"]), since, depth + 1)
            if inner is not None:
                return inner
        return FailedResource(
            stack=str(event.get("StackName") or stack),
            logical_id=str(event.get("LogicalResourceId", "")),
            resource_type=str(event.get("ResourceType", "")),
            status=status,
            reason=reason,
            timestamp=event["Timestamp"],
        )
    return None


def failed_stacks(cfn: Any, prefix: str, since: datetime) -> list[str]:
    """The `<prefix>-*` stacks whose last update since `since` failed or rolled back."""
    names: list[str] = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            name = str(stack["StackName"])
            status = str(stack["StackStatus"])
            changed = stack.get("LastUpdatedTime") or stack.get("CreationTime")
            if not name.startswith(f"{prefix}-") or (changed is not None and changed < since):
                continue
            if status.endswith("_FAILED") or "ROLLBACK" in status:
                names.append(name)
    return names


def explain_failure(aws: AwsContext, prefix: str, since: datetime) -> list[str]:
    """Lines naming the first failed resource of each failed stack (or why they cannot be read)."""
    cfn = aws.client("cloudformation")
    window = since - CLOCK_SKEW
    try:
        stacks = failed_stacks(cfn, prefix, window)
        found = [(name, first_failure(cfn, name, window)) for name in stacks]
    except (BotoCoreError, ClientError) as error:
        failure = classify(error, aws.calls[-1].action if aws.calls else "cloudformation:DescribeStacks")
        return [f"could not read the stack events: {failure.cause} ({failure.fix})"]
    if not found:
        return [
            f"no {prefix}-* stack failed in CloudFormation: the error is in the CDK output above (synth, assets, or credentials)"
        ]
    lines: list[str] = []
    for name, resource in found:
        if resource is None:
            lines.append(f"{name}: failed, but no resource event has a reason (see the console)")
            continue
        lines.append(
            f"{name}: {resource.logical_id} ({resource.resource_type}) {resource.status}: {resource.reason}"
            + (f" [in nested stack {resource.stack}]" if resource.stack != name else "")
        )
        lines.append(f"  console: {stack_console_url(aws.region, name)}")
    return lines


def main(argv: Sequence[str] | None = None, aws: AwsContext | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdk", required=True, help="the pinned CDK CLI (node_modules/.bin/cdk)")
    parser.add_argument("cdk_args", nargs=argparse.REMAINDER, help="arguments after -- go to cdk")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cdk_args = [a for a in args.cdk_args if a != "--"] if args.cdk_args[:1] == ["--"] else list(args.cdk_args)
    try:
        config = load_config(context_from_args(cdk_args))
        region = resolve_region()
        # Credentials are checked before cdk synthesizes (about a minute): missing credentials fail in
        # seconds, naming what to set, instead of after the synthesis.
        aws_session(region)
    except (ConfigError, ValueError, RegionMissing, AwsSetupError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    started = datetime.now(UTC)
    env = {**os.environ, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    code = subprocess.run([args.cdk, *cdk_args], check=False, env=env).returncode  # noqa: S603 - the pinned CLI
    if code == 0:
        return 0
    sys.stderr.write(f"\ncdk exited {code}. First failure per stack (CloudFormation events):\n")
    for line in explain_failure(aws or AwsContext(region), config.prefix, started):
        sys.stderr.write(f"  {line}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
