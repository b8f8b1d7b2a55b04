"""Shared pieces of preflight, bootstrap, deploy and verify: region, AWS clients that record the actions
they call, typed check results, error classification by exception type, the summary table, console links.
"""

from __future__ import annotations

import enum
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from clients.aws_session import region_from_env

logger = logging.getLogger(__name__)

S = TypeVar("S")

DOCS = "docs/deploy.md"
# Bounded SDK behaviour: a dead endpoint fails in seconds, throttling is retried a few times.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 4, "mode": "standard"})


class Status(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a check status, not a password
    FAIL = "FAIL"
    WARN = "WARN"  # works, but something needs attention; does not fail the command
    SKIP = "SKIP"  # not run: a prerequisite failed or the component is switched off
    NEEDS_VPC = "NEEDS VPC"  # only checkable from inside the VPC; the detail holds the exact command


@dataclass(frozen=True)
class CheckResult:
    """One line of the summary: what was checked, the outcome, and what to do about a failure."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    link: str = ""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


class RegionMissing(Exception):
    """Neither AWS_REGION, AWS_DEFAULT_REGION nor the profile names a region."""


REGION_FIX = (
    "set AWS_REGION (e.g. `export AWS_REGION=us-east-1`), or AWS_DEFAULT_REGION, or `region` in the "
    "profile named by AWS_PROFILE"
)


def resolve_region(environ: Mapping[str, str] | None = None) -> str:
    """The region of the command: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's region.

    boto3 1.44 reads only AWS_DEFAULT_REGION or the profile, not AWS_REGION (botocore 1.44.5
    `configprovider.py`, see scripts/aws_session.py), so the region is resolved here and passed to every
    client as `region_name`.

    Raises:
        RegionMissing: no region is configured anywhere.
    """
    env = os.environ if environ is None else environ
    region = region_from_env(env)
    if not region:
        profile = env.get("AWS_PROFILE") or None
        try:
            region = boto3.session.Session(profile_name=profile).region_name
        except BotoCoreError:  # e.g. ProfileNotFound: no region from a profile that does not exist
            region = None
    if not region:
        raise RegionMissing(f"no AWS region configured: {REGION_FIX}")
    return region


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call as IAM names it (`signing name:operation`, e.g. `bedrock:ListIngestionJobs`)."""

    service: str
    operation: str

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class AwsContext:
    """AWS clients for one region, created once each; every API call made through them is recorded
    (at the botocore `provide-client-params` event)."""

    region: str
    session: boto3.session.Session = field(default_factory=boto3.session.Session)
    calls: list[AwsCall] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            session: Any = self.session  # the service name is a runtime string, not a stub Literal
            client = session.client(service, region_name=self.region, config=CLIENT_CONFIG)
            # `provide-client-params` fires for every call before `before-call`, where a test's Stubber
            # answers (botocore client.py `_make_api_call`), so stubbed calls are recorded too.
            client.meta.events.register("provide-client-params", self._record)
            self._clients[service] = client
        return self._clients[service]

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(AwsCall(model.service_model.signing_name, model.name))
        return None  # a non-None answer would replace the call's parameters

    @property
    def actions(self) -> list[str]:
        """The distinct IAM actions called so far, in first-call order."""
        return list(dict.fromkeys(call.action for call in self.calls))


# --- failures, classified by exception type ----------------------------------------------------------

ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
INVALID_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)
THROTTLED = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})


@dataclass(frozen=True)
class Failure:
    """Why an AWS call failed, and what the operator does about it."""

    cause: str
    fix: str


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _client_error(error: ClientError, action: str) -> Failure:
    code = error_code(error)
    if code in ACCESS_DENIED:
        return Failure(
            f"access denied to {action}",
            f"add {action} to the operator's IAM policy ({DOCS}, 'Operator policies')",
        )
    if code in EXPIRED:
        return Failure("the AWS credentials have expired", "refresh them (e.g. `aws sso login`) and retry")
    if code in INVALID_CREDENTIALS:
        return Failure(
            "the AWS credentials are not valid in this partition/region",
            "check AWS_PROFILE / AWS_ACCESS_KEY_ID and that the region is enabled for the account",
        )
    if code in THROTTLED:
        return Failure(f"{action} was throttled after retries", "wait a minute and run the command again")
    return Failure(f"{action} failed: {code}", f"see the AWS error code {code} for {action}")


