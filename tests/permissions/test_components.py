"""Every AWS call each runtime component makes in its real code is allowed by its synthesized role,
including the KMS use its encrypted resources imply (tests/permissions/actions.py KMS_RULES)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.permissions.checker import Checker, Report
from tests.permissions.components import COMPONENTS, Component
from tests.permissions.platform import ecs_secrets, lambda_dead_letters
from tests.permissions.run import run_component

# What each component must at least call, so a driver that silently stops exercising the code fails.
EXPECTED = {
    "agent": {
        ("secretsmanager", "GetSecretValue"),
        ("bedrock-runtime", "ApplyGuardrail"),
        ("bedrock-agentcore", "ListEvents"),
        ("bedrock-agentcore", "RetrieveMemoryRecords"),
        ("bedrock-agentcore", "CreateEvent"),
    },
    "tickets": {("dynamodb", "PutItem"), ("dynamodb", "GetItem"), ("dynamodb", "Query")},
    "knowledge": {("bedrock-agent-runtime", "Retrieve")},
    "interceptor": set(),
    "ingest-on-change": {("bedrock-agent", "StartIngestionJob"), ("bedrock-agent", "ListIngestionJobs")},
    "ingest-on-deploy": {("bedrock-agent", "StartIngestionJob")},
    "gateway-bootstrap": {("secretsmanager", "GetSecretValue"), ("secretsmanager", "PutSecretValue")},
    "chat": set(),
    "evaluation": {("secretsmanager", "GetSecretValue"), ("s3", "PutObject")},
}


def explain(checker: Checker, report: Report) -> str:
    lines = [f"{report.component} (role {report.role.stack}/{report.role.logical_id}) lacks:"]
    lines += [f"  - {finding.describe(checker)}" for finding in report.denied]
    return "\n".join(lines)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_every_recorded_call_is_allowed(checker: Checker, component: Component, tmp_path: Path) -> None:
    run = run_component(checker, component, tmp_path)
    assert EXPECTED[component.name] <= {(c.service, c.operation) for c in run.calls}
    assert run.report.denied == [], explain(checker, run.report)


def test_lambda_dead_letter_queues_are_writable_by_their_functions(checker: Checker) -> None:
    reports = [checker.check(p.name, p.role, p.calls) for p in lambda_dead_letters(checker)]
    assert reports, "the ingestion function has a dead-letter queue"
    assert [r for r in reports if r.denied] == [], "\n".join(explain(checker, r) for r in reports if r.denied)


def test_ecs_secrets_are_readable_by_their_task_execution_roles(checker: Checker) -> None:
    reports = [checker.check(p.name, p.role, p.calls) for p in ecs_secrets(checker)]
    assert len(reports) >= 3, "chat, evaluation and gateway tasks take ECS secrets"
    assert [r for r in reports if r.denied] == [], "\n".join(explain(checker, r) for r in reports if r.denied)


def test_docs_permissions_table_is_current(checker: Checker) -> None:
    from tests.permissions.table import DOC, generated_block, splice

    document = DOC.read_text(encoding="utf-8")
    assert splice(document, generated_block(checker)) == document, (
        "docs/permissions.md is stale: run `.venv/bin/python -m tests.permissions.table --write`"
    )
