"""AgentCore stack: runtime, memory, tool gateway and targets, IAM scope, secrets, assets, gates.

The stack's inputs from stacks written elsewhere (knowledge base, guardrail, LLM gateway, Langfuse) are
small typed stand-ins in their own stack; network and identity are the real stacks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template

from config import AppConfig
from scripts.synth_summary import lint_template
from stacks.agentcore import AGENT_DIR, MEMORY_NAMESPACES, TOOLS_SCOPE, AgentCoreStack
from stacks.compliance import acknowledge_all, enable_compliance_checks, read_validation_report
from stacks.contracts import LangfuseConnection, LlmGatewayEndpoint, url_port
from stacks.identity import IdentityStack
from stacks.network import NetworkStack
from stacks.tool_gateway import GATEWAY_MCP_VERSIONS, schema_definition
from tests.factories import test_config
from tests.stacks.test_guardrails import assert_may_apply_guardrail
from tests.support.cdk import standin_knowledge_base
from tools import specs
from tools.web_search import openapi_document

LLM_URL = "http://internal-llm-gateway.example.internal:4000"
LANGFUSE_HOST = "https://langfuse.example.com"


@dataclass
class Synth:
    stack: AgentCoreStack
    template: Template
    outdir: Path
    standins: cdk.Stack
    identity: IdentityStack

    @property
    def json(self) -> dict[str, Any]:
        return dict(self.template.to_json())


def agent_source(directory: Path, marker: str = "v1") -> Path:
    """A minimal agent build context (the runtime asset only hashes and copies it at synth)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(
        "FROM public.ecr.aws/docker/library/python:3.11-slim\nCOPY . /app\n"
    )
    (directory / "main.py").write_text(f"VERSION = {marker!r}\n")
    return directory


def synth(
    outdir: Path,
    config: AppConfig,
    agent_dir: Path,
    langfuse: bool = True,
    context: dict[str, Any] | None = None,
) -> Synth:
    app = cdk.App(outdir=str(outdir), context=context)
    network = NetworkStack(app, config=config)
    identity = IdentityStack(app, config=config)
    env = cdk.Environment(account=config.environment.account, region=config.environment.region)
    standins = cdk.Stack(app, "StandIns", env=env)
    knowledge_base = standin_knowledge_base(
        standins, "arn:aws:s3vectors:us-east-1:123456789012:bucket/docs/index/chunks"
    )
    # Like the real one (GuardrailsStack), the guardrail is encrypted with a customer-managed key.
    guardrail_key = kms.Key(standins, "GuardrailKey", enable_key_rotation=True)
    guardrail = bedrock.CfnGuardrail(
        standins,
        "Guardrail",
        name="guardrail",
        blocked_input_messaging="blocked",
        blocked_outputs_messaging="blocked",
        kms_key_arn=guardrail_key.key_arn,
        content_policy_config=bedrock.CfnGuardrail.ContentPolicyConfigProperty(
            filters_config=[
                bedrock.CfnGuardrail.ContentFilterConfigProperty(
                    type="PROMPT_ATTACK", input_strength="HIGH", output_strength="NONE"
                )
            ]
        ),
    )
    version = bedrock.CfnGuardrailVersion(
        standins,
        "GuardrailVersion",
        guardrail_identifier=guardrail.attr_guardrail_id,
        description=STANDIN_POLICY_DESCRIPTION,
    )
    # The LLM gateway encrypts its key secrets with its own key: reading them must not make that stack
    # depend back on this one (a cycle at synth).
    gateway_key = kms.Key(standins, "LlmGatewayKey", enable_key_rotation=True)
    secrets = {
        name: secretsmanager.Secret(
            standins, name, encryption_key=None if name == "LangfuseKeys" else gateway_key
        )
        for name in ("AgentKey", "EvalKey", "LangfuseKeys")
    }
    llm_security_group = ec2.SecurityGroup(standins, "LlmGatewaySecurityGroup", vpc=network.vpc)
    stack = AgentCoreStack(
        app,
        config=config,
        vpc=network.vpc,
        service_subnets=network.service_subnets,
        user_pool=identity.user_pool,
        browser_client=identity.browser_client,
        machine_clients=identity.machine_clients,
        token_endpoint=identity.token_endpoint,
        knowledge_base=knowledge_base,
        guardrail=guardrail,
        guardrail_version=version,
        llm=LlmGatewayEndpoint(
            url=LLM_URL,
            agent_key_secret=secrets["AgentKey"],
            eval_key_secret=secrets["EvalKey"],
            security_group=llm_security_group,
        ),
        langfuse=LangfuseConnection(host=LANGFUSE_HOST, keys_secret=secrets["LangfuseKeys"])
        if langfuse
        else None,
        agent_dir=agent_dir,
    )
    acknowledge_all(
        standins,
        {
            "AwsSolutions-SMG4": "Test stand-in secrets for inputs another stack provides in the app.",
            "NIST.800.53.R5-SecretsManagerRotationEnabled": "Test stand-in secrets, never deployed.",
            "NIST.800.53.R5-SecretsManagerUsingKMSKey": "Test stand-in secrets, never deployed.",
        },
    )
    enable_compliance_checks(app)
    app.synth()
    return Synth(stack, Template.from_stack(stack), outdir, standins, identity)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    root = tmp_path_factory.mktemp("agentcore")
    config = test_config("dev", components={"web_search": True})
    return synth(root / "out", config, agent_source(root / "agent"))


