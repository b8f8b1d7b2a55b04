"""Edge: the support chat's public entry, deployed before the identity stack.

Browser -> CloudFront (HTTPS, default *.cloudfront.net certificate) -> VPC origin -> internal ALB
(HTTP inside the VPC) -> target group (IP targets on the Streamlit port). The ECS service that fills
the target group lives in the frontend stack.

Why a stack of its own: the chat's CloudFront URL must be a callback and sign-out URL of the Cognito
browser client. When the distribution lived in the frontend stack (after identity), a custom resource
added the URL to the client outside CloudFormation, and the next CloudFormation update of the client
reset its URLs to the template's (UpdateUserPoolClient sets every omitted field to its default:
https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pool-updating.html), which broke
sign-in. With the distribution here, the identity stack names its URL in the client's `CallbackURLs`
and `LogoutURLs` through a cross-stack reference, so CloudFormation owns the final URLs.

The stack is tagged `component=frontend` (cost allocation): it is the chat's entry, and the idle-cost
model and AWS Cost Explorer should attribute it to the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import acknowledge, acknowledge_all, acknowledge_cdk_helpers
from stacks.constructs.log_bucket import LogBucket

CHAT_PORT = 8501
HEALTH_PATH = "/_stcore/health"
# The cost-allocation component of this stack's resources: the chat it serves.
COST_COMPONENT = "frontend"
PRICE_CLASSES = {
    "100": cloudfront.PriceClass.PRICE_CLASS_100,
    "200": cloudfront.PriceClass.PRICE_CLASS_200,
    "all": cloudfront.PriceClass.PRICE_CLASS_ALL,
}


def chat_url(distribution: cloudfront.IDistribution) -> str:
    """The chat's public HTTPS address: its OAuth redirect (callback) and sign-out URL."""
    return f"https://{distribution.distribution_domain_name}/"


@dataclass(frozen=True)
class ChatEdge:
    """What other stacks take from the edge stack; each value becomes a CloudFormation cross-stack reference.

    Attributes:
        distribution: the CloudFront distribution (identity: callback/sign-out URL; frontend: public URL).
        target_group: the chat's IP target group, on the ALB's listener (frontend: the service registers
            its tasks and the ALB-to-task security-group rules; operations: the healthy-host alarm).
    """

    distribution: cloudfront.IDistribution
    target_group: elbv2.ApplicationTargetGroup

    @property
    def url(self) -> str:
        return chat_url(self.distribution)


