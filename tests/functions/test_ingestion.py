"""Ingestion Lambda: the real handler code against a botocore Stubber asserting the exact requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.ingestion import handler

KB = "KBID123456"
DS = "DSID123456"
BUCKET = "aaf-docs-bucket"
EVENT_ID = "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
CHANGED_AT = datetime(2026, 11, 24, 1, 0, 0, tzinfo=UTC)


@dataclass
class Context:
    """What Lambda passes as `context` (only the part the handler uses)."""

    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def client() -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "bedrock-agent", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    monkeypatch.setenv("KNOWLEDGE_BASE_ID", KB)
    monkeypatch.setenv("DATA_SOURCE_ID", DS)
    monkeypatch.setenv("DOCS_BUCKET", BUCKET)
    monkeypatch.setattr(handler, "make_client", lambda: client)


def s3_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "0",
        "id": EVENT_ID,
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-24T01:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": "sample-corpus/router-x200-user-manual.pdf", "size": 9044},
            "reason": "PutObject",
        },
    }
    event.update(overrides)
    return event


def started(job_id: str = "JOB0000001") -> dict[str, Any]:
    return {
        "ingestionJob": {
            "knowledgeBaseId": KB,
            "dataSourceId": DS,
            "ingestionJobId": job_id,
            "status": "STARTING",
            "startedAt": CHANGED_AT + timedelta(seconds=5),
            "updatedAt": CHANGED_AT + timedelta(seconds=5),
        }
    }


def running(job_id: str, started_at: datetime) -> dict[str, Any]:
    return {
        "ingestionJobSummaries": [
            {
                "knowledgeBaseId": KB,
                "dataSourceId": DS,
                "ingestionJobId": job_id,
                "status": "IN_PROGRESS",
                "startedAt": started_at,
                "updatedAt": started_at,
            }
        ]
    }


def start_request(description: str, token: str) -> dict[str, Any]:
    return {"knowledgeBaseId": KB, "dataSourceId": DS, "clientToken": token, "description": description}


LIST_RUNNING_REQUEST = {
    "knowledgeBaseId": KB,
    "dataSourceId": DS,
    "filters": [{"attribute": "STATUS", "operator": "EQ", "values": ["STARTING", "IN_PROGRESS"]}],
    "sortBy": {"attribute": "STARTED_AT", "order": "DESCENDING"},
    "maxResults": 10,
}
EVENT_DESCRIPTION = f"Object Created: s3://{BUCKET}/sample-corpus/router-x200-user-manual.pdf"


def event_token() -> str:
    return handler._client_token("s3event", EVENT_ID)


def conflict(stubber: Stubber, description: str, token: str) -> None:
    stubber.add_client_error(
        "start_ingestion_job",
        service_error_code="ConflictException",
        service_message="An ingestion job is already running for this data source",
        http_status_code=409,
        expected_params=start_request(description, token),
    )


def starter(client: Any, sleeps: list[float] | None = None) -> handler.IngestionStarter:
    recorded = sleeps if sleeps is not None else []
    return handler.IngestionStarter(client, KB, DS, sleep=recorded.append, poll_seconds=20)


# --- document changes (EventBridge) -------------------------------------------------------------


def test_document_change_starts_an_ingestion_job_with_the_exact_request(
    environment: None, stubber: Stubber
) -> None:
    stubber.add_response("start_ingestion_job", started(), start_request(EVENT_DESCRIPTION, event_token()))
    result = handler.handle_document_change(s3_event(), Context())
    assert result == {"status": "started", "ingestionJobId": "JOB0000001"}


def test_client_token_is_stable_per_event_so_retries_are_idempotent() -> None:
    token = event_token()
    assert token == handler._client_token("s3event", EVENT_ID)
    assert token != handler._client_token("s3event", "another-event")
    assert 33 <= len(token) <= 256 and token.replace("-", "").isalnum()


def test_deleted_document_also_starts_ingestion(environment: None, stubber: Stubber) -> None:
    description = f"Object Deleted: s3://{BUCKET}/sample-corpus/router-x200-user-manual.pdf"
    stubber.add_response("start_ingestion_job", started(), start_request(description, event_token()))
    result = handler.handle_document_change(s3_event(**{"detail-type": "Object Deleted"}), Context())
    assert result["status"] == "started"


def test_running_job_that_started_after_the_change_covers_it(environment: None, stubber: Stubber) -> None:
    conflict(stubber, EVENT_DESCRIPTION, event_token())
    stubber.add_response(
        "list_ingestion_jobs", running("JOBNEWER01", CHANGED_AT + timedelta(seconds=3)), LIST_RUNNING_REQUEST
    )
    result = handler.handle_document_change(s3_event(), Context())
    assert result == {"status": "covered", "ingestionJobId": "JOBNEWER01"}


def test_older_running_job_is_waited_for_then_a_new_job_starts(client: Any, stubber: Stubber) -> None:
    conflict(stubber, "change", "token-" + "a" * 40)
    stubber.add_response("list_ingestion_jobs", running("JOBOLDER01", CHANGED_AT - timedelta(minutes=1)))
    stubber.add_response(
        "start_ingestion_job", started("JOB0000002"), start_request("change", "token-" + "a" * 40)
    )
    sleeps: list[float] = []
    result = starter(client, sleeps).start(
        changed_at=CHANGED_AT,
        description="change",
        client_token="token-" + "a" * 40,
        remaining_seconds=lambda: 300,
    )
    assert result == handler.IngestionResult("started", "JOB0000002")
    assert sleeps == [20]


def test_older_running_job_and_no_time_left_raises_busy_naming_the_job(client: Any, stubber: Stubber) -> None:
    conflict(stubber, "change", "token-" + "b" * 40)
    stubber.add_response("list_ingestion_jobs", running("JOBOLDER02", CHANGED_AT - timedelta(minutes=1)))
    with pytest.raises(handler.IngestionBusyError, match=r"JOBOLDER02 .* still running; retry later"):
        starter(client).start(
            changed_at=CHANGED_AT,
            description="change",
            client_token="token-" + "b" * 40,
            remaining_seconds=lambda: 40,
        )


def test_account_quota_exhausted_is_retryable(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error(
        "start_ingestion_job", service_error_code="ServiceQuotaExceededException", http_status_code=402
    )
    with pytest.raises(handler.IngestionBusyError, match="ServiceQuotaExceededException"):
        starter(client).start(
            changed_at=CHANGED_AT,
            description="change",
            client_token="token-" + "c" * 40,
            remaining_seconds=lambda: 300,
        )


def test_access_denied_is_not_retried_and_surfaces(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error(
        "start_ingestion_job", service_error_code="AccessDeniedException", http_status_code=403
    )
    with pytest.raises(ClientError, match="AccessDeniedException"):
        starter(client).start(
            changed_at=CHANGED_AT,
            description="change",
            client_token="token-" + "d" * 40,
            remaining_seconds=lambda: 300,
        )


def test_long_descriptions_are_truncated_to_the_api_limit(client: Any, stubber: Stubber) -> None:
    long = "x" * 500
    stubber.add_response(
        "start_ingestion_job", started(), start_request("x" * 197 + "...", "token-" + "e" * 40)
    )
    starter(client).start(
        changed_at=CHANGED_AT,
        description=long,
        client_token="token-" + "e" * 40,
        remaining_seconds=lambda: 300,
    )


# --- bad events and configuration ----------------------------------------------------------------


def test_missing_environment_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KNOWLEDGE_BASE_ID", "DATA_SOURCE_ID", "DOCS_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_SOURCE_ID", DS)
    with pytest.raises(handler.ConfigurationError, match="KNOWLEDGE_BASE_ID, DOCS_BUCKET"):
        handler.handle_document_change(s3_event(), Context())


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (s3_event(source="aws.ec2"), "'source' must be 'aws.s3'"),
        (s3_event(**{"detail-type": "Object Restore Completed"}), "'detail-type' must be one of"),
        (s3_event(detail="oops"), "'detail' is missing or not an object"),
        (s3_event(detail={"bucket": {"name": BUCKET}}), r"'detail\.object\.key' is missing"),
        (
            s3_event(detail={"bucket": {"name": "someone-else"}, "object": {"key": "a.md"}}),
            "expected the docs bucket 'aaf-docs-bucket'",
        ),
        (s3_event(time="yesterday"), "'time' is not an ISO 8601 time"),
        (s3_event(time="2026-11-24T01:00:00"), "'time' has no time zone"),
        (s3_event(id=""), "'id' is missing"),
    ],
)
def test_bad_events_are_rejected_with_the_field_named(
    environment: None, stubber: Stubber, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(handler.InvalidEventError, match=message):
        handler.handle_document_change(event, Context())


def test_non_object_event_is_rejected(environment: None) -> None:
    with pytest.raises(handler.InvalidEventError, match="must be a JSON object, got list"):
        handler.handle_document_change([], Context())  # type: ignore[arg-type]


# --- deployments (CloudFormation custom resource) ------------------------------------------------


def deploy_event(request_type: str = "Create", **properties: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "RequestId": "5d4f4a2c-1111-2222-3333-444455556666",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "KnowledgeBaseId": KB,
            "DataSourceId": DS,
            "CorpusFingerprint": "c1824ddd120bcc38",
            **properties,
        },
    }


def test_deploy_create_starts_ingestion_and_reports_the_job(
    monkeypatch: pytest.MonkeyPatch, client: Any, stubber: Stubber
) -> None:
    monkeypatch.setattr(handler, "make_client", lambda: client)
    token = handler._client_token("deploy", "5d4f4a2c-1111-2222-3333-444455556666")
    stubber.add_response(
        "start_ingestion_job",
        started(),
        start_request("Deployment (Create) with corpus c1824ddd120bcc38", token),
    )
    response = handler.handle_deploy(deploy_event(), Context())
    assert response == {
        "PhysicalResourceId": f"{KB}:{DS}",
        "Data": {"IngestionJobId": "JOB0000001", "Status": "started"},
    }


def test_deploy_update_waits_for_a_job_started_before_the_deployment(
    monkeypatch: pytest.MonkeyPatch, client: Any, stubber: Stubber
) -> None:
    monkeypatch.setattr(handler, "make_client", lambda: client)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    token = handler._client_token("deploy", "5d4f4a2c-1111-2222-3333-444455556666")
    description = "Deployment (Update) with corpus c1824ddd120bcc38"
    conflict(stubber, description, token)
    stubber.add_response(
        "list_ingestion_jobs", running("JOBUPLOAD1", datetime.now(UTC) - timedelta(seconds=30))
    )
    stubber.add_response("start_ingestion_job", started("JOB0000003"), start_request(description, token))
    response = handler.handle_deploy(deploy_event("Update"), Context())
    assert response["Data"] == {"IngestionJobId": "JOB0000003", "Status": "started"}


def test_deploy_delete_calls_nothing(monkeypatch: pytest.MonkeyPatch, client: Any, stubber: Stubber) -> None:
    monkeypatch.setattr(handler, "make_client", lambda: client)
    event = {**deploy_event("Delete"), "PhysicalResourceId": f"{KB}:{DS}"}
    assert handler.handle_deploy(event, Context()) == {"PhysicalResourceId": f"{KB}:{DS}"}


def test_deploy_without_data_source_names_the_property() -> None:
    with pytest.raises(handler.InvalidEventError, match="'DataSourceId' is missing"):
        handler.handle_deploy(deploy_event(DataSourceId=""), Context())


def test_deploy_with_unknown_request_type_is_rejected() -> None:
    with pytest.raises(handler.InvalidEventError, match="'RequestType' must be Create, Update or Delete"):
        handler.handle_deploy(deploy_event("Upsert"), Context())


def test_real_client_factory_builds_a_bedrock_agent_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = handler.make_client()
    assert client.meta.service_model.service_name == "bedrock-agent"
    assert client.meta.config.retries["mode"] == "standard"
