"""From a recorded SDK call to what IAM authorizes: the action, the resource ARN, and implied KMS use.

Three tables, each row with its source:

- `IAM_PREFIX`: botocore service name -> IAM service prefix. The signing name is not always the prefix
  (bedrock-runtime, bedrock-agent and bedrock-agent-runtime sign as `bedrock` and authorize as `bedrock:`;
  bedrock-agentcore signs and authorizes as `bedrock-agentcore:`).
- `ACTION_EXCEPTIONS`: operations whose IAM action is not `<prefix>:<OperationName>`. For every other
  operation we call, the Service Authorization Reference lists an action of the same name.
- `RESOURCES`: (service, operation) -> the ARN of the resource the action is authorized on, built from
  the request parameters (same shapes as tests/permissions/resolver.py).

`KMS_RULES` lists the KMS permissions an encrypted resource implies for the CALLER, with the doc page.
An operation or service missing from these tables raises `UnknownCallError`: a new call must be added
(with its source) before the permission test passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.permissions.resolver import ACCOUNT, PARTITION, REGION

SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference"


class UnknownCallError(KeyError):
    """A recorded call whose IAM action, resource or service is not in these tables."""


@dataclass(frozen=True)
class Prefix:
    prefix: str
    source: str


IAM_PREFIX: dict[str, Prefix] = {
    "secretsmanager": Prefix("secretsmanager", f"{SAR}/list_awssecretsmanager.html"),
    "dynamodb": Prefix("dynamodb", f"{SAR}/list_amazondynamodb.html"),
    "s3": Prefix("s3", f"{SAR}/list_amazons3.html"),
    "sqs": Prefix("sqs", f"{SAR}/list_amazonsqs.html"),
    "kms": Prefix("kms", f"{SAR}/list_awskeymanagementservice.html"),
    "cognito-idp": Prefix("cognito-idp", f"{SAR}/list_amazoncognitouserpools.html"),
    "cloudformation": Prefix("cloudformation", f"{SAR}/list_awscloudformation.html"),
    # Bedrock's runtime, agent and agent-runtime APIs all authorize as `bedrock:` (signing name bedrock).
    "bedrock-runtime": Prefix("bedrock", f"{SAR}/list_amazonbedrock.html"),
    "bedrock-agent": Prefix("bedrock", f"{SAR}/list_amazonbedrock.html"),
    "bedrock-agent-runtime": Prefix("bedrock", f"{SAR}/list_amazonbedrock.html"),
    "bedrock-agentcore": Prefix("bedrock-agentcore", f"{SAR}/list_amazonbedrockagentcore.html"),
    "bedrock-agentcore-control": Prefix("bedrock-agentcore", f"{SAR}/list_amazonbedrockagentcore.html"),
}

# (service, operation) -> IAM action, where the action name differs from the operation name.
ACTION_EXCEPTIONS: dict[tuple[str, str], tuple[str, str]] = {
    # S3: "Actions defined by Amazon S3" maps these operations to the object/bucket actions.
    ("s3", "ListObjectsV2"): ("s3:ListBucket", f"{SAR}/list_amazons3.html"),
    ("s3", "HeadObject"): ("s3:GetObject", f"{SAR}/list_amazons3.html"),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject", f"{SAR}/list_amazons3.html"),
    ("s3", "UploadPart"): ("s3:PutObject", f"{SAR}/list_amazons3.html"),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject", f"{SAR}/list_amazons3.html"),
    # AgentCore Memory: the SDK's retrieve_memories calls RetrieveMemoryRecords (same name in IAM).
}

# Operations that need no permission at all (they are authorized for every principal).
UNAUTHORIZED_OPERATIONS: dict[tuple[str, str], str] = {
    (
        "sts",
        "GetCallerIdentity",
    ): "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html",
}


def iam_action(service: str, operation: str) -> str:
    if (service, operation) in ACTION_EXCEPTIONS:
        return ACTION_EXCEPTIONS[(service, operation)][0]
    if service not in IAM_PREFIX:
        raise UnknownCallError(
            f"service {service!r} has no IAM prefix in tests/permissions/actions.py IAM_PREFIX"
        )
    return f"{IAM_PREFIX[service].prefix}:{operation}"


def _arn(service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{resource}"


def _secret(params: Mapping[str, Any]) -> str:
    secret_id = str(params["SecretId"])
    if not secret_id.startswith("arn:"):
        # A name matches only `secret:<name>-??????` patterns; our code passes ARNs, so flag names loudly.
        raise UnknownCallError(f"SecretId {secret_id!r} is a name: the permission check needs the secret ARN")
    return secret_id


def _table(params: Mapping[str, Any]) -> str:
    table = _arn("dynamodb", f"table/{params['TableName']}")
    return f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table


def _kb(params: Mapping[str, Any]) -> str:
    return _arn("bedrock", f"knowledge-base/{params['knowledgeBaseId']}")


def _memory(params: Mapping[str, Any]) -> str:
    return _arn("bedrock-agentcore", f"memory/{params['memoryId']}")


def _guardrail(params: Mapping[str, Any]) -> str:
    identifier = str(params["guardrailIdentifier"])
    return identifier if identifier.startswith("arn:") else _arn("bedrock", f"guardrail/{identifier}")


def _object(params: Mapping[str, Any]) -> str:
    return f"arn:{PARTITION}:s3:::{params['Bucket']}/{params['Key']}"


def _bucket(params: Mapping[str, Any]) -> str:
    return f"arn:{PARTITION}:s3:::{params['Bucket']}"


def _user_pool(params: Mapping[str, Any]) -> str:
    return _arn("cognito-idp", f"userpool/{params['UserPoolId']}")


def _stack(params: Mapping[str, Any]) -> str:
    return _arn("cloudformation", f"stack/{params['StackName']}/*")


def _queue(params: Mapping[str, Any]) -> str:
    name = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    return _arn("sqs", name)


ResourceOf = Callable[[Mapping[str, Any]], str]

RESOURCES: dict[tuple[str, str], ResourceOf] = {
    ("secretsmanager", "GetSecretValue"): _secret,
    ("secretsmanager", "DescribeSecret"): _secret,
    ("secretsmanager", "PutSecretValue"): _secret,
    ("dynamodb", "GetItem"): _table,
    ("dynamodb", "PutItem"): _table,
    ("dynamodb", "UpdateItem"): _table,
    ("dynamodb", "DeleteItem"): _table,
    ("dynamodb", "Query"): _table,
    ("bedrock-runtime", "ApplyGuardrail"): _guardrail,
    ("bedrock-agent-runtime", "Retrieve"): _kb,
    ("bedrock-agent", "StartIngestionJob"): _kb,
    ("bedrock-agent", "ListIngestionJobs"): _kb,
    ("bedrock-agent", "GetIngestionJob"): _kb,
    ("bedrock-agentcore", "CreateEvent"): _memory,
    ("bedrock-agentcore", "ListEvents"): _memory,
    ("bedrock-agentcore", "GetEvent"): _memory,
    ("bedrock-agentcore", "RetrieveMemoryRecords"): _memory,
    ("bedrock-agentcore", "ListMemoryRecords"): _memory,
    ("bedrock-agentcore", "InvokeAgentRuntime"): lambda p: str(p["agentRuntimeArn"]),
    ("s3", "PutObject"): _object,
    ("s3", "GetObject"): _object,
    ("s3", "HeadObject"): _object,
    ("s3", "CreateMultipartUpload"): _object,
    ("s3", "UploadPart"): _object,
    ("s3", "CompleteMultipartUpload"): _object,
    ("s3", "ListObjectsV2"): _bucket,
    ("cognito-idp", "DescribeUserPoolClient"): _user_pool,
    ("cognito-idp", "UpdateUserPoolClient"): _user_pool,
    ("cloudformation", "DescribeStacks"): _stack,
    ("sqs", "SendMessage"): _queue,
}


def resource_arn(service: str, operation: str, params: Mapping[str, Any]) -> str:
    if (service, operation) not in RESOURCES:
        raise UnknownCallError(
            f"{service}.{operation} has no resource rule in tests/permissions/actions.py RESOURCES"
        )
    return RESOURCES[(service, operation)](params)


# --- implied KMS permissions ------------------------------------------------------------------------


@dataclass(frozen=True)
class KmsRule:
    """A call on a resource of `resource_type` encrypted with a customer-managed key implies these KMS
    actions for the caller, through `via_service` (the kms:ViaService value)."""

    rule_id: str
    resource_type: str
    key_property: str  # property of the resource holding the key (ARN or id), dotted path
    operations: Mapping[tuple[str, str], tuple[str, ...]]  # (service, operation) -> KMS actions
    via_service: str  # "<service>" -> "<service>.<region>.amazonaws.com"
    source: str
    note: str = ""


KMS_RULES: tuple[KmsRule, ...] = (
    KmsRule(
        "guardrail-cmk",
        "AWS::Bedrock::Guardrail",
        "KmsKeyArn",
        {("bedrock-runtime", "ApplyGuardrail"): ("kms:Decrypt",)},
        "bedrock",
        "https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-kms.html",
        "'PermissionsForGuardrailsUsers': the role that applies the guardrail needs kms:Decrypt on its key.",
    ),
    KmsRule(
        "secret-cmk",
        "AWS::SecretsManager::Secret",
        "KmsKeyId",
        {
            ("secretsmanager", "GetSecretValue"): ("kms:Decrypt",),
            ("secretsmanager", "PutSecretValue"): ("kms:GenerateDataKey",),
        },
        "secretsmanager",
        "https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html#security-encryption-authz",
        "Secrets Manager calls GenerateDataKey (new value) and Decrypt (read) on behalf of the caller.",
    ),
    KmsRule(
        "dynamodb-cmk",
        "AWS::DynamoDB::Table",
        "SSESpecification.KMSMasterKeyId",
        {
            ("dynamodb", "GetItem"): ("kms:Decrypt",),
            ("dynamodb", "PutItem"): ("kms:Decrypt",),
            ("dynamodb", "UpdateItem"): ("kms:Decrypt",),
            ("dynamodb", "Query"): ("kms:Decrypt",),
        },
        "dynamodb",
        "https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz",
        "DynamoDB decrypts the table key with kms:Decrypt on the caller's behalf when it is not cached.",
    ),
    KmsRule(
        "s3-sse-kms",
        "AWS::S3::Bucket",
        "BucketEncryption.ServerSideEncryptionConfiguration.0.ServerSideEncryptionByDefault.KMSMasterKeyID",
        {
            ("s3", "PutObject"): ("kms:GenerateDataKey",),
            ("s3", "GetObject"): ("kms:Decrypt",),
            ("s3", "CreateMultipartUpload"): ("kms:GenerateDataKey", "kms:Decrypt"),
        },
        "s3",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms",
        "PutObject needs kms:GenerateDataKey, GetObject kms:Decrypt, multipart uploads both.",
    ),
    KmsRule(
        "sqs-sse-kms",
        "AWS::SQS::Queue",
        "KmsMasterKeyId",
        {("sqs", "SendMessage"): ("kms:GenerateDataKey", "kms:Decrypt")},
        "sqs",
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html#send-to-encrypted-queue",
        "A producer of an encrypted queue needs kms:GenerateDataKey and kms:Decrypt.",
    ),
    KmsRule(
        "memory-cmk",
        "AWS::BedrockAgentCore::Memory",
        "EncryptionKeyArn",
        {},  # no caller-side KMS documented: see note
        "bedrock-agentcore",
        "none found (AgentCore Memory docs describe no caller-side KMS permission)",
        "The Memory L2 grants the key to the memory's execution role (MemoryExecutionRoleArn), not the "
        "caller; whether CreateEvent/ListEvents/RetrieveMemoryRecords also need the caller's kms:Decrypt/"
        "GenerateDataKey is UNVERIFIED: a `make verify` item.",
    ),
)


def kms_rule_for(resource_type: str) -> KmsRule | None:
    return next((rule for rule in KMS_RULES if rule.resource_type == resource_type), None)
