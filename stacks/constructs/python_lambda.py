"""A Python Lambda of this repository: `functions/<name>/` packaged with the shared modules it imports.

`PythonLambda` is every first-party function of the foundation: Python 3.14 on arm64, an encrypted log
group with bounded retention, an explicit least-privilege role (no AWS managed policy), code packaged by
`stacks.constructs.packaging` (one path, no Docker, no temporary folders: the handler folder plus the
first-party modules it imports, found by following its import statements; `functions/<name>/
requirements.txt`, when present, installed for the Lambda platform), optional VPC placement, reserved
concurrency and environment encryption, and the cdk-nag acknowledgements that follow from those choices.

Layout and logical ids: the function is the construct's "Default" child, and its log group and role are
created beside the construct as `<id>Logs` and `<id>Role` (the names every stack used before), so an
existing deployment keeps its function, log group and role (CDK hides "Default" from logical ids:
aws-cdk-lib core/lib/private/uniqueid.ts, HIDDEN_ID).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.base import retention
from stacks.constructs import BuildingBlock
from stacks.constructs.packaging import LAMBDA_RUNTIME, REPO_ROOT, Bundle, import_closure, lambda_code

logger = logging.getLogger(__name__)

# Lambda attaches to a VPC through network interfaces it manages with the execution role; these actions
# have no resource-level permissions (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html,
# "Required IAM permissions"; the same actions as AWSLambdaVPCAccessExecutionRole).
VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
CONCURRENCY_REASON = (
    "Reserved concurrency would take capacity from the account pool (new accounts have 10); the caller's "
    "own quotas bound the load on this function."
)


@dataclass(frozen=True)
class VpcPlacement:
    """Where a function attaches to a VPC."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_groups: Sequence[ec2.ISecurityGroup]


class PythonLambda(BuildingBlock):
    """`functions/<function>/handler.py` as a Lambda function with its log group and role.

    Args:
        scope: the parent; the log group and role are created here as `<construct_id>Logs`/`Role`.
        construct_id: the function's id (keeps the logical id of a former `lambda_.Function`).
        function: the folder under `functions/` (handler `functions.<function>.handler.<handler>`).
        handler: the handler function's name in handler.py.
        description: the function description.
        key: the customer-managed key of the log group (and of the environment, see below).
        log_retention_days: log retention (a value `stacks.base.retention` accepts).
        removal_policy: what happens to the log group when the stack goes.
        timeout: the function timeout.
        memory_mb: memory size.
        shared_paths: more entry points or data files to package. The package always holds the
            first-party modules `functions/<function>/` imports, transitively (`packaging.import_closure`,
            with every package `__init__.py`); list here only what no import statement reaches (a
            module loaded by name, a data file).
        generated: files written into the package, `{destination: text}`; a generated module shadows
            the repository file of the same path (e.g. an empty `llm_gateway/__init__.py`).
        environment: environment variables (never secrets: pass secret ARNs).
        encrypt_environment: encrypt the environment with `key` instead of the AWS managed key.
        vpc: attach to a VPC (adds the network-interface actions to a generated role), or None.
        outside_vpc_reason: required without `vpc`: why the function needs no VPC (NIST LambdaInsideVPC).
        reserved_concurrency: reserved concurrent executions; None acknowledges the NIST finding.
        synchronous_caller: who invokes the function synchronously (acknowledges NIST LambdaDLQ: a
            dead-letter queue only receives asynchronous invocations); None when it has a DLQ.
        tracing: X-Ray active tracing.
        role: an existing execution role; None creates `<construct_id>Role` with only what it needs.
        role_description: description of the generated role.

    Attributes:
        function: the `lambda_.Function`.
        log_group: its log group.
        role: its execution role.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: str,
        description: str,
        key: kms.IKey,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
        timeout: cdk.Duration,
        handler: str = "handler",
        memory_mb: int = 256,
        shared_paths: Sequence[str] = (),
        generated: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        encrypt_environment: bool = False,
        vpc: VpcPlacement | None = None,
        outside_vpc_reason: str | None = None,
        reserved_concurrency: int | None = None,
        synchronous_caller: str | None = None,
        tracing: bool = False,
        role: iam.IRole | None = None,
        role_description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if vpc is None and not outside_vpc_reason:
            raise ValueError(f"{construct_id}: a function outside a VPC needs outside_vpc_reason")
        folder = REPO_ROOT / "functions" / function
        if not (folder / "handler.py").is_file():
            raise ValueError(f"{construct_id}: {folder}/handler.py does not exist")
        requirements = folder / "requirements.txt"
        python = [p for p in shared_paths if p.endswith(".py") or (REPO_ROOT / p).is_dir()]
        data = [p for p in shared_paths if p not in python]
        self.bundle = Bundle.of(
            [*import_closure([f"functions/{function}", *python], provided=list(generated or {})), *data],
            generated=generated,
            requirements=f"functions/{function}/requirements.txt" if requirements.is_file() else None,
        )
        self.log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=retention(log_retention_days),
            encryption_key=key,
            removal_policy=removal_policy,
        )
        generated_role = role is None
        self.role: iam.IRole = role or iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=role_description or f"{description} (execution role)",
        )
        self.log_group.grant_write(self.role)
        if vpc is not None and generated_role:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(sid="VpcNetworkInterfaces", actions=list(VPC_ACTIONS), resources=["*"])
            )
        self.function = lambda_.Function(
            self,
            "Default",
            description=description,
            role=self.role,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"functions.{function}.handler.{handler}",
            code=lambda_code(self.bundle),
            memory_size=memory_mb,
            timeout=timeout,
            environment=dict(environment or {}),
            environment_encryption=key if encrypt_environment else None,
            vpc=vpc.vpc if vpc else None,
            vpc_subnets=vpc.subnets if vpc else None,
            security_groups=list(vpc.security_groups) if vpc else None,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
        )
        self._acknowledge(
            vpc=vpc,
            outside_vpc_reason=outside_vpc_reason,
            reserved_concurrency=reserved_concurrency,
            synchronous_caller=synchronous_caller,
            tracing=tracing,
            generated_role=generated_role,
        )

    @property
    def function_arn(self) -> str:
        return self.function.function_arn

    def _acknowledge(
        self,
        *,
        vpc: VpcPlacement | None,
        outside_vpc_reason: str | None,
        reserved_concurrency: int | None,
        synchronous_caller: str | None,
        tracing: bool,
        generated_role: bool,
    ) -> None:
        findings: dict[str, str] = {}
        if vpc is None and outside_vpc_reason:
            findings["NIST.800.53.R5-LambdaInsideVPC"] = outside_vpc_reason
        if reserved_concurrency is None:
            findings["NIST.800.53.R5-LambdaConcurrency"] = CONCURRENCY_REASON
        if synchronous_caller:
            findings["NIST.800.53.R5-LambdaDLQ"] = (
                f"Invoked synchronously by {synchronous_caller}, which receives every error; a dead-letter "
                "queue only receives asynchronous invocations."
            )
        self.acknowledge(self, findings)
        unscoped = [
            what
            for what, present in (
                ("X-Ray trace upload", tracing),
                ("the network-interface actions Lambda needs to attach to the VPC", vpc is not None),
            )
            if present
        ]
        if generated_role and unscoped:
            what = " and ".join(unscoped)
            self.acknowledge(
                self.role,
                {
                    "AwsSolutions-IAM5[Resource::*]": f"{what[0].upper()}{what[1:]} have no resource-level "
                    "permissions; every data action of this role is scoped."
                },
            )
