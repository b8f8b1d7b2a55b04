"""Every cdk-nag acknowledgement the building blocks make in their tests: construct -> {path: {finding:
reason}}. The reasons are the compliance report's text a reviewer reads, so they are written out here,
not imported from the blocks: a changed or blanked reason, a dropped or extra finding, or one made on
another construct fails `assert_acknowledged_as_pinned` (tests/stacks/constructs/__init__.py).

Reasons a test passes in (the caller's own reasons) are the test's constants; the rest are the blocks'.
"""

from __future__ import annotations

ACKNOWLEDGEMENTS: dict[str, dict[str, dict[str, str]]] = {
    # test_fargate_service.py: an environment-agnostic HTTPS load balancer with deletion protection.
    "load_balancer_without_region": {
        "s/LoadBalancer/Default": {
            "AwsSolutions-ELB2": "Access logs need the region's ELB log-delivery principal, unknown in an "
            "environment-agnostic synth; they are enabled whenever environment.region is set.",
            "NIST.800.53.R5-ELBLoggingEnabled": "Access logs need the region's ELB log-delivery principal, "
            "unknown in an environment-agnostic synth; they are enabled whenever environment.region is set.",
        },
    },
    "private_origin_distribution": {
        "blocks/Distribution/Default": {
            "AwsSolutions-CFR1": "Test distribution for staff anywhere; sign-in decides access.",
            "AwsSolutions-CFR2": "Test distribution; a WAF is an optional hardening step.",
            "AwsSolutions-CFR4": "Without a custom domain the distribution uses CloudFront's default certificate, whose viewer TLS policy CloudFront fixes; viewers are redirected to HTTPS, and a custom domain with its own certificate can raise the minimum to TLS 1.2.",
        },
        "blocks/ToolDistribution/Default": {
            "AwsSolutions-CFR1": "Test tool behind its own login.",
            "AwsSolutions-CFR2": "Test tool: every route needs a login.",
            "AwsSolutions-CFR4": "Without a custom domain the distribution uses CloudFront's default certificate, whose viewer TLS policy CloudFront fixes; viewers are redirected to HTTPS, and a custom domain with its own certificate can raise the minimum to TLS 1.2.",
            "AwsSolutions-CFR3": "Test distribution: the app behind it logs every request itself.",
        },
    },
    "cache": {
        "blocks/Single/Default": {
            "NIST.800.53.R5-ElastiCacheRedisClusterAutomaticBackup": "Holds only counters that rebuild themselves; nothing durable lives in it.",
            "AwsSolutions-AEC4": "One cache node in this profile (no replica) keeps idle cost low; the durable data lives elsewhere and a replaced node starts empty. Prod runs a replica in another AZ.",
        },
        "blocks/Replicated/Default": {
            "NIST.800.53.R5-ElastiCacheRedisClusterAutomaticBackup": "Holds only counters that rebuild themselves; nothing durable lives in it."
        },
    },
    "secret": {
        "blocks/Alnum/Default": {
            "AwsSolutions-SMG4": "Read once at start by its consumer; rotated by redeploying, not by a function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Read once at start by its consumer; rotated by redeploying, not by a function.",
        },
        "blocks/Spelled/Default": {
            "AwsSolutions-SMG4": "Read once at start by its consumer; rotated by redeploying, not by a function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Read once at start by its consumer; rotated by redeploying, not by a function.",
        },
        "blocks/Hex/Default": {
            "AwsSolutions-SMG4": "Read once at start by its consumer; rotated by redeploying, not by a function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Read once at start by its consumer; rotated by redeploying, not by a function.",
        },
        "blocks/Login/Default": {
            "AwsSolutions-SMG4": "A human login; the admin changes it in the application, not a rotation function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "A human login; the admin changes it in the application, not a rotation function.",
        },
    },
    "database": {
        "blocks/Instance/Default/Secret": {
            "AwsSolutions-SMG4": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
        },
        "blocks/Instance/Default": {
            "NIST.800.53.R5-RDSEnhancedMonitoringEnabled": "CloudWatch's RDS metrics (capacity, connections) and the exported PostgreSQL log cover monitoring; OS-level enhanced monitoring adds cost without a consumer.",
            "NIST.800.53.R5-RDSInBackupPlan": "RDS automated backups (point-in-time restore, 7 days) protect this database; no separate AWS Backup plan is needed.",
            "AwsSolutions-RDS3": "One single-AZ PostgreSQL instance in this profile keeps idle cost low; automated backups restore it. Prod uses Aurora Serverless v2 with a reader in another AZ.",
            "NIST.800.53.R5-RDSMultiAZSupport": "One single-AZ PostgreSQL instance in this profile keeps idle cost low; automated backups restore it. Prod uses Aurora Serverless v2 with a reader in another AZ.",
            "AwsSolutions-RDS10": "Deletion protection follows the profile: on where data is retained (prod), off in dev so the stack destroys cleanly.",
            "NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled": "Deletion protection follows the profile: on where data is retained (prod), off in dev so the stack destroys cleanly.",
        },
        "blocks/Plain/Default/Secret": {
            "AwsSolutions-SMG4": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
        },
        "blocks/Plain/Default": {
            "NIST.800.53.R5-RDSEnhancedMonitoringEnabled": "CloudWatch's RDS metrics (capacity, connections) and the exported PostgreSQL log cover monitoring; OS-level enhanced monitoring adds cost without a consumer.",
            "NIST.800.53.R5-RDSInBackupPlan": "RDS automated backups (point-in-time restore, 7 days) protect this database; no separate AWS Backup plan is needed.",
            "AwsSolutions-RDS11": "The default PostgreSQL port inside private, isolated subnets; only the service's security groups may connect, with TLS.",
        },
        "blocks/Cluster/Default/Secret": {
            "AwsSolutions-SMG4": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Read at start by the tasks; rotated by redeploying, not by a rotation function.",
        },
        "blocks/Cluster/Default": {
            "NIST.800.53.R5-RDSEnhancedMonitoringEnabled": "CloudWatch's RDS metrics (capacity, connections) and the exported PostgreSQL log cover monitoring; OS-level enhanced monitoring adds cost without a consumer.",
            "NIST.800.53.R5-RDSInBackupPlan": "RDS automated backups (point-in-time restore, 7 days) protect this database; no separate AWS Backup plan is needed.",
        },
    },
    "fargate_service": {
        "blocks/LoadBalancer/Default": {
            "NIST.800.53.R5-ELBDeletionProtectionEnabled": "Deletion protection follows the profile: on where data is retained (prod), off in dev so the stack destroys cleanly.",
            "NIST.800.53.R5-ALBHttpToHttpsRedirection": "Internal test load balancer without a certificate: plain HTTP stays inside the VPC.",
            "NIST.800.53.R5-ELBv2ACMCertificateRequired": "Internal test load balancer without a certificate: plain HTTP stays inside the VPC.",
            "NIST.800.53.R5-ALBWAFEnabled": "Internal test load balancer reached only from inside the VPC by authenticated callers.",
        },
        "blocks/WebTask/Default": {
            "AwsSolutions-ECS2": "The environment holds only non-secret settings (hosts, names, flags); every secret is an ECS secret read from Secrets Manager at start, and the block refuses environment names that look like secrets."
        },
    },
    "fargate_task": {
        "blocks/Task/Default": {
            "AwsSolutions-ECS2": "The environment holds only non-secret settings (hosts, names, flags); every secret is an ECS secret read from Secrets Manager at start, and the block refuses environment names that look like secrets."
        },
        "blocks/Task/Default/ExecutionRole": {
            "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken, which ECS needs to pull the task's private image, has no resource-level permissions; every other grant of the execution role names its repository, log group or secret."
        },
    },
    "python_lambda": {
        "blocks/Attached": {
            "NIST.800.53.R5-LambdaDLQ": "Invoked synchronously by the test's custom resource, which receives every error; a dead-letter queue only receives asynchronous invocations."
        },
        "blocks/AttachedRole": {
            "AwsSolutions-IAM5[Resource::*]": "X-Ray trace upload and the network-interface actions Lambda needs to attach to the VPC have no resource-level permissions; every data action of this role is scoped."
        },
        "blocks/InterceptorFunction": {
            "NIST.800.53.R5-LambdaInsideVPC": "A test function outside any VPC; it calls only AWS APIs over HTTPS.",
            "NIST.800.53.R5-LambdaConcurrency": "Reserved concurrency would take capacity from the account pool (new accounts have 10); the caller's own quotas bound the load on this function.",
            "NIST.800.53.R5-LambdaDLQ": "Invoked synchronously by the tool gateway, which receives every error; a dead-letter queue only receives asynchronous invocations.",
        },
        "blocks/Given": {
            "NIST.800.53.R5-LambdaInsideVPC": "A test function outside any VPC; it calls only AWS APIs over HTTPS.",
            "NIST.800.53.R5-LambdaDLQ": "Invoked synchronously by EventBridge Scheduler, which receives every error; a dead-letter queue only receives asynchronous invocations.",
        },
    },
}
