"""The platform console (llm_gateway.admin_ui): LiteLLM's admin UI behind CloudFront with a VPC origin.

Two halves: the viewer-request CloudFront Function (stacks/assets/console_paths.js) run as real code in
node with the documented event shape
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-event-structure.html), and
the synthesized stack (distribution, function association, generated login, outputs, WAF in prod only).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from config import ConfigError
from cost.model import estimate_templates
from cost.prices import load_prices
from stacks.compliance import read_validation_report
from stacks.llm_gateway import CONSOLE_FUNCTION_SOURCE, CONSOLE_USERNAME, check_console_config
from tests.factories import test_config
from tests.stacks.test_llm_gateway import Synth, container, synth
from tests.support.cdk import resources_of

NODE = shutil.which("node") or str(Path(__file__).resolve().parents[2] / "node_modules/.bin/node")

# Runs the function file exactly as CloudFront loads it (a script defining `handler`), once per event.
RUNNER = """
const fs = require('fs'); const vm = require('vm');
const code = fs.readFileSync(process.argv[1], 'utf8');
const context = vm.createContext({});
vm.runInContext(code, context);
const events = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(events.map((e) => context.handler(e))));
"""


def viewer_request(
    uri: str, method: str = "GET", querystring: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A viewer-request event as CloudFront Functions passes it (version 1.0)."""
    return {
        "version": "1.0",
        "context": {"distributionDomainName": "d111111abcdef8.cloudfront.net", "eventType": "viewer-request"},
        "viewer": {"ip": "198.51.100.7"},
        "request": {
            "method": method,
            "uri": uri,
            "querystring": querystring or {},
            "headers": {"host": {"value": "d111111abcdef8.cloudfront.net"}},
            "cookies": {},
        },
    }


