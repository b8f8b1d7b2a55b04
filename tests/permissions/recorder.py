"""Record every AWS API call a component makes, at the one place all boto3/botocore clients pass through.

`BaseClient._make_api_call` (botocore/client.py at the pinned botocore) receives the operation name and the
caller's parameters for every client and resource call, whoever created the client (boto3, the
bedrock-agentcore SDK's MemoryClient, ...). The recorder wraps it: it records (service, operation, params),
then either answers from a registered stand-in or lets the call continue to moto.

Stand-ins validate the request against the operation's input shape exactly as botocore's `Stubber` does
(`botocore.validate.validate_parameters`), so a malformed request fails the test, and return a canned
response the test chose. Nothing leaves the machine: moto (or a stand-in) answers everything, and a call
that neither answers raises `UnexpectedCallError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.client
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

logger = logging.getLogger(__name__)

# Services moto answers for these tests; every other call needs a stand-in.
MOTO_SERVICES = frozenset({"dynamodb", "s3", "sts", "sqs"})


class UnexpectedCallError(AssertionError):
    """A call to a service neither moto (MOTO_SERVICES) nor a registered stand-in answers."""


@dataclass(frozen=True)
class Call:
    """One recorded SDK call."""

    service: str  # botocore service name, e.g. "bedrock-runtime"
    operation: str  # e.g. "ApplyGuardrail"
    params: Mapping[str, Any]
    region: str | None


Answer = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass
class Recorder:
    """Collects calls; `answer(service, operation, fn)` registers a stand-in response."""

    calls: list[Call] = field(default_factory=list)
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    paused: bool = False

    @contextlib.contextmanager
    def setup(self) -> Iterator[None]:
        """Calls made inside the block are test set-up (creating moto resources): not recorded."""
        self.paused = True
        try:
            yield
        finally:
            self.paused = False

    def answer(self, service: str, operation: str, fn: Answer | Mapping[str, Any]) -> None:
        if callable(fn):
            self.answers[(service, operation)] = fn
            return
        fixed = dict(fn)

        def answer_fixed(_params: Mapping[str, Any]) -> Mapping[str, Any]:
            return fixed

        self.answers[(service, operation)] = answer_fixed

    def error(self, service: str, operation: str, code: str, message: str = "") -> None:
        """Answer with a service error (a ClientError carrying `code`, as the real service would)."""

        def raise_error(_params: Mapping[str, Any]) -> Mapping[str, Any]:
            raise ClientError({"Error": {"Code": code, "Message": message or code}}, operation)

        self.answers[(service, operation)] = raise_error

    def operations(self) -> list[tuple[str, str]]:
        return [(c.service, c.operation) for c in self.calls]


_active: list[Recorder] = []
_original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 (private; no stub)


def _recording_make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if not _active:
        return _original(self, operation_name, api_params)
    recorder = _active[-1]
    if recorder.paused:
        return _original(self, operation_name, api_params)
    service = self.meta.service_model.service_name
    recorder.calls.append(Call(service, operation_name, dict(api_params), self.meta.region_name))
    answer = recorder.answers.get((service, operation_name))
    if answer is None:
        if service not in MOTO_SERVICES:
            raise UnexpectedCallError(
                f"{service}.{operation_name} has no stand-in and moto does not answer it in these tests"
            )
        return _original(self, operation_name, api_params)
    operation = self.meta.service_model.operation_model(operation_name)
    validate_parameters(api_params, operation.input_shape)
    try:
        return dict(answer(api_params))
    except ClientError as error:
        # Re-raise as the client's modeled exception class, as botocore does for a real error response.
        code = error.response["Error"]["Code"]
        raise self.exceptions.from_code(code)(error.response, operation_name) from None


@contextlib.contextmanager
def recording(recorder: Recorder | None = None) -> Iterator[Recorder]:
    """Record (and answer) every botocore call made inside the block."""
    recorder = recorder or Recorder()
    if not _active:
        setattr(botocore.client.BaseClient, "_make_api_call", _recording_make_api_call)  # noqa: B010
    _active.append(recorder)
    try:
        yield recorder
    finally:
        _active.pop()
        if not _active:
            setattr(botocore.client.BaseClient, "_make_api_call", _original)  # noqa: B010


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` set in os.environ for the block, the previous values restored after it."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def offline_aws(region: str) -> Iterator[None]:
    """Fake credentials, a fixed region and no instance metadata: nothing can reach a real endpoint."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with environment(values):
        yield
