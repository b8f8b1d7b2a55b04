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
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import AppConfig
from stacks.base import FoundationStack
from stacks.compliance import acknowledge_cdk_helpers
from stacks.constructs.fargate_service import LoadBalancer, http_health_check
from stacks.constructs.log_bucket import LogBucket
from stacks.constructs.private_origin_distribution import PrivateOriginDistribution

CHAT_PORT = 8501
HEALTH_PATH = "/_stcore/health"
# The cost-allocation component of this stack's resources: the chat it serves.
COST_COMPONENT = "frontend"


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
        return self.vpc_cidr(self._vpc)

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
        # No egress here: the frontend stack's target registration adds the one rule this group needs
        # (to the tasks' group on the Streamlit port), so this stack never refers to the later one. The
        # distribution's block adds the ingress from the CloudFront VPC origin.
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self._vpc,
            description="Chat ALB: HTTP from the CloudFront VPC origin inside the VPC only",
            allow_all_outbound=False,
        )
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "ChatTargetGroup",
            vpc=self._vpc,
            port=CHAT_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,  # Fargate tasks (awsvpc) register by IP
            # Streamlit answers its health path at once: ELB's default timeout and thresholds.
            health_check=http_health_check(HEALTH_PATH, 15, timeout_seconds=None, thresholds=None),
            # A sign-in's PKCE verifier waits in the task that started it: keep each browser on one task.
            stickiness_cookie_duration=cdk.Duration.hours(8),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        entry = LoadBalancer(
            self,
            "LoadBalancer",
            vpc=self._vpc,
            subnets=self._subnets,
            security_group=security_group,
            idle_timeout_seconds=300,  # Streamlit keeps a websocket open per browser tab
            deletion_protection=self.config.is_prod,
            # ELB log delivery is granted per region (its account or service principal differs by region).
            access_logs=None if cdk.Token.is_unresolved(self.region) else self.access_logs_bucket,
            default_target_group=target_group,
            plain_http_reason="Viewers reach the chat only through CloudFront, which redirects HTTP to HTTPS; "
            "the internal ALB has no public address and no certificate (there is no custom domain), and "
            "CloudFront's VPC origin traffic stays on the AWS network.",
            no_waf_reason="The ALB is internal and reachable only from CloudFront's VPC origin; a WAF belongs "
            "on the distribution (optional, see docs/frontend.md).",
        )
        return entry.load_balancer, entry.listener, target_group

    def _create_distribution(self) -> cloudfront.Distribution:
        return PrivateOriginDistribution(
            self,
            "Distribution",
            load_balancer=self.load_balancer,
            vpc_cidr=self._vpc_cidr,
            # Every path, `/_stcore/stream` (Streamlit's websocket) and `/_stcore/health` included, goes to
            # the origin uncached with every viewer header (websocket upgrade, XSRF), cookie (ALB
            # stickiness, `_streamlit_xsrf`) and query string (the OAuth callback's code/state).
            forward_host_header=True,
            price_class=self.config.frontend.price_class,
            comment=f"{self.config.prefix} support chat",
            access_logs=self.access_logs_bucket,
            # A name of its own (not the former frontend stack's `chat-alb`), so moving the entry into
            # this stack never meets the old VPC origin's name while both exist.
            vpc_origin_name=self.resource_name("chat-edge"),
            keepalive_timeout_seconds=60,
            no_geo_restriction_reason="The chat serves a company's own staff wherever they are; sign-in "
            "through Cognito, not geography, decides who may use it.",
            no_waf_reason="A WAF web ACL for CloudFront must live in us-east-1 and has a monthly cost; it is "
            "an optional per-account hardening step documented in docs/frontend.md.",
        ).distribution

    def _create_outputs(self) -> None:
        cdk.CfnOutput(
            self,
            "ChatAccessLogsBucket",
            value=self.access_logs_bucket.bucket_name,
            description="CloudFront (cloudfront/) and ALB (alb/) access logs of the chat",
        )

    # --- compliance (the load balancer and distribution blocks acknowledge their own findings) -------

    def _acknowledge_findings(self) -> None:
        acknowledge_cdk_helpers(self)
