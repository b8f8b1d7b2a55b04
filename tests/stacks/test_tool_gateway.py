"""The ToolGateway construct alone (one small stack, fast): interceptors, their IAM, the published schemas.

Contract: a gateway has at most one REQUEST and one RESPONSE interceptor, each
`{"InterceptionPoints", "Interceptor": {"Lambda": {"Arn"}}, "InputConfiguration": {"PassRequestHeaders"}}`
(https://docs.aws.amazon.com/bedrock-agentcore-control/latest/APIReference/API_GatewayInterceptorConfiguration.html),
and the gateway's execution role must be allowed `lambda:InvokeFunction` on every Lambda it calls
(https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-add-target-lambda.html), which the
aws-cdk-lib 2.275 `LambdaInterceptor.bind()` grants through `grantInvoke(gateway.role)`.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from stacks.tool_gateway import ACTOR_TARGETS, TARGET_NAMES, ToolGateway, ToolGatewayInputs
from tests.factories import test_config
from tests.support.cdk import standin_knowledge_base
from tools import specs


@pytest.fixture(scope="module")
def template() -> Template:
    app = cdk.App()
    stack = cdk.Stack(
        app, "ToolGatewayOnly", env=cdk.Environment(account="123456789012", region="eu-central-1")
    )
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    pool = cognito.UserPool(stack, "Pool")
    gateway_client = pool.add_client("Gateway")
    actor_clients = [pool.add_client("Browser"), pool.add_client("Ci")]
    ToolGateway(
        stack,
        "ToolGateway",
        config=test_config("dev", components={"web_search": False}),
        inputs=ToolGatewayInputs(
            vpc=vpc,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            key=kms.Key(stack, "Key", enable_key_rotation=True),
            user_pool=pool,
            gateway_client=gateway_client,
            actor_clients=actor_clients,
            tools_scope="agentic-foundation/tools.invoke",
            knowledge_base=standin_knowledge_base(
                stack, "arn:aws:s3vectors:eu-central-1:123456789012:bucket/docs/index/chunks"
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        ),
    )
    return Template.from_stack(stack)


def only(template: Template, resource_type: str) -> dict[str, Any]:
    (resource,) = template.find_resources(resource_type).values()
    return dict(resource["Properties"])


def interceptor_function_id(template: Template) -> str:
    (logical_id,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "functions.interceptor.handler.handler"}}
    )
    return str(logical_id)


def test_gateway_has_one_request_and_one_response_interceptor_on_the_same_function(
    template: Template,
) -> None:
    configs = only(template, "AWS::BedrockAgentCore::Gateway")["InterceptorConfigurations"]
    by_point = {tuple(c["InterceptionPoints"]): c for c in configs}
    assert set(by_point) == {("REQUEST",), ("RESPONSE",)}
    arn = {"Fn::GetAtt": [interceptor_function_id(template), "Arn"]}
    assert all(c["Interceptor"] == {"Lambda": {"Arn": arn}} for c in configs)
    # Only the REQUEST side needs the X-Actor-Token header; the RESPONSE side gets no request headers.
    assert by_point[("REQUEST",)]["InputConfiguration"] == {"PassRequestHeaders": True}
    assert by_point[("RESPONSE",)]["InputConfiguration"] == {"PassRequestHeaders": False}


def test_gateway_role_may_invoke_the_interceptor(template: Template) -> None:
    gateway_role = only(template, "AWS::BedrockAgentCore::Gateway")["RoleArn"]["Fn::GetAtt"][0]
    function_id = interceptor_function_id(template)
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": gateway_role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    invoke = [
        s
        for s in statements
        if "lambda:InvokeFunction" in json.dumps(s["Action"]) and function_id in json.dumps(s["Resource"])
    ]
    assert invoke, "the gateway role cannot invoke the interceptor function"
    assert all(s["Effect"] == "Allow" for s in invoke)


def test_identity_targets_declare_the_identity_argument_and_no_other_target_does(template: Template) -> None:
    published = {
        t["Name"]: t["TargetConfiguration"]["Mcp"]["Lambda"]["ToolSchema"]["InlinePayload"]
        for t in (
            r["Properties"] for r in template.find_resources("AWS::BedrockAgentCore::GatewayTarget").values()
        )
    }
    assert set(published) == {TARGET_NAMES["tickets"], TARGET_NAMES["knowledge"]}
    for target, tools in published.items():
        needs_identity = target in {TARGET_NAMES[t] for t in ACTOR_TARGETS}
        for tool in tools:
            spec = specs.spec(tool["Name"])
            properties = tool["InputSchema"].get("Properties", {})
            assert (specs.IDENTITY_ARGUMENT in properties) == needs_identity == spec.needs_identity
            assert set(properties) == set(spec.gateway_input_schema["properties"])
            # Optional, so the gateway accepts the call whichever way round it validates and intercepts.
            assert specs.IDENTITY_ARGUMENT not in tool["InputSchema"].get("Required", [])
            if needs_identity:
                assert properties[specs.IDENTITY_ARGUMENT]["Type"] == "string"


def test_interceptor_knows_the_identity_targets(template: Template) -> None:
    function = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "functions.interceptor.handler.handler"}}
    )
    (properties,) = (r["Properties"] for r in function.values())
    assert properties["Environment"]["Variables"]["ACTOR_TARGETS"] == "tickets"


def test_every_tool_function_encrypts_its_environment_with_the_stack_key(template: Template) -> None:
    """As the knowledge-base ingestion functions do: `KmsKeyArn` is the customer-managed key the gateway,
    table and logs use, not Lambda's AWS managed key (the property absent)."""
    (key_id,) = template.find_resources("AWS::KMS::Key")
    functions = {
        r["Properties"]["Handler"]: r["Properties"]
        for r in template.find_resources("AWS::Lambda::Function").values()
        if r["Properties"]["Handler"].startswith("functions.")
    }
    assert set(functions) == {
        f"functions.{name}.handler.handler" for name in ("tickets", "knowledge", "interceptor")
    }
    for handler, properties in functions.items():
        assert properties.get("KmsKeyArn") == {"Fn::GetAtt": [key_id, "Arn"]}, handler