class EdgeStack(FoundationStack):
    """CloudFront distribution, VPC origin, internal ALB, listener, target group and the access-log bucket."""

    component = "edge"
    cost_component = COST_COMPONENT
    description_text = "support chat entry (CloudFront, VPC origin, internal ALB)"

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        service_subnets: ec2.SubnetSelection | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, config=config, **kwargs)
        self._vpc = vpc
        self._subnets = service_subnets or ec2.SubnetSelection(subnet_group_name="services")

        self.access_logs_bucket = self._create_access_logs_bucket()
        self.load_balancer, self.listener, self.target_group = self._create_load_balancer()
        self.distribution = self._create_distribution()
        self.chat = ChatEdge(distribution=self.distribution, target_group=self.target_group)
        self._create_outputs()
        self._acknowledge_findings()

    @property
    def _vpc_cidr(self) -> str:
        """The VPC's CIDR as a literal when this app creates the VPC (rules and scanners can read it)."""
        network = self.config.network
        return network.cidr if network.vpc_id is None else self._vpc.vpc_cidr_block

    # --- steps -------------------------------------------------------------------------------------

    def _create_access_logs_bucket(self) -> s3.Bucket:
        # CloudFront standard logs need ACLs (ObjectWriter); ALB logs share the bucket under alb/.
        return LogBucket(
            self,
            "AccessLogs",
            expire_days=self.config.frontend.log_retention_days,
            retain=self.config.retain_data,
            cloudfront_logging=True,
        ).bucket

    def _create_load_balancer(
        self,
    ) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationListener, elbv2.ApplicationTargetGroup]:
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self._vpc,
            description="Chat ALB: HTTP from the CloudFront VPC origin inside the VPC only",
            allow_all_outbound=False,
        )
        # CloudFront's VPC origin reaches the internal ALB through ENIs in the VPC's own subnets
        # (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-vpc-origins.html).
        security_group.add_ingress_rule(
            ec2.Peer.ipv4(self._vpc_cidr), ec2.Port.tcp(80), "CloudFront VPC origin"
        )
        # No egress here: the frontend stack's target registration adds the one rule this group needs
        # (to the tasks' group on the Streamlit port), so this stack never refers to the later one.
        balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self._vpc,
            vpc_subnets=self._subnets,
            internet_facing=False,
            security_group=security_group,
            drop_invalid_header_fields=True,
            deletion_protection=self.config.is_prod,
            idle_timeout=cdk.Duration.seconds(300),  # Streamlit keeps a websocket open per browser tab
        )
        if not cdk.Token.is_unresolved(self.region):
            # ELB log delivery is granted per region (its account or service principal differs by region).
            balancer.log_access_logs(self.access_logs_bucket, prefix="alb")
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "ChatTargetGroup",
            vpc=self._vpc,
            port=CHAT_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,  # Fargate tasks (awsvpc) register by IP
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH, healthy_http_codes="200", interval=cdk.Duration.seconds(15)
            ),
            # A sign-in's PKCE verifier waits in the task that started it: keep each browser on one task.
            stickiness_cookie_duration=cdk.Duration.hours(8),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        listener = balancer.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_target_groups=[target_group],
        )
        return balancer, listener, target_group

    def _create_distribution(self) -> cloudfront.Distribution:
        origin = origins.VpcOrigin.with_application_load_balancer(
            self.load_balancer,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            http_port=80,
            read_timeout=cdk.Duration.seconds(60),
            keepalive_timeout=cdk.Duration.seconds(60),
            # A name of its own (not the former frontend stack's `chat-alb`), so moving the entry into
            # this stack never meets the old VPC origin's name while both exist.
            vpc_origin_name=self.resource_name("chat-edge"),
        )
        return cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{self.config.prefix} support chat",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                # Every path, `/_stcore/stream` (Streamlit's websocket) and `/_stcore/health` included,
                # goes to the origin uncached with every viewer header (websocket upgrade, XSRF), cookie
                # (ALB stickiness, `_streamlit_xsrf`) and query string (the OAuth callback's code/state).
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=PRICE_CLASSES[self.config.frontend.price_class],
            enable_logging=True,
            log_bucket=self.access_logs_bucket,
            log_file_prefix="cloudfront/",
        )

    def _create_outputs(self) -> None:
        cdk.CfnOutput(
            self,
            "ChatAccessLogsBucket",
            value=self.access_logs_bucket.bucket_name,
            description="CloudFront (cloudfront/) and ALB (alb/) access logs of the chat",
        )

    # --- compliance -------------------------------------------------------------------------------

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
        if cdk.Token.is_unresolved(self.region):
            acknowledge_all(
                self.load_balancer,
                {
                    finding: "ALB access logs need a concrete region (ELB's log-delivery principal differs by "
                    "region); set environment.region in the config to enable them. CloudFront logs every "
                    "request to this ALB in the meantime."
                    for finding in ("AwsSolutions-ELB2", "NIST.800.53.R5-ELBLoggingEnabled")
                },
            )
        acknowledge_all(
            self.load_balancer,
            {
                "NIST.800.53.R5-ALBHttpToHttpsRedirection": "Viewers reach the chat only through CloudFront, "
                "which redirects HTTP to HTTPS; the internal ALB has no public address and no certificate "
                "(there is no custom domain), and CloudFront's VPC origin traffic stays on the AWS network.",
                "NIST.800.53.R5-ALBWAFEnabled": "The ALB is internal and reachable only from CloudFront's VPC "
                "origin; a WAF belongs on the distribution (optional, see docs/frontend.md).",
                "NIST.800.53.R5-ELBDeletionProtectionEnabled": "Deletion protection is on in the prod profile; "
                "the dev profile must destroy cleanly.",
            },
        )
        acknowledge_all(
            self.distribution,
            {
                "AwsSolutions-CFR1": "The chat serves a company's own staff wherever they are; sign-in through "
                "Cognito, not geography, decides who may use it.",
                "AwsSolutions-CFR2": "A WAF web ACL for CloudFront must live in us-east-1 and has a monthly cost; "
                "it is an optional per-account hardening step documented in docs/frontend.md.",
                "AwsSolutions-CFR4": "Without a custom domain the distribution uses CloudFront's default "
                "certificate, whose viewer TLS policy CloudFront fixes; a custom domain can raise it to TLS 1.2.",
            },
        )
        acknowledge(
            self.listener,
            "NIST.800.53.R5-ELBv2ACMCertificateRequired",
            "Without a custom domain there is no ACM certificate for the internal ALB; viewers get TLS from "
            "CloudFront, and CloudFront's VPC origin reaches the ALB over the AWS network only.",
        )
