"""A CloudFront distribution in front of an internal application load balancer, through a CloudFront VPC
origin: the public HTTPS entry of a web app that has no public address (the support chat, Langfuse).

Browser -> CloudFront (HTTPS, the default *.cloudfront.net certificate; HTTP is redirected) -> VPC origin
-> internal ALB on HTTP port 80 inside the VPC. Nothing is cached and every viewer request goes to the
origin with its cookies and query string, so an app with sessions, websockets and OAuth callbacks works
unchanged. The block also opens the ALB's security group to the VPC origin: CloudFront's VPC origin
reaches an internal ALB through ENIs it places in the VPC's own subnets, so the ingress is the VPC's CIDR
on the origin port
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-vpc-origins.html).

Options (what differs between the apps):
- `forward_host_header`: the managed origin request policy. `AllViewer` forwards every viewer header,
  Host (the distribution's domain) included; `AllViewerExceptHostHeader` forwards all but Host, so the
  origin sees its own name
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-origin-request-policies.html).
- `price_class`: the config's "100" / "200" / "all" (edge locations used, and their cost).
- `access_logs`: a bucket for CloudFront standard logs (it must allow ACLs: standard logging writes with
  the awslogsdelivery account's ACL, https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/AccessLogs.html),
  or None with the reason (AwsSolutions-CFR3).
- the comment, the VPC origin's name and its keep-alive timeout.

Logical ids: the distribution is the child `Default` of this construct, and CloudFront creates the VPC
origin below the distribution (`<id>/Default/Origin1/VpcOrigin`), so a distribution that was
`Distribution(stack, "Distribution")` keeps its id and its VPC origin's. A new distribution id would mean
a new domain: the chat's URL in Cognito's callback list, and Langfuse's public URL.
"""

from __future__ import annotations

from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs import BuildingBlock

PriceClassName = Literal["100", "200", "all"]
PRICE_CLASSES: dict[PriceClassName, cloudfront.PriceClass] = {
    "100": cloudfront.PriceClass.PRICE_CLASS_100,
    "200": cloudfront.PriceClass.PRICE_CLASS_200,
    "all": cloudfront.PriceClass.PRICE_CLASS_ALL,
}
# The internal ALB's listener: plain HTTP inside the VPC (no custom domain, so no certificate for it).
ORIGIN_PORT = 80
CLOUDFRONT_LOG_PREFIX = "cloudfront/"


class PrivateOriginDistribution(BuildingBlock):
    """The distribution (child `Default`, `.distribution`) and its VPC origin to `load_balancer`.

    Args:
        load_balancer: the internal ALB, listening on HTTP port 80; its security group gets the ingress
            from `vpc_cidr` on that port.
        vpc_cidr: the VPC's CIDR (a literal where this app creates the VPC, so rules and scanners read it).
        forward_host_header: True forwards the viewer's Host header too (managed policy `AllViewer`),
            False all but Host (`AllViewerExceptHostHeader`).
        price_class: the config's price class ("100", "200" or "all").
        comment: the distribution's comment (shown in the console).
        no_geo_restriction_reason / no_waf_reason: why the distribution has no geographic restriction
            (AwsSolutions-CFR1) and no WAF web ACL (AwsSolutions-CFR2): the app's reasons.
        access_logs: the bucket for CloudFront standard logs (under `cloudfront/`; it must allow ACLs), or
            None with `no_access_logs_reason` (AwsSolutions-CFR3).
        vpc_origin_name: the VPC origin's name (default: CloudFormation generates one).
        keepalive_timeout_seconds: how long CloudFront keeps an idle origin connection (default:
            CloudFront's, 5 s).
        origin_rule_description: the description of the ALB security group's ingress rule.

    Raises:
        ValueError: without access logs and without `no_access_logs_reason`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        load_balancer: elbv2.IApplicationLoadBalancer,
        vpc_cidr: str,
        forward_host_header: bool,
        price_class: PriceClassName,
        comment: str,
        no_geo_restriction_reason: str,
        no_waf_reason: str,
        access_logs: s3.IBucket | None = None,
        no_access_logs_reason: str | None = None,
        vpc_origin_name: str | None = None,
        keepalive_timeout_seconds: int | None = None,
        origin_rule_description: str = "CloudFront VPC origin",
    ) -> None:
        super().__init__(scope, construct_id)
        if access_logs is None and no_access_logs_reason is None:
            raise ValueError(
                f"{construct_id}: a distribution without access logs needs no_access_logs_reason"
            )
        load_balancer.connections.allow_from(
            ec2.Peer.ipv4(vpc_cidr), ec2.Port.tcp(ORIGIN_PORT), origin_rule_description
        )
        origin = origins.VpcOrigin.with_application_load_balancer(
            load_balancer,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTP_ONLY,
            http_port=ORIGIN_PORT,
            read_timeout=cdk.Duration.seconds(60),
            keepalive_timeout=cdk.Duration.seconds(keepalive_timeout_seconds)
            if keepalive_timeout_seconds is not None
            else None,
            vpc_origin_name=vpc_origin_name,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Default",
            comment=comment,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                # An app, not static files: every request reaches the origin uncached.
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER
                if forward_host_header
                else cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=PRICE_CLASSES[price_class],
            enable_logging=access_logs is not None,
            log_bucket=access_logs,
            log_file_prefix=CLOUDFRONT_LOG_PREFIX if access_logs is not None else None,
        )
        findings = {
            "AwsSolutions-CFR1": no_geo_restriction_reason,
            "AwsSolutions-CFR2": no_waf_reason,
            "AwsSolutions-CFR4": "Without a custom domain the distribution uses CloudFront's default "
            "certificate, whose viewer TLS policy CloudFront fixes; viewers are redirected to HTTPS, and a "
            "custom domain with its own certificate can raise the minimum to TLS 1.2.",
        }
        if no_access_logs_reason is not None and access_logs is None:
            findings["AwsSolutions-CFR3"] = no_access_logs_reason
        self.acknowledge(self.distribution, findings)

    @property
    def domain_name(self) -> str:
        return self.distribution.distribution_domain_name