@pytest.fixture(scope="module")
def template(synthesized: Synth) -> Template:
    return synthesized.template


@pytest.fixture(scope="module")
def without_web_search(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    root = tmp_path_factory.mktemp("agentcore-noweb")
    config = test_config("dev", components={"web_search": False, "observability": "disabled"})
    return synth(root / "out", config, agent_source(root / "agent"), langfuse=False)


STANDIN_POLICY_DESCRIPTION = "policy 0123abcd published by aaf"


def only(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return next(iter(found.values()))["Properties"]  # type: ignore[no-any-return]


def runtime_env(template: Template) -> dict[str, Any]:
    return only(template, "AWS::BedrockAgentCore::Runtime")["EnvironmentVariables"]  # type: ignore[no-any-return]


def imported(value: Any) -> str:
    """The export name of an `Fn::ImportValue` (how cross-stack construct references render)."""
    assert isinstance(value, dict) and "Fn::ImportValue" in value, value
    return str(value["Fn::ImportValue"])


def targets(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in template.find_resources("AWS::BedrockAgentCore::GatewayTarget").values()
    }


def lambda_by_handler(template: Template, handler: str) -> dict[str, Any]:
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        if resource["Properties"].get("Handler") == handler:
            return {"id": logical_id, **resource["Properties"]}
    raise AssertionError(f"no function with handler {handler}")


def policy_statements(template: Template) -> list[dict[str, Any]]:
    statements = []
    for resource in template.find_resources("AWS::IAM::Policy").values():
        statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    for resource in template.find_resources("AWS::IAM::Role").values():
        for policy in resource["Properties"].get("Policies", []):
            statements.extend(policy["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- runtime -------------------------------------------------------------------------------------


def test_runtime_jwt_authorizer_uses_the_user_pool(template: Template) -> None:
    authorizer = only(template, "AWS::BedrockAgentCore::Runtime")["AuthorizerConfiguration"][
        "CustomJWTAuthorizer"
    ]
    discovery = json.dumps(authorizer["DiscoveryUrl"])
    assert "cognito-idp." in discovery and "/.well-known/openid-configuration" in discovery
    assert "ExportsOutputRefUserPool6BA7E5F2" in discovery


def test_runtime_allows_browser_ci_and_evaluation_clients_only(template: Template) -> None:
    authorizer = only(template, "AWS::BedrockAgentCore::Runtime")["AuthorizerConfiguration"][
        "CustomJWTAuthorizer"
    ]
    exports = sorted(imported(c) for c in authorizer["AllowedClients"])
    assert len(exports) == 3
    kinds = [re.findall(r"UserPool(\w+?)Client", e) for e in exports]
    assert kinds == [["Browser"], ["CiMachine"], ["EvaluationMachine"]]


def test_runtime_forwards_only_the_authorization_header(template: Template) -> None:
    runtime = only(template, "AWS::BedrockAgentCore::Runtime")
    assert runtime["RequestHeaderConfiguration"] == {"RequestHeaderAllowlist": ["Authorization"]}


def test_runtime_environment_follows_the_agent_api_contract(template: Template) -> None:
    env = runtime_env(template)
    assert set(env) == {
        "AGENT_MODE",
        "LLM_GATEWAY_URL",
        "LLM_GATEWAY_KEY_SECRET_ARN",
        "MODEL_ALIAS",
        "TOOL_GATEWAY_URL",
        "TOOL_GATEWAY_CLIENT_SECRET_ARN",
        "TOOL_GATEWAY_TOKEN_URL",
        "TOOL_GATEWAY_SCOPE",
        "MEMORY_ID",
        "GUARDRAIL_ID",
        "GUARDRAIL_VERSION",
        "KNOWLEDGE_BASE_ID",
        "LANGFUSE_HOST",
        "LANGFUSE_KEYS_SECRET_ARN",
        "DISABLE_ADOT_OBSERVABILITY",
        "AGENT_ENVIRONMENT",
        "AGENT_SERVICE_NAME",
        "AGENT_TURN_DEADLINE_SECONDS",
        "AGENT_TOOL_TIMEOUT_SECONDS",
    }
    assert env["AGENT_MODE"] == "agentcore"
    assert env["LLM_GATEWAY_URL"] == LLM_URL
    assert env["MODEL_ALIAS"] == test_config("dev").models.agent_alias
    assert env["TOOL_GATEWAY_SCOPE"] == TOOLS_SCOPE == "agentic-foundation/tools.invoke"
    assert env["TOOL_GATEWAY_URL"] == {
        "Fn::GetAtt": [next(iter(template.find_resources("AWS::BedrockAgentCore::Gateway"))), "GatewayUrl"]
    }
    assert "/oauth2/token" in json.dumps(env["TOOL_GATEWAY_TOKEN_URL"])
    assert env["LANGFUSE_HOST"] == LANGFUSE_HOST


def test_runtime_disables_agentcore_adot_export(template: Template) -> None:
    # docs/tracing-contract.md: the agent exports to Langfuse itself; ADOT would duplicate every span.
    assert runtime_env(template)["DISABLE_ADOT_OBSERVABILITY"] == "true"


def test_runtime_turns_are_bounded_from_config_and_the_agent_accepts_the_values(template: Template) -> None:
    """The deadline the runtime gets is the config's, and the agent's own settings parser takes it."""
    from agent.settings import Settings

    env = runtime_env(template)
    agent = test_config("dev").agentcore
    assert float(env["AGENT_TURN_DEADLINE_SECONDS"]) == agent.turn_deadline_seconds == 45
    assert float(env["AGENT_TOOL_TIMEOUT_SECONDS"]) == agent.agent_tool_timeout_seconds == 20
    limits = {k: v for k, v in env.items() if k.startswith("AGENT_") and isinstance(v, str)}
    local = {
        "AGENT_MODE": "local",
        "LLM_GATEWAY_URL": LLM_URL,
        "TOOL_GATEWAY_URL": "http://127.0.0.1:8000/mcp",
        "LLM_GATEWAY_KEY": "local-key",
    }
    settings = Settings.from_env({**limits, **local, "MODEL_ALIAS": env["MODEL_ALIAS"]})
    assert (settings.turn_deadline_seconds, settings.tool_timeout_seconds) == (45.0, 20.0)


def test_a_tool_timeout_at_or_over_the_turn_deadline_is_refused() -> None:
    from config import ConfigError

    with pytest.raises((ConfigError, ValueError), match="agent_tool_timeout_seconds"):
        test_config("dev", agentcore={"turn_deadline_seconds": 20, "agent_tool_timeout_seconds": 20})


def test_runtime_traces_carry_the_profile_as_environment(template: Template) -> None:
    env = runtime_env(template)
    assert (env["AGENT_ENVIRONMENT"], env["AGENT_SERVICE_NAME"]) == ("dev", "aaf-agent")


def test_runtime_gets_model_prices_when_the_catalog_has_them(tmp_path: Path) -> None:
    entries = [
        {
            "alias": "priced",
            "provider": "bedrock",
            "model_id": "us.amazon.nova-pro-v1:0",
            "input_cost_per_million": 0.8,
            "output_cost_per_million": 3.2,
        },
    ]
    config = test_config("dev", models={"entries": entries, "agent_alias": "priced", "judge_alias": "priced"})
    env = runtime_env(synth(tmp_path / "out", config, agent_source(tmp_path / "agent")).template)
    assert (env["MODEL_INPUT_COST_PER_MILLION"], env["MODEL_OUTPUT_COST_PER_MILLION"]) == ("0.8", "3.2")


def test_runtime_secrets_are_arns_of_the_right_secrets(template: Template) -> None:
    env = runtime_env(template)
    assert "AgentKey" in imported(env["LLM_GATEWAY_KEY_SECRET_ARN"])
    assert "GatewayMachineClientSecret" in imported(env["TOOL_GATEWAY_CLIENT_SECRET_ARN"])
    assert "LangfuseKeys" in imported(env["LANGFUSE_KEYS_SECRET_ARN"])


def test_runtime_ids_come_from_the_resources(template: Template) -> None:
    env = runtime_env(template)
    assert env["MEMORY_ID"]["Fn::GetAtt"][1] == "MemoryId"
    assert "GuardrailGuardrailId" in imported(env["GUARDRAIL_ID"])
    (version_id,) = template.find_resources("AWS::Bedrock::GuardrailVersion")
    assert env["GUARDRAIL_VERSION"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert "KnowledgeBaseKnowledgeBaseId" in imported(env["KNOWLEDGE_BASE_ID"])


SECRETISH = re.compile(r"SECRET|PASSWORD|API_KEY|_KEY$|TOKEN(?!_URL)", re.IGNORECASE)


def all_environments(template: Template) -> dict[str, dict[str, Any]]:
    environments = {"runtime": runtime_env(template)}
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        environments[logical_id] = resource["Properties"].get("Environment", {}).get("Variables", {})
    return environments


def test_no_plaintext_secret_in_any_environment(synthesized: Synth) -> None:
    for owner, env in all_environments(synthesized.template).items():
        for name, value in env.items():
            rendered = json.dumps(value)
            assert "resolve:secretsmanager" not in rendered, (
                f"{owner}.{name} resolves a secret into the environment"
            )
            assert "resolve:ssm-secure" not in rendered, (
                f"{owner}.{name} resolves a secret into the environment"
            )
            if SECRETISH.search(name):
                assert name.endswith("_SECRET_ARN"), f"{owner}.{name} looks like a secret value"
                assert isinstance(value, dict), f"{owner}.{name} must reference a secret resource"


def test_no_secret_value_anywhere_in_the_template(synthesized: Synth) -> None:
    text = (synthesized.outdir / "aaf-agentcore.template.json").read_text()
    assert "SecretString" not in text.replace(
        "{{resolve:secretsmanager:aaf/tavily:SecretString:api_key::}}", ""
    )
    assert "tvly-" not in text
    outputs = json.dumps(synthesized.json.get("Outputs", {}))
    assert "secret" not in outputs.lower()


def test_runtime_runs_in_the_service_subnets_with_its_security_group(template: Template) -> None:
    network = only(template, "AWS::BedrockAgentCore::Runtime")["NetworkConfiguration"]
    assert network["NetworkMode"] == "VPC"
    assert all("servicesSubnet" in imported(s) for s in network["NetworkModeConfig"]["Subnets"])
    group = network["NetworkModeConfig"]["SecurityGroups"][0]["Fn::GetAtt"][0]
    assert group.startswith("RuntimeSecurityGroup")


ACCOUNT, REGION = "123456789012", "us-east-1"
# What `cdk synth` would cache from the account's zone lookup (names only: AZ IDs are not looked up).
ZONE_LOOKUP = {
    f"availability-zones:account={ACCOUNT}:region={REGION}": ["us-east-1a", "us-east-1b", "us-east-1c"]
}
# This account's names for the zones (shuffled per account): us-east-1b is use1-az6, which AgentCore
# does not accept (config/agentcore.py AGENTCORE_RUNTIME_AZ_IDS).
AZ_NAMES = {"use1-az4": "us-east-1a", "use1-az6": "us-east-1b", "use1-az1": "us-east-1c"}


def pinned_config(az_ids: str, **network: Any) -> AppConfig:
    return test_config(
        "dev",
        environment={"account": ACCOUNT, "region": REGION},
        agentcore={"runtime_az_ids": az_ids},
        network={"az_names": AZ_NAMES, **network},
        components={"web_search": False, "observability": "disabled"},
    )


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    root = tmp_path_factory.mktemp("agentcore-pinned")
    config = pinned_config("use1-az1")
    return synth(root / "out", config, agent_source(root / "agent"), langfuse=False, context=ZONE_LOOKUP)


def network_stack(synthesized: Synth) -> cdk.Stack:
    app = synthesized.stack.node.scope
    assert app is not None
    network = app.node.find_child("aaf-network")
    assert isinstance(network, cdk.Stack)
    return network


def runtime_subnet_zones(synthesized: Synth) -> set[str]:
    """The AZ names of the subnets the runtime is configured with (read from the network template)."""
    network = Template.from_stack(network_stack(synthesized)).to_json()
    exports = {
        output["Export"]["Name"]: output["Value"]["Ref"]
        for output in network.get("Outputs", {}).values()
        if "Export" in output
    }
    runtime = only(synthesized.template, "AWS::BedrockAgentCore::Runtime")
    zones = set()
    for subnet in runtime["NetworkConfiguration"]["NetworkModeConfig"]["Subnets"]:
        logical_id = exports[imported(subnet)]
        assert "servicesSubnet" in logical_id
        zones.add(network["Resources"][logical_id]["Properties"]["AvailabilityZone"])
    return zones


def test_runtime_subnets_are_only_in_the_configured_az_ids(pinned: Synth) -> None:
    assert runtime_subnet_zones(pinned) == {
        "us-east-1c"
    }  # use1-az1 in this account; not the VPC's other zone


def test_vpc_is_built_in_the_runtime_zones_first(pinned: Synth) -> None:
    vpc = network_stack(pinned)
    zones = {
        resource["Properties"]["AvailabilityZone"]
        for resource in Template.from_stack(vpc).find_resources("AWS::EC2::Subnet").values()
    }
    # max_azs is 2 in dev: the runtime's zone first, then the region's first other zone from the lookup.
    assert zones == {"us-east-1c", "us-east-1a"}


def test_without_az_ids_the_runtime_uses_every_services_subnet(without_web_search: Synth) -> None:
    runtime = only(without_web_search.template, "AWS::BedrockAgentCore::Runtime")
    assert len(runtime["NetworkConfiguration"]["NetworkModeConfig"]["Subnets"]) == 2


def test_a_zone_the_vpc_lacks_is_named(tmp_path: Path) -> None:
    # One pinned zone, three-AZ VPC: fine. But a mapping naming a zone outside the region's lookup fails.
    config = test_config(
        "dev",
        environment={"account": ACCOUNT, "region": REGION},
        agentcore={"runtime_az_ids": "use1-az2"},
        network={"az_names": {"use1-az2": "us-east-1f"}},
        components={"web_search": False, "observability": "disabled"},
    )
    with pytest.raises(Exception, match=r"us-east-1f"):
        synth(tmp_path / "out", config, agent_source(tmp_path / "agent"), langfuse=False, context=ZONE_LOOKUP)


def test_runtime_may_reach_the_llm_gateway_port(template: Template) -> None:
    ingress = only(template, "AWS::EC2::SecurityGroupIngress")
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (4000, 4000, "tcp")
    assert "LlmGatewaySecurityGroup" in imported(ingress["GroupId"])
    assert ingress["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("RuntimeSecurityGroup")


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://internal-alb.example:4000", 4000),
        ("http://${Token[TOKEN.2366]}", 80),
        ("https://${Token[TOKEN.12]}/", 443),
        ("https://gw.example.com:8443/v1", 8443),
    ],
)
def test_llm_gateway_port_is_read_from_token_urls(url: str, port: int) -> None:
    assert url_port(url) == port


def test_llm_gateway_url_needs_a_scheme() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        url_port("internal-alb.example:4000")


def test_runtime_lifecycle_comes_from_config(template: Template) -> None:
    agentcore = test_config("dev").agentcore
    assert only(template, "AWS::BedrockAgentCore::Runtime")["LifecycleConfiguration"] == {
        "IdleRuntimeSessionTimeout": agentcore.idle_timeout_seconds,
        "MaxLifetime": agentcore.max_lifetime_seconds,
    }


def test_runtime_lifecycle_override_is_applied(tmp_path: Path) -> None:
    config = test_config("dev", agentcore={"idle_timeout_seconds": 600, "max_lifetime_seconds": 3600})
    result = synth(tmp_path / "out", config, agent_source(tmp_path / "agent"))
    assert only(result.template, "AWS::BedrockAgentCore::Runtime")["LifecycleConfiguration"] == {
        "IdleRuntimeSessionTimeout": 600,
        "MaxLifetime": 3600,
    }


# --- agent image asset ---------------------------------------------------------------------------


def docker_assets(outdir: Path) -> dict[str, Any]:
    manifest = json.loads((outdir / "aaf-agentcore.assets.json").read_text())
    return manifest["dockerImages"]  # type: ignore[no-any-return]


def test_agent_image_is_built_for_arm64(synthesized: Synth) -> None:
    images = docker_assets(synthesized.outdir)
    assert len(images) == 1
    assert next(iter(images.values()))["source"]["platform"] == "linux/arm64"


def test_agent_image_is_pinned_by_content_hash(synthesized: Synth) -> None:
    (asset_hash,) = docker_assets(synthesized.outdir)
    uri = json.dumps(only(synthesized.template, "AWS::BedrockAgentCore::Runtime")["AgentRuntimeArtifact"])
    assert f":{asset_hash}" in uri
    assert ":latest" not in uri


def test_agent_code_change_changes_the_image(tmp_path: Path) -> None:
    config = test_config("dev")
    first = synth(tmp_path / "a", config, agent_source(tmp_path / "agent-a", "v1"))
    second = synth(tmp_path / "b", config, agent_source(tmp_path / "agent-b", "v2"))
    assert set(docker_assets(first.outdir)) != set(docker_assets(second.outdir))
    artifact = "AgentRuntimeArtifact"
    runtime = "AWS::BedrockAgentCore::Runtime"
    assert only(first.template, runtime)[artifact] != only(second.template, runtime)[artifact]


def test_missing_dockerfile_is_named(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    with pytest.raises(FileNotFoundError, match="Dockerfile is missing"):
        synth(tmp_path / "out", test_config("dev"), tmp_path / "agent")


def test_default_agent_source_is_the_agent_package() -> None:
    assert Path(__file__).resolve().parents[2] / "agent" == AGENT_DIR


# --- memory --------------------------------------------------------------------------------------


def test_memory_is_encrypted_and_expires_events_per_config(template: Template) -> None:
    memory = only(template, "AWS::BedrockAgentCore::Memory")
    assert memory["EventExpiryDuration"] == test_config("dev").agentcore.memory_event_expiry_days
    assert memory["EncryptionKeyArn"]["Fn::GetAtt"][0].startswith("DataKey")


def test_memory_has_facts_preferences_and_summaries(template: Template) -> None:
    strategies = only(template, "AWS::BedrockAgentCore::Memory")["MemoryStrategies"]
    kinds = {next(iter(s)): next(iter(s.values()))["Namespaces"] for s in strategies}
    assert kinds == {
        "SemanticMemoryStrategy": [MEMORY_NAMESPACES["facts"]],
        "UserPreferenceMemoryStrategy": [MEMORY_NAMESPACES["preferences"]],
        "SummaryMemoryStrategy": [MEMORY_NAMESPACES["summaries"]],
    }


def test_memory_namespaces_are_per_actor_and_end_with_a_slash(template: Template) -> None:
    strategies = only(template, "AWS::BedrockAgentCore::Memory")["MemoryStrategies"]
    namespaces = [ns for s in strategies for ns in next(iter(s.values()))["Namespaces"]]
    assert namespaces
    for namespace in namespaces:
        assert namespace.startswith("/actors/{actorId}/") and namespace.endswith("/"), namespace
    # no namespace is a prefix of another actor's: the actor id is followed by a slash in every one
    assert all(ns.count("{actorId}/") == 1 for ns in namespaces)


# --- tool gateway --------------------------------------------------------------------------------


def test_gateway_speaks_mcp_and_is_encrypted(template: Template) -> None:
    gateway = only(template, "AWS::BedrockAgentCore::Gateway")
    assert gateway["ProtocolType"] == "MCP"
    assert gateway["KmsKeyArn"]["Fn::GetAtt"][0].startswith("DataKey")


# AgentCore developer guide, gateway-using.html: "AgentCore Gateway supports the following MCP versions:
# 2026-07-28, 2025-11-25, 2025-06-18, and 2025-03-26."
DOCUMENTED_GATEWAY_MCP_VERSIONS = {"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"}


def test_gateway_accepts_exactly_the_documented_mcp_versions(template: Template) -> None:
    versions = only(template, "AWS::BedrockAgentCore::Gateway")["ProtocolConfiguration"]["Mcp"][
        "SupportedVersions"
    ]
    assert versions == list(GATEWAY_MCP_VERSIONS)
    assert set(versions) == DOCUMENTED_GATEWAY_MCP_VERSIONS
    assert len(set(versions)) == len(versions)


def test_pinned_mcp_client_can_negotiate_with_the_gateway(template: Template) -> None:
    from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS
    from mcp.types import LATEST_PROTOCOL_VERSION

    versions = set(
        only(template, "AWS::BedrockAgentCore::Gateway")["ProtocolConfiguration"]["Mcp"]["SupportedVersions"]
    )
    assert versions & set(SUPPORTED_PROTOCOL_VERSIONS)
    # The client opens with its latest version; the gateway accepts it, so no downgrade is negotiated.
    assert LATEST_PROTOCOL_VERSION in versions


def test_gateway_accepts_only_the_gateway_machine_client_with_the_tools_scope(template: Template) -> None:
    gateway = only(template, "AWS::BedrockAgentCore::Gateway")
    assert gateway["AuthorizerType"] == "CUSTOM_JWT"
    jwt_config = gateway["AuthorizerConfiguration"]["CustomJWTAuthorizer"]
    assert [imported(c) for c in jwt_config["AllowedClients"]] == [
        "aaf-identity:ExportsOutputRefUserPoolGatewayMachineClient596007BFA3DD381C"
    ]
    assert jwt_config["AllowedScopes"] == ["agentic-foundation/tools.invoke"]
    assert "/.well-known/openid-configuration" in json.dumps(jwt_config["DiscoveryUrl"])


def test_gateway_request_interceptor_gets_the_headers(template: Template) -> None:
    interceptors = only(template, "AWS::BedrockAgentCore::Gateway")["InterceptorConfigurations"]
    (interceptor,) = [i for i in interceptors if i["InterceptionPoints"] == ["REQUEST"]]
    assert interceptor["InputConfiguration"] == {"PassRequestHeaders": True}
    function = lambda_by_handler(template, "functions.interceptor.handler.handler")
    assert interceptor["Interceptor"]["Lambda"]["Arn"] == {"Fn::GetAtt": [function["id"], "Arn"]}


def test_interceptor_is_configured_for_the_pool_and_actor_clients(template: Template) -> None:
    env = lambda_by_handler(template, "functions.interceptor.handler.handler")["Environment"]["Variables"]
    assert env["ACTOR_TARGETS"] == "tickets"
    assert "cognito-idp." in json.dumps(env["USER_POOL_ISSUER"])
    clients = json.dumps(env["ACTOR_CLIENT_IDS"])
    for client in ("BrowserClient", "CiMachineClient", "EvaluationMachineClient"):
        assert client in clients
    assert "GatewayMachineClient" not in clients


def test_tickets_target_publishes_the_ticket_specs(template: Template) -> None:
    target = targets(template)["tickets"]
    lambda_config = target["TargetConfiguration"]["Mcp"]["Lambda"]
    function = lambda_by_handler(template, "functions.tickets.handler.handler")
    assert lambda_config["LambdaArn"] == {"Fn::GetAtt": [function["id"], "Arn"]}
    published = {t["Name"]: t["InputSchema"] for t in lambda_config["ToolSchema"]["InlinePayload"]}
    expected = {s.name: s for s in specs.specs_for("tickets")}
    assert set(published) == set(expected)
    for name, schema in published.items():
        # The gateway schema of an identity target declares the (optional) caller argument the REQUEST
        # interceptor fills (tools/specs.py gateway_input_schema); it is never required of the client.
        assert set(schema.get("Properties", {})) == set(expected[name].gateway_input_schema["properties"])
        assert schema.get("Required", []) == list(expected[name].required)
        assert specs.IDENTITY_ARGUMENT not in schema.get("Required", [])


def test_knowledge_target_publishes_the_search_spec(template: Template) -> None:
    lambda_config = targets(template)["knowledge"]["TargetConfiguration"]["Mcp"]["Lambda"]
    (tool,) = lambda_config["ToolSchema"]["InlinePayload"]
    spec = specs.spec("search_knowledge_base")
    assert (tool["Name"], tool["Description"]) == (spec.name, spec.description)
    assert set(tool["InputSchema"]["Properties"]) == {"query", "max_results"}
    function = lambda_by_handler(template, "functions.knowledge.handler.handler")
    assert lambda_config["LambdaArn"] == {"Fn::GetAtt": [function["id"], "Arn"]}
    assert "KnowledgeBaseKnowledgeBaseId" in imported(
        function["Environment"]["Variables"]["KNOWLEDGE_BASE_ID"]
    )


def test_knowledge_function_may_only_retrieve_from_the_knowledge_base(template: Template) -> None:
    retrieve = [s for s in policy_statements(template) if "bedrock:Retrieve" in as_list(s["Action"])]
    assert len(retrieve) == 1
    assert as_list(retrieve[0]["Action"]) == ["bedrock:Retrieve"]
    assert "KnowledgeBaseKnowledgeBaseArn" in imported(retrieve[0]["Resource"])


def test_web_search_target_uses_tavily_with_an_api_key_provider(template: Template) -> None:
    target = targets(template)["web-search"]
    (credential,) = target["CredentialProviderConfigurations"]
    assert credential["CredentialProviderType"] == "API_KEY"
    provider = credential["CredentialProvider"]["ApiKeyCredentialProvider"]
    assert (
        provider["CredentialLocation"],
        provider["CredentialParameterName"],
        provider["CredentialPrefix"],
    ) == (
        "HEADER",
        "Authorization",
        "Bearer ",
    )
    document = json.loads(target["TargetConfiguration"]["Mcp"]["OpenApiSchema"]["InlinePayload"])
    assert document == openapi_document()
    operation = document["paths"]["/search"]["post"]
    assert operation["operationId"] == "web_search"
    assert (
        operation["requestBody"]["content"]["application/json"]["schema"]
        == specs.spec("web_search").input_schema
    )
    assert document["servers"] == [{"url": "https://api.tavily.com"}]


def test_tavily_key_is_a_deploy_time_secret_reference(template: Template) -> None:
    provider = only(template, "AWS::BedrockAgentCore::ApiKeyCredentialProvider")
    assert provider["ApiKey"] == "{{resolve:secretsmanager:aaf/tavily:SecretString:api_key::}}"


def test_web_search_is_absent_when_disabled(without_web_search: Synth) -> None:
    assert set(targets(without_web_search.template)) == {"tickets", "knowledge"}
    without_web_search.template.resource_count_is("AWS::BedrockAgentCore::ApiKeyCredentialProvider", 0)


def test_runtime_without_langfuse_has_no_tracing_settings(without_web_search: Synth) -> None:
    env = runtime_env(without_web_search.template)
    assert "LANGFUSE_HOST" not in env and "LANGFUSE_KEYS_SECRET_ARN" not in env


# --- tickets storage -----------------------------------------------------------------------------


def test_tickets_table_is_on_demand_with_pitr_and_kms(template: Template) -> None:
    table = only(template, "AWS::DynamoDB::Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0].startswith("DataKey")


def test_tickets_table_keys_match_the_repository(template: Template) -> None:
    from tools.tickets import DynamoTicketRepository as Repo

    table = only(template, "AWS::DynamoDB::Table")
    assert table["KeySchema"] == [
        {"AttributeName": Repo.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": Repo.SORT_KEY, "KeyType": "RANGE"},
    ]
    (index,) = table["LocalSecondaryIndexes"]
    assert index["IndexName"] == Repo.INDEX_NAME
    assert index["KeySchema"][1] == {"AttributeName": Repo.INDEX_SORT_KEY, "KeyType": "RANGE"}
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_dev_tickets_table_is_destroyed_with_the_stack(synthesized: Synth) -> None:
    (table,) = synthesized.template.find_resources("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Delete"


def test_tickets_function_may_use_the_table_key(template: Template) -> None:
    function = lambda_by_handler(template, "functions.tickets.handler.handler")
    role = function["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for r in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in r["Properties"]["Roles"]
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("kms:") for a in as_list(s["Action"]))
    ]
    assert len(statements) == 1
    assert sorted(as_list(statements[0]["Action"])) == [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    ]
    assert statements[0]["Resource"]["Fn::GetAtt"][0].startswith("DataKey")


def test_tickets_function_has_only_item_level_table_access(template: Template) -> None:
    statements = [
        s for s in policy_statements(template) if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    assert len(statements) == 1
    assert sorted(as_list(statements[0]["Action"])) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ]


# --- functions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tickets", "knowledge", "interceptor"])
def test_tool_functions_run_arm64_in_the_vpc_with_tracing(template: Template, name: str) -> None:
    function = lambda_by_handler(template, f"functions.{name}.handler.handler")
    assert function["Architectures"] == ["arm64"]
    assert function["Runtime"].startswith("python3.")
    assert function["VpcConfig"]["SubnetIds"]
    assert function["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize(
    ("name", "modules"),
    [
        ("tickets", {"tickets", "dispatch", "validation", "errors"}),
        ("knowledge", {"knowledge", "dispatch", "validation", "errors"}),
        ("interceptor", set()),
    ],
)
def test_function_packages_hold_the_handler_and_only_its_tools(
    synthesized: Synth, name: str, modules: set[str]
) -> None:
    function = lambda_by_handler(synthesized.template, f"functions.{name}.handler.handler")
    asset_key = function["Code"]["S3Key"].split(".")[0]
    package = synthesized.outdir / f"asset.{asset_key}"
    files = {str(p.relative_to(package)) for p in package.rglob("*.py")}
    assert f"functions/{name}/handler.py" in files
    assert {"functions/common.py", "tools/specs.py"} <= files
    # top-level entries of tools/ (a module, or a package such as tools/tickets/) other than the shared ones
    shipped_tools = {Path(f).parts[1].removesuffix(".py") for f in files if f.startswith("tools/")}
    shipped_tools -= {"__init__", "specs"}
    assert shipped_tools == modules
    assert not any(f.startswith(("agent/", "stacks/", "tests/")) for f in files)


# --- IAM -----------------------------------------------------------------------------------------

RESOURCE_WILDCARD_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def test_no_statement_grants_a_wildcard_action(template: Template) -> None:
    for statement in policy_statements(template):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), statement


def test_wildcard_resources_only_for_actions_without_resource_scoping(template: Template) -> None:
    for statement in policy_statements(template):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= RESOURCE_WILDCARD_ACTIONS, statement


def test_metrics_wildcard_is_limited_to_the_agentcore_namespace(template: Template) -> None:
    metrics = [s for s in policy_statements(template) if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert metrics and all(
        s["Condition"]["StringEquals"]["cloudwatch:namespace"] == "bedrock-agentcore" for s in metrics
    )


def runtime_role_statements(template: Template) -> list[dict[str, Any]]:
    runtime = only(template, "AWS::BedrockAgentCore::Runtime")
    role_id = runtime["RoleArn"]["Fn::GetAtt"][0]
    statements = []
    for resource in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_guardrail_version_is_published_here_from_the_guardrail_id(template: Template) -> None:
    version = only(template, "AWS::Bedrock::GuardrailVersion")

    assert "GuardrailGuardrailId" in imported(version["GuardrailIdentifier"])
    # The policy-hash description is copied: a policy change replaces this version too.
    assert version["Description"] == STANDIN_POLICY_DESCRIPTION


def test_no_guardrail_version_crosses_stacks(template: Template) -> None:
    assert "GuardrailVersionVersion" not in json.dumps(template.to_json())


def test_runtime_role_applies_only_the_foundation_guardrail(template: Template) -> None:
    guardrail = [
        s for s in runtime_role_statements(template) if "bedrock:ApplyGuardrail" in as_list(s["Action"])
    ]
    assert len(guardrail) == 1
    assert "GuardrailGuardrailArn" in imported(guardrail[0]["Resource"])


def test_runtime_role_reads_exactly_its_three_secrets(template: Template) -> None:
    reads = [
        s
        for s in runtime_role_statements(template)
        if "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    resources = sorted(imported(s["Resource"]) for s in reads)
    assert len(resources) == 3
    assert [
        any(k in r for r in resources) for k in ("AgentKey", "GatewayMachineClientSecret", "LangfuseKeys")
    ] == [True] * 3
    assert not any("EvalKey" in r for r in resources)


def test_runtime_role_may_apply_the_encrypted_guardrail(template: Template) -> None:
    # Bedrock user guide, guardrails-permissions-kms.html: a caller of a guardrail encrypted with a
    # customer-managed key needs ApplyGuardrail on the guardrail AND kms:Decrypt on its key.
    assert_may_apply_guardrail(
        runtime_role_statements(template), guardrail_arn="GuardrailGuardrailArn", key_arn="GuardrailKey"
    )


def test_runtime_role_decrypts_each_key_only_through_the_service_that_uses_it(template: Template) -> None:
    decrypts = [s for s in runtime_role_statements(template) if "kms:Decrypt" in as_list(s["Action"])]
    via = {
        next(k for k in ("LlmGatewayKey", "GuardrailKey") if k in imported(s["Resource"])): json.dumps(
            s["Condition"]["StringEquals"]["kms:ViaService"]
        )
        for s in decrypts
    }
    assert len(decrypts) == 2
    assert "secretsmanager." in via["LlmGatewayKey"]
    assert "bedrock." in via["GuardrailKey"]


def test_reading_secrets_adds_nothing_to_the_secrets_stack(synthesized: Synth) -> None:
    standins = json.dumps(Template.from_stack(synthesized.standins).to_json())
    assert "aaf-agentcore" not in standins and "RuntimeExecutionRole" not in standins


def test_runtime_role_memory_access_is_scoped_to_the_memory(template: Template) -> None:
    memory = [
        s
        for s in runtime_role_statements(template)
        if any(
            a in as_list(s["Action"])
            for a in ("bedrock-agentcore:CreateEvent", "bedrock-agentcore:RetrieveMemoryRecords")
        )
    ]
    assert memory
    for statement in memory:
        assert statement["Resource"]["Fn::GetAtt"][1] == "MemoryArn"


def test_runtime_role_pulls_only_the_asset_repository(template: Template) -> None:
    pulls = [s for s in runtime_role_statements(template) if "ecr:BatchGetImage" in as_list(s["Action"])]
    assert len(pulls) == 1
    assert "container-assets" in json.dumps(pulls[0]["Resource"])


# --- schema conversion ---------------------------------------------------------------------------


def test_schema_conversion_keeps_constraints_in_the_description() -> None:
    converted = schema_definition(specs.spec("update_ticket_status").input_schema)
    status = converted.properties["status"]  # type: ignore[index]
    assert "One of: open, in_progress, resolved, closed." in (status.description or "")
    assert converted.required == ["ticket_id", "status"]


def test_schema_conversion_rejects_unknown_types() -> None:
    with pytest.raises(ValueError, match="unsupported JSON schema type"):
        schema_definition({"type": "null"})


# --- gates ---------------------------------------------------------------------------------------


def test_cdk_nag_has_no_open_findings_in_this_stack(synthesized: Synth) -> None:
    report = read_validation_report(synthesized.outdir)
    assert [f for f in report.unacknowledged if "aaf-agentcore/" in f] == []


def test_cfn_lint_reports_no_errors(synthesized: Synth) -> None:
    errors, _warnings = lint_template(synthesized.outdir / "aaf-agentcore.template.json")
    assert errors == ()


def test_stack_refuses_missing_machine_clients(tmp_path: Path) -> None:
    config = test_config("dev")
    app = cdk.App(outdir=str(tmp_path))
    network = NetworkStack(app, config=config)
    identity = IdentityStack(app, config=config)
    with pytest.raises(ValueError, match="machine_clients lacks"):
        AgentCoreStack(
            app,
            config=config,
            vpc=network.vpc,
            user_pool=identity.user_pool,
            browser_client=identity.browser_client,
            machine_clients={"gateway": identity.machine_clients["gateway"]},
            token_endpoint=identity.token_endpoint,
            knowledge_base=None,  # type: ignore[arg-type]
            guardrail=None,  # type: ignore[arg-type]
            guardrail_version=None,  # type: ignore[arg-type]
            llm=None,  # type: ignore[arg-type]
            langfuse=None,
        )
