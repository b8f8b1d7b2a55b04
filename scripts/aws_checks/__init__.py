"""First-deploy tooling: `make preflight`, `make bootstrap`, `make deploy` (failure reasons), `make verify`.

`ACTIONS` lists, per command, every AWS API action (IAM action name) the command's own code calls. The
operator policy in docs/deploy.md is written from it, and tests/scripts check that every call a command
makes is listed (calls are recorded at the botocore `provide-client-params` event, see `common.AwsContext`).

Calls that need no IAM permission are not AWS actions and are not listed: the Cognito token endpoint
(OAuth client credentials), InvokeAgentRuntime with an OAuth bearer token (the runtime's JWT authorizer
decides, not IAM), the AgentCore tool gateway (also JWT), Langfuse's public API and the chat URL.
"""

from __future__ import annotations

ACTIONS: dict[str, tuple[str, ...]] = {
    "preflight": (
        "sts:GetCallerIdentity",
        "cloudformation:DescribeStacks",
        "ssm:GetParameter",
        "bedrock-agentcore:ListAgentRuntimes",
        "bedrock:GetInferenceProfile",
        "bedrock:GetFoundationModel",
        "bedrock:GetFoundationModelAvailability",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "ec2:DescribeAddresses",
        "servicequotas:GetServiceQuota",
        "servicequotas:GetAWSDefaultServiceQuota",
    ),
    "bootstrap": ("sts:GetCallerIdentity",),
    "deploy": (
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
    ),
    "verify": (
        "cloudformation:DescribeStacks",
        "secretsmanager:GetSecretValue",
        "bedrock:ListIngestionJobs",
    ),
}
"""Command -> the IAM actions its code calls (resource scoping: docs/deploy.md, "Operator policies")."""