FAILURES: tuple[tuple[type[BaseException], Callable[[Any, str], Failure]], ...] = (
    (
        NoCredentialsError,
        lambda _e, _a: Failure(
            "no AWS credentials found",
            "set AWS_PROFILE (and run `aws sso login --profile <name>`) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ),
    ),
    (
        PartialCredentialsError,
        lambda _e, _a: Failure(
            "the AWS credentials are incomplete", "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
    ),
    (NoRegionError, lambda _e, _a: Failure("no AWS region configured", REGION_FIX)),
    (RegionMissing, lambda _e, _a: Failure("no AWS region configured", REGION_FIX)),
    (
        EndpointConnectionError,
        lambda e, a: Failure(
            f"cannot reach the endpoint for {a} ({e.kwargs.get('endpoint_url', '?')})",
            "check the network/proxy; if the service is not offered in this region, pick a region that has it",
        ),
    ),
    (
        ConnectTimeoutError,
        lambda _e, a: Failure(f"{a} timed out connecting", "check the network/proxy and retry"),
    ),
    (
        ReadTimeoutError,
        lambda _e, a: Failure(f"{a} did not answer in time", "retry; if it persists, check AWS Health"),
    ),
    (ClientError, _client_error),
    (
        BotoCoreError,
        lambda e, a: Failure(f"{a} failed in the AWS SDK: {type(e).__name__}", "see the message above"),
    ),
)
"""Exception type -> the operator-facing cause and fix (first matching type wins; order matters)."""

AWS_ERRORS = (BotoCoreError, ClientError, RegionMissing)


def classify(error: BaseException, action: str) -> Failure:
    """The cause and fix of an AWS failure, by exception type (ClientError: by its error code)."""
    for kind, describe in FAILURES:
        if isinstance(error, kind):
            return describe(error, action)
    return Failure(f"{action} failed: {type(error).__name__}", "see the message above")


# --- running checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check(Generic[S]):
    """One row of a command's dispatch table: a name, the function and the AWS action it is known by."""

    name: str
    run: Callable[[S], CheckResult]
    action: str = ""


def run_checks(checks: Sequence[Check[S]], state: S, aws: AwsContext | None = None) -> list[CheckResult]:
    """Run every check in order; an AWS exception becomes that check's FAIL with its classified cause,
    naming the action that failed (the last call `aws` recorded during the check)."""
    results: list[CheckResult] = []
    for check in checks:
        started = time.monotonic()
        calls_before = len(aws.calls) if aws else 0
        try:
            result = check.run(state)
        except AWS_ERRORS as error:
            action = aws.calls[-1].action if aws and len(aws.calls) > calls_before else check.action
            failure = classify(error, action or check.name)
            result = CheckResult(check.name, Status.FAIL, failure.cause, failure.fix)
        logger.debug("check %s: %s in %.1f s", check.name, result.status, time.monotonic() - started)
        results.append(result)
    return results


def render_table(results: Iterable[CheckResult]) -> str:
    """The summary table, then one 'what to do' line per failed or flagged check, then the links."""
    rows = list(results)
    width = max([len("check"), *(len(r.name) for r in rows)])
    status_width = max(len(s.value) for s in Status)
    lines = [f"{'check':<{width}}  {'status':<{status_width}}  detail", "-" * (width + status_width + 40)]
    lines += [f"{r.name:<{width}}  {r.status.value:<{status_width}}  {r.detail}" for r in rows]
    todo = [r for r in rows if r.fix and r.status in (Status.FAIL, Status.WARN, Status.NEEDS_VPC)]
    if todo:
        lines += ["", "What to do:"]
        lines += [f"  - {r.name}: {r.fix}" for r in todo]
    links = [r for r in rows if r.link]
    if links:
        lines += ["", "Where to look:"]
        lines += [f"  - {r.name}: {r.link}" for r in links]
    failed = [r.name for r in rows if r.failed]
    lines += ["", f"FAILED: {', '.join(failed)}" if failed else "All checks passed."]
    return "\n".join(lines)


def exit_code(results: Iterable[CheckResult]) -> int:
    return 1 if any(r.failed for r in results) else 0


# --- console links ------------------------------------------------------------------------------------


def console_url(region: str, service: str, fragment: str = "") -> str:
    """A region-aware AWS console link, e.g. console_url('eu-west-1', 'cloudformation', '/stacks')."""
    base = f"https://{region}.console.aws.amazon.com/{service}/home?region={region}"
    return f"{base}#{fragment}" if fragment else base


def stack_console_url(region: str, stack_id: str) -> str:
    from urllib.parse import quote

    return console_url(region, "cloudformation", f"/stacks/stackinfo?stackId={quote(stack_id, safe='')}")


# --- CDK context from the command line ----------------------------------------------------------------


def context_from_args(args: Sequence[str]) -> dict[str, str]:
    """`-c key=value` / `--context key=value` pairs (as `make ... CONTEXT="..."` passes them to cdk)."""
    context: dict[str, str] = {}
    items = list(args)
    for index, item in enumerate(items):
        value: str | None = None
        if item in ("-c", "--context") and index + 1 < len(items):
            value = items[index + 1]
        elif item.startswith("--context="):
            value = item.split("=", 1)[1]
        if value is not None:
            key, separator, setting = value.partition("=")
            if not separator or not key:
                raise ValueError(f"context must look like key=value (got {value!r})")
            context[key] = setting
    return context


def split_context(text: str) -> list[str]:
    """The CONTEXT make variable as arguments."""
    return shlex.split(text)
