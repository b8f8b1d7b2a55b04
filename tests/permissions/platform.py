"""Calls AWS services make with OUR roles because of how the template configures them (no code of ours
runs them, so the recorder cannot see them): derived from the template and checked the same way.

- A Lambda function's dead-letter queue: Lambda sends the failed event with the function's execution
  role (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq:
  "the function's execution role needs sqs:SendMessage"), plus the queue key's KMS actions.
- An ECS container's `Secrets`: the task's EXECUTION role reads each Secrets Manager secret at task start
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html,
  "Required IAM permissions": secretsmanager:GetSecretValue, and kms:Decrypt for a customer-managed key).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.permissions.checker import Checker
from tests.permissions.recorder import Call
from tests.permissions.resolver import REGION, ResourceRef

LAMBDA_DLQ_SOURCE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq"
)
ECS_SECRETS_SOURCE = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html"
)


@dataclass(frozen=True)
class PlatformCalls:
    name: str  # e.g. "lambda-dlq aaf-knowledge-base/IngestOnDocumentChange2DD7385A"
    role: ResourceRef
    calls: tuple[Call, ...]
    source: str


def lambda_dead_letters(checker: Checker) -> list[PlatformCalls]:
    found = []
    resolver = checker.resolver
    for function in checker.assembly.resources("AWS::Lambda::Function"):
        target = (function.properties.get("DeadLetterConfig") or {}).get("TargetArn")
        if target is None:
            continue
        arn = resolver.resolve(function.stack, target)
        queue = next(
            (q for q in checker.assembly.resources("AWS::SQS::Queue") if resolver.get_att(q, "Arn") == arn),
            None,
        )
        if queue is None:
            raise LookupError(
                f"{function.stack}/{function.logical_id}: dead-letter target {arn} is not an SQS queue of the assembly"
            )
        role = checker.role_by_arn(function.stack, function.properties["Role"])
        call = Call("sqs", "SendMessage", {"QueueUrl": resolver.ref(queue), "MessageBody": "{}"}, REGION)
        found.append(
            PlatformCalls(
                f"lambda-dlq {function.stack}/{function.logical_id}", role, (call,), LAMBDA_DLQ_SOURCE
            )
        )
    return found


def ecs_secrets(checker: Checker) -> list[PlatformCalls]:
    found = []
    resolver = checker.resolver
    for task in checker.assembly.resources("AWS::ECS::TaskDefinition"):
        calls = []
        for container in task.properties.get("ContainerDefinitions") or []:
            for secret in container.get("Secrets") or []:
                value = str(resolver.resolve(task.stack, secret["ValueFrom"]))
                if not value.startswith("arn:aws:secretsmanager:"):
                    raise LookupError(
                        f"{task.stack}/{task.logical_id}: secret ValueFrom {value!r} is not a Secrets Manager ARN"
                    )
                # ValueFrom is <secret ARN>[:json-key:version-stage:version-id]; the ARN has 7 fields.
                calls.append(
                    Call(
                        "secretsmanager",
                        "GetSecretValue",
                        {"SecretId": ":".join(value.split(":")[:7])},
                        REGION,
                    )
                )
        if calls:
            role = checker.role_by_arn(task.stack, task.properties["ExecutionRoleArn"])
            found.append(
                PlatformCalls(
                    f"ecs-secrets {task.stack}/{task.logical_id}", role, tuple(calls), ECS_SECRETS_SOURCE
                )
            )
    return found


def platform_calls(checker: Checker) -> list[PlatformCalls]:
    return lambda_dead_letters(checker) + ecs_secrets(checker)
