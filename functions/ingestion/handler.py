"""Start a Bedrock Knowledge Base ingestion job when the documents change, and on every deployment.

Two entry points share one algorithm:

- `handle_document_change`: target of the EventBridge rule on the docs bucket ("Object Created" /
  "Object Deleted"). The function runs with reserved concurrency 1; failed invocations are retried by
  Lambda and finally land in the dead-letter queue, so no change is lost.
- `handle_deploy`: the `onEvent` handler of a CloudFormation custom resource whose properties include
  the corpus fingerprint and the data source id, so every deployment that changes the corpus or
  replaces the data source (new chunking strategy) re-ingests.

Bedrock runs one ingestion job per data source at a time; StartIngestionJob answers ConflictException
while one runs. A job that *started after* the change happened will read the changed documents, so the
change is covered and nothing more is needed. Otherwise we wait (bounded by the invocation's remaining
time) for the running job to end and start a new one; if time runs out we raise `IngestionBusyError`
and let Lambda retry the event later.

Only the Python standard library, boto3 and botocore are used (all in the Lambda runtime).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

ENV_KNOWLEDGE_BASE_ID = "KNOWLEDGE_BASE_ID"
ENV_DATA_SOURCE_ID = "DATA_SOURCE_ID"
ENV_DOCS_BUCKET = "DOCS_BUCKET"

DOCUMENT_EVENTS = frozenset({"Object Created", "Object Deleted"})
RUNNING_STATUSES = ("STARTING", "IN_PROGRESS")
# Errors that mean "not now": the caller should retry later rather than give up.
RETRYABLE_ERRORS = frozenset({"ServiceQuotaExceededException", "ThrottlingException"})
DESCRIPTION_LIMIT = 200
DEFAULT_POLL_SECONDS = 20.0
SAFETY_MARGIN_SECONDS = 30.0
MAX_ATTEMPTS = 60


class ConfigurationError(RuntimeError):
    """A required setting (environment variable or resource property) is missing or malformed."""


class InvalidEventError(ValueError):
    """The event is not one this function handles; the message names the offending field."""


class IngestionBusyError(RuntimeError):
    """Another ingestion job is still running and does not cover this change: retry later."""


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Settings:
    """Which knowledge base and data source to ingest, and which bucket's events to accept."""

    knowledge_base_id: str
    data_source_id: str
    docs_bucket: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings from environment variables.

        Raises:
            ConfigurationError: naming every missing variable.
        """
        names = (ENV_KNOWLEDGE_BASE_ID, ENV_DATA_SOURCE_ID, ENV_DOCS_BUCKET)
        missing = [name for name in names if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(env[ENV_KNOWLEDGE_BASE_ID], env[ENV_DATA_SOURCE_ID], env[ENV_DOCS_BUCKET])


@dataclass(frozen=True)
class DocumentChange:
    """One object created or deleted in the docs bucket, as reported by EventBridge."""

    event_id: str
    change: str
    bucket: str
    key: str
    occurred_at: datetime

    @property
    def description(self) -> str:
        return _truncate(f"{self.change}: s3://{self.bucket}/{self.key}")


@dataclass(frozen=True)
class IngestionResult:
    """What happened: a job was started, or a job that started after the change already covers it."""

    status: Literal["started", "covered"]
    ingestion_job_id: str

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "ingestionJobId": self.ingestion_job_id}


def parse_document_change(event: Mapping[str, Any], expected_bucket: str) -> DocumentChange:
    """Validate an EventBridge S3 event and extract the change.

    Args:
        event: the event as delivered by EventBridge.
        expected_bucket: the docs bucket; events about any other bucket are rejected.

    Raises:
        InvalidEventError: naming the missing or unexpected field.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"event must be a JSON object, got {type(event).__name__}")
    if event.get("source") != "aws.s3":
        raise InvalidEventError(f"event field 'source' must be 'aws.s3', got {event.get('source')!r}")
    change = event.get("detail-type")
    if change not in DOCUMENT_EVENTS:
        raise InvalidEventError(
            f"event field 'detail-type' must be one of {sorted(DOCUMENT_EVENTS)}, got {change!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEventError("event field 'detail' is missing or not an object")
    bucket = _nested_text(detail, "bucket", "name")
    key = _nested_text(detail, "object", "key")
    if bucket != expected_bucket:
        raise InvalidEventError(
            f"event field 'detail.bucket.name' is {bucket!r}, expected the docs bucket {expected_bucket!r}"
        )
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEventError("event field 'id' is missing")
    return DocumentChange(event_id, str(change), bucket, key, _parse_time(event.get("time"), "time"))


class IngestionStarter:
    """Starts ingestion jobs for one data source, coalescing with jobs that already cover a change."""

    def __init__(
        self,
        client: Any,
        knowledge_base_id: str,
        data_source_id: str,
        *,
        sleep: Callable[[float], None] | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self._client = client
        self._kb = knowledge_base_id
        self._ds = data_source_id
        self._sleep = sleep or time.sleep
        self._poll_seconds = poll_seconds

    def start(
        self,
        *,
        changed_at: datetime,
        description: str,
        client_token: str,
        remaining_seconds: Callable[[], float],
    ) -> IngestionResult:
        """Make sure an ingestion job that sees the state of `changed_at` runs.

        Args:
            changed_at: when the documents changed; a job started later covers the change.
            description: stored on the job (truncated to the API's 200 characters).
            client_token: idempotency token; a retried call with the same token returns the same job.
            remaining_seconds: time left in this invocation, bounding how long we wait for a running job.

        Raises:
            IngestionBusyError: a job that predates the change is still running when time runs out,
                or the account's concurrent-ingestion quota is exhausted.
            botocore.exceptions.ClientError: any other API error (bad ids, missing permissions).
        """
        for _attempt in range(MAX_ATTEMPTS):
            try:
                response = self._client.start_ingestion_job(
                    knowledgeBaseId=self._kb,
                    dataSourceId=self._ds,
                    clientToken=client_token,
                    description=_truncate(description),
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code in RETRYABLE_ERRORS:
                    raise IngestionBusyError(f"StartIngestionJob answered {code}; retry later") from error
                if code != "ConflictException":
                    raise
            else:
                job_id = str(response["ingestionJob"]["ingestionJobId"])
                logger.info("started ingestion job %s (%s)", job_id, description)
                return IngestionResult("started", job_id)

            running = self._running_jobs()
            covering = [job for job in running if job["startedAt"] > changed_at]
            if covering:
                job_id = str(covering[0]["ingestionJobId"])
                logger.info(
                    "ingestion job %s started after the change at %s; it covers it", job_id, changed_at
                )
                return IngestionResult("covered", job_id)
            if remaining_seconds() < self._poll_seconds + SAFETY_MARGIN_SECONDS:
                ids = ", ".join(str(job["ingestionJobId"]) for job in running) or "unknown"
                raise IngestionBusyError(
                    f"ingestion job(s) {ids} of data source {self._ds} started before the change at "
                    f"{changed_at.isoformat()} and are still running; retry later"
                )
            logger.info(
                "an older ingestion job is running; waiting %.0f s before retrying", self._poll_seconds
            )
            self._sleep(self._poll_seconds)
        raise IngestionBusyError(f"gave up after {MAX_ATTEMPTS} attempts to start an ingestion job")

    def _running_jobs(self) -> list[dict[str, Any]]:
        response = self._client.list_ingestion_jobs(
            knowledgeBaseId=self._kb,
            dataSourceId=self._ds,
            filters=[{"attribute": "STATUS", "operator": "EQ", "values": list(RUNNING_STATUSES)}],
            sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"},
            maxResults=10,
        )
        jobs: list[dict[str, Any]] = response.get("ingestionJobSummaries", [])
        return jobs


def make_client() -> Any:
    """The bedrock-agent client (standard retry mode for throttling)."""
    from botocore.config import Config

    return boto3.client("bedrock-agent", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def handle_document_change(event: Mapping[str, Any], context: LambdaContext) -> dict[str, str]:
    """EventBridge target: a document was created or deleted in the docs bucket.

    Raises:
        ConfigurationError, InvalidEventError: the event goes to the dead-letter queue after Lambda's
            retries, with the reason in the function's log.
        IngestionBusyError: Lambda retries the event later.
    """
    settings = Settings.from_env(os.environ)
    change = parse_document_change(event, settings.docs_bucket)
    starter = IngestionStarter(make_client(), settings.knowledge_base_id, settings.data_source_id)
    result = starter.start(
        changed_at=change.occurred_at,
        description=change.description,
        client_token=_client_token("s3event", change.event_id),
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("document change %s: %s", change.description, result.as_dict())
    return result.as_dict()


def handle_deploy(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """CloudFormation custom resource (CDK provider framework `onEvent`): ingest on deployment.

    Properties: `KnowledgeBaseId`, `DataSourceId` (required) and `CorpusFingerprint` (any change
    triggers an Update, hence a new ingestion). Delete does nothing: the vectors go with the data source.

    Raises:
        InvalidEventError: the request type or a property is missing or unknown.
        IngestionBusyError: an older job kept running for the whole invocation (the deployment fails
            with this message; deploying again retries).
    """
    request_type = event.get("RequestType")
    if request_type not in ("Create", "Update", "Delete"):
        raise InvalidEventError(f"field 'RequestType' must be Create, Update or Delete, got {request_type!r}")
    properties = event.get("ResourceProperties")
    if not isinstance(properties, Mapping):
        raise InvalidEventError("field 'ResourceProperties' is missing or not an object")
    kb = _required_property(properties, "KnowledgeBaseId")
    ds = _required_property(properties, "DataSourceId")
    physical_id = f"{kb}:{ds}"
    if request_type == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    fingerprint = str(properties.get("CorpusFingerprint", "none"))
    request_id = str(event.get("RequestId") or f"{physical_id}:{fingerprint}")
    result = IngestionStarter(make_client(), kb, ds).start(
        changed_at=datetime.now(UTC),
        description=f"Deployment ({request_type}) with corpus {fingerprint}",
        client_token=_client_token("deploy", request_id),
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("deployment %s: %s", request_type, result.as_dict())
    return {
        "PhysicalResourceId": physical_id,
        "Data": {"IngestionJobId": result.ingestion_job_id, "Status": result.status},
    }


def _client_token(kind: str, unique: str) -> str:
    # The API wants 33-256 characters of [a-zA-Z0-9] joined by dashes; a digest always fits.
    return f"{kind}-{hashlib.sha256(unique.encode('utf-8')).hexdigest()[:40]}"


def _truncate(text: str) -> str:
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 3] + "..."


def _nested_text(detail: Mapping[str, Any], outer: str, inner: str) -> str:
    container = detail.get(outer)
    value = container.get(inner) if isinstance(container, Mapping) else None
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"event field 'detail.{outer}.{inner}' is missing or empty")
    return value


def _required_property(properties: Mapping[str, Any], name: str) -> str:
    value = properties.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(f"resource property {name!r} is missing or empty")
    return value


def _parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidEventError(f"event field {field!r} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEventError(f"event field {field!r} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidEventError(f"event field {field!r} has no time zone: {value!r}")
    return parsed
