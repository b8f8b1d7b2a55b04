#!/usr/bin/env python3
"""CDK entry point: load the typed config, wire the stacks, enable the compliance gates."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.compliance import apply_cost_tags, enable_compliance_checks
from stacks.config import AppConfig, load_config
from stacks.guardrails import GuardrailsStack
from stacks.identity import IdentityStack
from stacks.knowledge_base import KnowledgeBaseStack
from stacks.llm_gateway import LlmGatewayStack
from stacks.network import NetworkStack
from stacks.observability import ObservabilityStack, external_connection


def build(app: cdk.App, config: AppConfig) -> dict[str, cdk.Stack]:
    """Create every stack of the foundation, passing dependencies as typed constructor arguments."""
    network = NetworkStack(app, config=config)
    identity = IdentityStack(app, config=config)
    knowledge_base = KnowledgeBaseStack(app, config=config)
    guardrails = GuardrailsStack(app, config=config)
    observability = (
        ObservabilityStack(
            app,
            config=config,
            vpc=network.vpc,
            service_subnets=network.service_subnets,
            data_subnets=network.data_subnets,
        )
        if config.components.observability == "self_hosted"
        else None
    )
    langfuse = observability.connection if observability else external_connection(network, config)
    llm_gateway = LlmGatewayStack(
        app,
        config=config,
        vpc=network.vpc,
        guardrail=guardrails.guardrail,
        guardrail_version=guardrails.guardrail_version,
        langfuse=langfuse,
    )
    stacks: dict[str, cdk.Stack] = {
        "network": network,
        "identity": identity,
        "knowledge_base": knowledge_base,
        "guardrails": guardrails,
        "llm_gateway": llm_gateway,
    }
    if observability is not None:
        stacks["observability"] = observability
    return stacks


def main() -> None:
    app = cdk.App()
    config = load_config(app.node.get_all_context())
    build(app, config)
    apply_cost_tags(app, config)
    enable_compliance_checks(app)
    app.synth()


if __name__ == "__main__":
    main()
