#!/usr/bin/env python3
"""CDK entry point: load the typed config, wire the stacks, enable the compliance gates."""

from __future__ import annotations

import aws_cdk as cdk

from stacks.compliance import apply_cost_tags, enable_compliance_checks
from stacks.config import AppConfig, load_config
from stacks.guardrails import GuardrailsStack
from stacks.identity import IdentityStack
from stacks.knowledge_base import KnowledgeBaseStack
from stacks.network import NetworkStack


def build(app: cdk.App, config: AppConfig) -> dict[str, cdk.Stack]:
    """Create every stack of the foundation, passing dependencies as typed constructor arguments."""
    network = NetworkStack(app, config=config)
    identity = IdentityStack(app, config=config)
    knowledge_base = KnowledgeBaseStack(app, config=config)
    guardrails = GuardrailsStack(app, config=config)
    return {
        "network": network,
        "identity": identity,
        "knowledge_base": knowledge_base,
        "guardrails": guardrails,
    }


def main() -> None:
    app = cdk.App()
    config = load_config(app.node.get_all_context())
    build(app, config)
    apply_cost_tags(app, config)
    enable_compliance_checks(app)
    app.synth()


if __name__ == "__main__":
    main()