def run_function(
    events: list[dict[str, Any]], source: Path = CONSOLE_FUNCTION_SOURCE
) -> list[dict[str, Any]]:
    completed = subprocess.run(
        [NODE, "-e", RUNNER, str(source)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(completed.stdout)
    return results


def passes(result: dict[str, Any]) -> bool:
    """The function returned the request (CloudFront forwards it) rather than a response."""
    return "statusCode" not in result


# What the real UI requested while loading its login page and the models, keys, usage, teams and logs
# pages (recorded over loopback from LiteLLM 1.102.4; tests/llm_gateway/test_console_ui.py re-records it).
UI_PATHS = [
    "/ui/",
    "/ui/login/",
    "/ui/teams/index.txt",
    "/ui/assets/audit-logs-preview.png",
    "/litellm-asset-prefix/_next/static/chunks/0if-vqkhyn-zc.js",
    "/litellm-asset-prefix/_next/static/media/83afe278b6a6bb3c-s.p.2bn3s6zvc0dyp.woff2",
    "/_next/static/chunks/0if-vqkhyn-zc.js",
    "/litellm/.well-known/litellm-ui-config",
    "/.well-known/litellm-ui-config",
    "/get_favicon",
    "/get_image",
    "/get_logo_url",
    "/get/ui_settings",
    "/get/ui_theme_settings",
    "/get/user_banner",
    "/sso/get/ui_settings",
    "/api/plugins",
    "/health/license",
    "/health/readiness/details",
    "/key/list",
    "/team/list",
    "/team/metadata_schema",
    "/v2/team/list",
    "/user/available_roles",
    "/user/available_users",
    "/v2/model/info",
    "/global/activity",
    "/global/activity/model",
    "/global/spend/keys",
    "/global/spend/end_users",
    "/spend/logs/ui",
    "/tag/list",
    "/policies/list",
    "/prompts/list",
    "/project/list",
    "/v2/guardrails/list",
]
# Management writes the UI sends (key, team, user, budget, model) and the login itself.
UI_WRITES = [
    ("POST", "/v2/login"),
    ("POST", "/key/generate"),
    ("POST", "/key/delete"),
    ("POST", "/key/sk-1234/regenerate"),
    ("POST", "/team/new"),
    ("POST", "/team/member_add"),
    ("POST", "/user/new"),
    ("POST", "/budget/new"),
    ("POST", "/model/new"),
    ("POST", "/organization/new"),
    ("GET", "/models"),
    ("HEAD", "/models"),
]
# The model API and everything else the console must not expose.
MODEL_API = [
    ("POST", "/chat/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/embeddings"),
    ("POST", "/v1/embeddings"),
    ("POST", "/responses"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("POST", "/messages"),
    ("GET", "/v1/models"),
    ("POST", "/models"),  # /models only as a listing, never written to
    ("POST", "/models/claude:generateContent"),
    ("POST", "/audio/transcriptions"),
    ("POST", "/images/generations"),
    ("POST", "/rerank"),
    ("POST", "/moderations"),
    ("POST", "/bedrock/model/x/converse"),
    ("POST", "/anthropic/v1/messages"),
    ("POST", "/openai/deployments/x/chat/completions"),
    ("POST", "/engines/x/chat/completions"),
    ("POST", "/mcp"),
    ("POST", "/key/mcp"),  # /{mcp_server_name}/mcp matches any first segment
    ("POST", "/team/mcp/tools/call"),
    ("POST", "/guardrails/apply_guardrail"),
    ("POST", "/utils/transform_request"),
    ("GET", "/health"),  # runs a live call against every model
    ("GET", "/health/readiness"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/routes"),
    ("POST", "/config/update"),
    ("POST", "/sso/key/generate"),
    ("GET", "/fallback/login"),
    ("POST", "/login"),
    ("GET", "/v1/agents"),
    ("GET", "/public/litellm_blog_posts"),
]
# Tricky spellings of a refused path that a naive prefix check would let through.
TRICKY = [
    "//chat/completions",
    "/ui/../chat/completions",
    "/ui/./../v1/chat/completions",
    "/key/..",
    "/ui/..",
    "/ui%2F..%2Fchat%2Fcompletions",
    "/ui/%2e%2e/chat/completions",
    "/%75i/",
    "/key%2Flist",
    "/ui\\..\\chat\\completions",
    "/ui;/../chat/completions",
    "/ui//chat/completions",
    "/key//list",
    "/uichat/completions",
    "/keys/list",
    "/team-x/list",
    "/UI/",
    "/Chat/Completions",
    "/KEY/list",
    "/chat/completions/",
    "/v1/",
    "",
    "ui/",
    "/models/",
    "/models/claude",
]


@pytest.mark.parametrize("path", UI_PATHS)
def test_the_ui_and_the_paths_it_calls_pass_for_every_method(path: str) -> None:
    results = run_function([viewer_request(path, method) for method in ("GET", "POST", "DELETE")])
    assert all(passes(result) for result in results), results


def test_the_passed_request_is_the_viewers_unchanged() -> None:
    event = viewer_request("/key/list", querystring={"page": {"value": "1"}})

    (result,) = run_function([event])

    assert result == event["request"]


@pytest.mark.parametrize(("method", "path"), UI_WRITES)
def test_management_writes_and_the_model_listing_pass(method: str, path: str) -> None:
    (result,) = run_function([viewer_request(path, method)])
    assert passes(result), result


@pytest.mark.parametrize(("method", "path"), MODEL_API)
def test_the_model_api_and_other_routes_are_refused_403(method: str, path: str) -> None:
    (result,) = run_function([viewer_request(path, method)])

    assert result["statusCode"] == 403
    assert result["statusDescription"] == "Forbidden"
    assert result["headers"]["cache-control"] == {"value": "no-store"}
    assert "private to the VPC" in result["body"]


@pytest.mark.parametrize("path", TRICKY)
def test_encoded_doubled_dotted_and_cased_paths_are_refused(path: str) -> None:
    (result,) = run_function([viewer_request(path, "POST")])
    assert result.get("statusCode") == 403, (path, result)


def test_a_query_string_cannot_smuggle_an_allowed_path() -> None:
    (result,) = run_function(
        [viewer_request("/chat/completions", "POST", querystring={"next": {"value": "/ui/"}})]
    )
    assert result["statusCode"] == 403


def test_the_root_redirects_to_the_ui_instead_of_the_api_reference() -> None:
    (result,) = run_function([viewer_request("/")])

    assert result["statusCode"] == 302
    assert result["headers"]["location"] == {"value": "/ui/"}


def test_a_request_without_a_uri_is_refused() -> None:
    event = viewer_request("/ui/")
    del event["request"]["uri"]

    (result,) = run_function([event])

    assert result["statusCode"] == 403


def test_the_function_fits_cloudfront_functions_limits() -> None:
    # 10 KB maximum function size (CloudFront quotas:
    # https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html)
    assert CONSOLE_FUNCTION_SOURCE.stat().st_size < 10 * 1024


# --- the synthesized console ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(test_config("dev"), tmp_path_factory.mktemp("console-dev"))


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(test_config("prod"), tmp_path_factory.mktemp("console-prod"))


def console_distribution(template: Template) -> dict[str, Any]:
    distributions = resources_of(template, "AWS::CloudFront::Distribution")
    (distribution,) = distributions.values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_the_console_is_a_distribution_with_a_vpc_origin_to_the_internal_alb(
    profile: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synth = request.getfixturevalue(profile)
    template = synthesized.template
    config = console_distribution(template)

    (alb_id, alb) = next(iter(resources_of(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").items()))
    assert alb["Properties"]["Scheme"] == "internal"
    (origin,) = resources_of(template, "AWS::CloudFront::VpcOrigin").values()
    endpoint = origin["Properties"]["VpcOriginEndpointConfig"]
    assert endpoint["Arn"] == {"Ref": alb_id}
    assert (endpoint["HTTPPort"], endpoint["OriginProtocolPolicy"]) == (80, "http-only")
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert "CacheBehaviors" not in config  # one behavior: the function sees every request


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_every_viewer_request_runs_the_path_function(profile: str, request: pytest.FixtureRequest) -> None:
    template: Template = request.getfixturevalue(profile).template
    (function_id, function) = next(iter(resources_of(template, "AWS::CloudFront::Function").items()))

    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["Properties"]["FunctionCode"] == CONSOLE_FUNCTION_SOURCE.read_text(encoding="utf-8")
    assert function["Properties"]["AutoPublish"] is True
    associations = console_distribution(template)["DefaultCacheBehavior"]["FunctionAssociations"]
    assert associations == [
        {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]}}
    ]


def test_dev_gets_the_internal_alb_for_the_console(dev: Synth) -> None:
    # dev sets llm_gateway.load_balancer: false; admin_ui brings the ALB, and the clients use it
    assert resources_of(dev.template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert not resources_of(dev.template, "AWS::ServiceDiscovery::PrivateDnsNamespace")
    assert dev.stack.endpoint.url.startswith("http://") and ".elb." not in dev.stack.endpoint.url


def test_dev_without_the_console_keeps_cloud_map_and_no_alb(tmp_path: Path) -> None:
    plain = synth(test_config("dev", llm_gateway={"admin_ui": False}), tmp_path, gates=False).template

    assert not resources_of(plain, "AWS::CloudFront::Distribution")
    assert not resources_of(plain, "AWS::CloudFront::Function")
    assert not resources_of(plain, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert resources_of(plain, "AWS::ServiceDiscovery::PrivateDnsNamespace")
    environment = {e["Name"]: e["Value"] for e in container(plain)["Environment"]}
    assert environment["DISABLE_ADMIN_UI"] == "True"
    assert "PROXY_BASE_URL" not in environment
    assert {"UI_USERNAME", "UI_PASSWORD"}.isdisjoint({s["Name"] for s in container(plain)["Secrets"]})
    outputs = plain.to_json().get("Outputs", {})
    assert not [name for name in outputs if name.startswith("Console")]


def login_secret(template: Template) -> tuple[str, dict[str, Any]]:
    secrets = {
        logical_id: body
        for logical_id, body in resources_of(template, "AWS::SecretsManager::Secret").items()
        if logical_id.startswith("ConsoleLogin")
    }
    ((logical_id, body),) = secrets.items()
    return logical_id, body


def test_the_login_is_generated_at_deploy_time_and_encrypted(dev: Synth) -> None:
    _, secret = login_secret(dev.template)
    generator = secret["Properties"]["GenerateSecretString"]

    assert json.loads(generator["SecretStringTemplate"]) == {"username": CONSOLE_USERNAME}
    assert generator["GenerateStringKey"] == "password"
    assert generator["PasswordLength"] >= 20 and generator["RequireEachIncludedType"] is True
    assert "SecretString" not in secret["Properties"]
    assert "Ref" in secret["Properties"]["KmsKeyId"] or "Fn::GetAtt" in secret["Properties"]["KmsKeyId"]


def test_the_tasks_read_the_login_as_ecs_secrets_never_as_plain_environment(dev: Synth) -> None:
    login_id, _ = login_secret(dev.template)
    definition = container(dev.template)
    secrets = {s["Name"]: s["ValueFrom"] for s in definition["Secrets"]}
    environment = {e["Name"]: e["Value"] for e in definition["Environment"]}

    for name, field in (("UI_USERNAME", "username"), ("UI_PASSWORD", "password")):
        assert secrets[name] == {"Fn::Join": ["", [{"Ref": login_id}, f":{field}::"]]}
    assert "UI_PASSWORD" not in environment and "UI_USERNAME" not in environment
    assert environment["DISABLE_ADMIN_UI"] == "False"
    assert environment["LITELLM_HIDE_DEFAULT_CREDENTIALS_HINT"] == "True"
    (distribution_id,) = resources_of(dev.template, "AWS::CloudFront::Distribution")
    assert environment["PROXY_BASE_URL"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]
    }


def test_outputs_name_the_url_and_the_secret_never_its_value(dev: Synth) -> None:
    login_id, _ = login_secret(dev.template)
    outputs = dev.template.to_json()["Outputs"]
    (distribution_id,) = resources_of(dev.template, "AWS::CloudFront::Distribution")

    assert outputs["ConsoleUrl"]["Value"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}, "/ui/"]]
    }
    assert outputs["ConsoleLoginSecretArn"]["Value"] == {"Ref": login_id}
    text = json.dumps(outputs)
    assert "resolve:secretsmanager" not in text and "SecretString" not in text


def test_prod_attaches_a_cloudfront_web_acl_and_dev_has_none(dev: Synth, prod: Synth) -> None:
    assert not resources_of(dev.template, "AWS::WAFv2::WebACL")
    assert "WebACLId" not in console_distribution(dev.template)

    acls = {
        logical_id: body
        for logical_id, body in resources_of(prod.template, "AWS::WAFv2::WebACL").items()
        if body["Properties"]["Scope"] == "CLOUDFRONT"
    }
    ((acl_id, acl),) = acls.items()
    assert console_distribution(prod.template)["WebACLId"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    assert set(rules) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "RateLimitPerIp",
    }
    assert rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rules["RateLimitPerIp"]["Action"] == {"Block": {}}


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_the_console_adds_no_unacknowledged_nag_finding(profile: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synth = request.getfixturevalue(profile)
    report = read_validation_report(synthesized.outdir)
    assert [f for f in report.unacknowledged if "llm-gateway" in f] == []


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {
                "load_balancer": True,
                "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
                "hostname": "llm.example.com",
            },
            "HTTP port 80",
        ),
        (
            {
                "load_balancer": True,
                "public": True,
                "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
                "hostname": "llm.example.com",
            },
            "HTTP port 80",
        ),
    ],
)
def test_the_console_refuses_a_gateway_its_edge_cannot_reach(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_console_config(test_config("dev", llm_gateway=overrides))
    check_console_config(test_config("dev", llm_gateway={**overrides, "admin_ui": False}))


def test_prod_console_outside_us_east_1_names_the_waf_region() -> None:
    config = test_config("prod", environment={"region": "eu-west-1", "account": "123456789012"})
    with pytest.raises(ConfigError, match="us-east-1"):
        check_console_config(config)
    check_console_config(test_config("prod", environment={"region": "us-east-1", "account": "123456789012"}))
    check_console_config(test_config("dev", environment={"region": "eu-west-1", "account": "123456789012"}))


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_the_idle_cost_model_prices_every_console_resource(
    profile: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synth = request.getfixturevalue(profile)
    estimate = estimate_templates({"gateway": synthesized.template.to_json()}, load_prices("us-east-1"))
    assert estimate.unpriced == []
