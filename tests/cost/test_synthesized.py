"""The model on real synthesized templates: every resource of network, observability, operations and the
LLM gateway is priced (nothing unknown), and the dev idle costs are what the model computes from config."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest

from cost.model import Estimate
from cost.report import estimate_assembly
from stacks.guardrails import GuardrailsStack
from stacks.llm_gateway import LlmGatewayStack
from stacks.network import NetworkStack
from stacks.observability import ObservabilityStack
from stacks.operations import OperationsStack
from tests.factories import test_config


@pytest.fixture(scope="module")
def estimate(tmp_path_factory: pytest.TempPathFactory) -> Estimate:
    config = test_config("dev")
    outdir = tmp_path_factory.mktemp("cost-dev")
    app = cdk.App(outdir=str(outdir))
    network = NetworkStack(app, config=config)
    langfuse = ObservabilityStack(app, config=config, vpc=network.vpc)
    OperationsStack(
        app,
        config=config,
        ecs_services={"langfuse-web": langfuse.web},
        databases={"langfuse": langfuse.database},
        target_groups={"langfuse-web": langfuse.target_group},
    )
    cdk.Tags.of(app).add("profile", "dev")
    app.synth()
    return estimate_assembly(Path(outdir))


def test_every_resource_type_is_known(estimate: Estimate) -> None:
    assert estimate.unpriced == []


def test_profile_is_read_from_the_templates(estimate: Estimate) -> None:
    assert estimate.profile == "dev"


def test_dev_langfuse_idle_cost(estimate: Estimate) -> None:
    hours = 730
    spot = (
        # web and worker: 1 vCPU / 4 GB each in dev (Langfuse's documented 4 GiB; 1 of its 2 vCPU)
        (1 * 0.01334053 + 4 * 0.00146489)
        + (1 * 0.01334053 + 4 * 0.00146489)
        + (0.5 * 0.01334053 + 2 * 0.00146489)  # ClickHouse 0.5 vCPU / 2 GB
    )
    expected = (
        spot * hours  # web, worker, ClickHouse on Fargate Spot
        + 0.016 * hours  # PostgreSQL db.t4g.micro
        + 20 * 0.115  # its 20 GB gp3 storage
        + 0.0225 * hours  # internal ALB
        + 0.0128 * hours  # one Valkey cache.t4g.micro
        + 10 * 0.40  # secrets
        + 1.00  # KMS key
        + 0.50  # Cloud Map private zone
        + 0.30  # ~1 GB EFS
        + 5 * (0.05 * 0.50 + 0.05 * 0.03)  # five idle log groups, 30-day retention
    )
    assert estimate.by_stack()["aaf-observability"] == pytest.approx(expected, abs=0.02)


def test_dev_network_idle_cost(estimate: Estimate) -> None:
    # one t4g.nano NAT instance with an 8 GB gp3 root volume and a public IPv4 address, the network key,
    # the flow-log group (14 days); no NAT gateway and no interface endpoints in dev
    expected = 0.0042 * 730 + 8 * 0.08 + 0.005 * 730 + 1.00 + 0.05 * 0.50 + 0.05 * 14 / 30 * 0.03
    assert estimate.by_stack()["aaf-network"] == pytest.approx(expected, abs=0.01)


@pytest.fixture(scope="module")
def gateway_estimate(tmp_path_factory: pytest.TempPathFactory) -> Estimate:
    config = test_config("dev")
    outdir = tmp_path_factory.mktemp("cost-gateway-dev")
    app = cdk.App(outdir=str(outdir))
    network = NetworkStack(app, config=config)
    guardrails = GuardrailsStack(app, config=config)
    LlmGatewayStack(
        app,
        config=config,
        vpc=network.vpc,
        guardrail=guardrails.guardrail,
        guardrail_version=guardrails.guardrail_version,
        langfuse=None,
    )
    cdk.Tags.of(app).add("profile", "dev")
    app.synth()
    return estimate_assembly(Path(outdir))


def test_dev_gateway_resources_are_all_priced(gateway_estimate: Estimate) -> None:
    assert gateway_estimate.unpriced == []


def test_dev_gateway_idle_cost(gateway_estimate: Estimate) -> None:
    hours = 730
    expected = (
        (0.5 * 0.01334053 + 2 * 0.00146489) * hours  # LiteLLM 0.5 vCPU / 2 GB on Fargate Spot (x86)
        + 0.016 * hours  # PostgreSQL db.t4g.micro, single AZ
        + 20 * 0.115  # its 20 GB gp3 storage
        # the admin console (llm_gateway.admin_ui) needs the internal ALB as CloudFront's VPC origin, so
        # dev's `load_balancer: false` (Cloud Map instead) only holds with admin_ui: false
        + 0.0225 * hours
        + 7 * 0.40  # secrets: master key and its body, salt, two virtual keys, database, console login
        + 1.00  # KMS key
        + 5 * (0.05 * 0.50 + 0.05 * 0.03)  # five idle log groups, 30-day retention; no Container Insights
    )
    assert gateway_estimate.by_stack()["aaf-llm-gateway"] == pytest.approx(expected, abs=0.02)
