"""The whole app in its component modes: an external LLM gateway with external or disabled Langfuse.

Each mode synthesizes through `app.build` with every gate (cdk-nag, cfn-lint), like `make synth`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.synth_summary import lint_template, stack_templates
from stacks.compliance import read_validation_report
from tests.conftest import synth_app
from tests.factories import test_config

EXTERNAL_GATEWAY = {
    "external_url": "https://llm.example.com/",
    "external_agent_key_secret_name": "team/llm/agent",
    "external_eval_key_secret_name": "team/llm/eval",
}
EXTERNAL_LANGFUSE = {
    "external_host": "https://cloud.langfuse.com",
    "external_keys_secret_name": "aaf/langfuse-keys",
}


@pytest.fixture(scope="module", params=["external", "disabled"])
def assembly(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev app with `components.llm_gateway=external` and the observability mode of the param."""
    observability_mode = str(request.param)
    config = test_config(
        "dev",
        components={"llm_gateway": "external", "observability": observability_mode},
        llm_gateway=EXTERNAL_GATEWAY,
        observability=EXTERNAL_LANGFUSE if observability_mode == "external" else {},
    )
    outdir = tmp_path_factory.mktemp(f"app-gateway-external-observability-{observability_mode}")
    synth_app(config, outdir)
    return outdir


def _templates(assembly: Path) -> dict[str, dict[str, Any]]:
    return {name: json.loads(path.read_text()) for name, path in stack_templates(assembly).items()}


def _runtime_environment(assembly: Path) -> dict[str, Any]:
    template = _templates(assembly)["aaf-agentcore"]
    (runtime,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::BedrockAgentCore::Runtime"]
    return dict(runtime["Properties"]["EnvironmentVariables"])


def test_no_gateway_or_langfuse_stack_is_created(assembly: Path) -> None:
    names = set(stack_templates(assembly))

    assert "aaf-llm-gateway" not in names
    assert "aaf-observability" not in names
    assert {"aaf-network", "aaf-agentcore", "aaf-operations"} <= names


def test_every_stack_has_resources(assembly: Path) -> None:
    # A template without resources is invalid CloudFormation (cfn-lint E1001).
    empty = [name for name, template in _templates(assembly).items() if not template.get("Resources")]

    assert empty == []


def test_nag_has_no_unacknowledged_error(assembly: Path) -> None:
    report = read_validation_report(assembly)

    assert report.unacknowledged == ()
    assert report.acknowledged > 0  # the packs ran


def test_cfn_lint_finds_no_error(assembly: Path) -> None:
    errors = [error for path in stack_templates(assembly).values() for error in lint_template(path)[0]]

    assert errors == []


def test_agent_uses_the_external_gateway_and_its_key_secret(assembly: Path) -> None:
    environment = _runtime_environment(assembly)

    assert environment["LLM_GATEWAY_URL"] == "https://llm.example.com"
    assert "secret:team/llm/agent" in json.dumps(environment["LLM_GATEWAY_KEY_SECRET_ARN"])


def test_agent_tracing_follows_the_observability_mode(assembly: Path) -> None:
    environment = _runtime_environment(assembly)

    if "observability-external" in assembly.name:
        assert environment["LANGFUSE_HOST"] == "https://cloud.langfuse.com"
    else:
        assert "LANGFUSE_HOST" not in environment
    assert environment["DISABLE_ADOT_OBSERVABILITY"] == "true"  # in every mode


# --- a concrete account and region, as a real first deploy synthesizes it ------------------------------

ACCOUNT, REGION = "123456789012", "us-east-1"
ZONE_LOOKUP = {
    f"availability-zones:account={ACCOUNT}:region={REGION}": ["us-east-1a", "us-east-1b", "us-east-1c"]
}


@pytest.fixture(scope="module")
def environment_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prod with every component, a literal account/region and the runtime pinned to AgentCore's zones.

    cdk-nag renders a literal region/account in finding ids (not `<AWS::Region>`), so acknowledgements
    written for an environment-agnostic synth alone would leave a real deploy's synth red."""
    import aws_cdk as cdk

    import app as foundation_app
    from stacks.compliance import apply_cost_tags, enable_compliance_checks

    config = test_config(
        "prod",
        environment={"account": ACCOUNT, "region": REGION},
        components={"web_search": True},
        agentcore={"runtime_az_ids": "use1-az1,use1-az2"},
        network={"az_names": {"use1-az1": "us-east-1b", "use1-az2": "us-east-1c"}},
    )
    outdir = tmp_path_factory.mktemp("app-prod-environment")
    app = cdk.App(outdir=str(outdir), context=ZONE_LOOKUP)
    foundation_app.build(app, config)
    apply_cost_tags(app, config)
    enable_compliance_checks(app)
    app.synth()
    return outdir


def test_environment_specific_synth_passes_every_gate(environment_assembly: Path) -> None:
    assert read_validation_report(environment_assembly).unacknowledged == ()
    errors = [e for path in stack_templates(environment_assembly).values() for e in lint_template(path)[0]]
    assert errors == []
    rendered = json.dumps(_templates(environment_assembly)["aaf-agentcore"])
    assert "<AWS::Region>" not in rendered and ACCOUNT in rendered
