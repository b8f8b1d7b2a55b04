#!/usr/bin/env python3
"""CDK entry point: load the typed config, wire the stacks, enable the compliance gates."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from config import AppConfig, ConfigError, load_config
from stacks.agentcore import AgentCoreStack
from stacks.compliance import apply_cost_tags, enable_compliance_checks
from stacks.edge import EdgeStack
from stacks.evaluation import EvaluationStack
from stacks.frontend import FrontendStack
from stacks.guardrails import GuardrailsStack
from stacks.identity import IdentityStack
from stacks.knowledge_base import KnowledgeBaseStack
from stacks.llm_gateway import LlmGatewayStack, external_endpoint
from stacks.network import NetworkStack
from stacks.observability import ObservabilityStack, external_connection
from stacks.operations import OperationsInputs, OperationsStack


def build(app: cdk.App, config: AppConfig) -> dict[str, cdk.Stack]:
    """Create every stack of the foundation, passing dependencies as typed constructor arguments."""
    network = NetworkStack(app, config=config)
    # The chat's public entry comes before identity: the browser client names its URL (stacks/edge.py).
    edge = (
        EdgeStack(app, config=config, vpc=network.vpc, service_subnets=network.service_subnets)
        if config.components.frontend
        else None
    )
    identity = IdentityStack(app, config=config, chat=edge.chat if edge is not None else None)
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
    llm_gateway = (
        LlmGatewayStack(
            app,
            config=config,
            vpc=network.vpc,
            guardrail=guardrails.guardrail,
            guardrail_version=guardrails.guardrail_version,
            langfuse=langfuse,
        )
        if config.components.llm_gateway == "self_hosted"
        else None
    )
    llm = llm_gateway.endpoint if llm_gateway else external_endpoint(network, config)
    agentcore = AgentCoreStack(
        app,
        config=config,
        vpc=network.vpc,
        service_subnets=network.service_subnets,
        user_pool=identity.user_pool,
        browser_client=identity.browser_client,
        machine_clients=identity.machine_clients,
        token_endpoint=identity.token_endpoint,
        knowledge_base=knowledge_base.knowledge_base,
        guardrail=guardrails.guardrail,
        guardrail_version=guardrails.guardrail_version,
        llm=llm,
        langfuse=langfuse,
    )
    frontend = (
        FrontendStack(
            app,
            config=config,
            vpc=network.vpc,
            service_subnets=network.service_subnets,
            edge=edge.chat,
            user_pool=identity.user_pool,
            browser_client=identity.browser_client,
            domain=identity.domain,
            runtime=agentcore.runtime,
            langfuse=langfuse,
            docs_bucket=knowledge_base.docs_bucket,
        )
        if edge is not None
        else None
    )
    evaluation = (
        EvaluationStack(
            app,
            config=config,
            vpc=network.vpc,
            service_subnets=network.service_subnets,
            llm=llm,
            langfuse=langfuse,
            runtime_arn=agentcore.runtime_arn,
            machine_client=identity.machine_clients["evaluation"],
            token_endpoint=identity.token_endpoint,
        )
        if langfuse is not None  # online evaluation reads traces from Langfuse
        else None
    )
    watched = OperationsInputs()
    if edge is not None and frontend is not None:
        watched.add_service("chat", frontend.service, edge.target_group)
    if llm_gateway is not None and llm_gateway.service is not None and llm_gateway.database is not None:
        watched.add_service("llm-gateway", llm_gateway.service, llm_gateway.target_group)
        watched.databases["llm-gateway"] = llm_gateway.database
    if observability is not None:
        watched.add_service("langfuse-web", observability.web, observability.target_group)
        watched.add_service("langfuse-worker", observability.worker)
        watched.add_service("clickhouse", observability.clickhouse)
        watched.databases["langfuse"] = observability.database
    operations = OperationsStack(
        app,
        config=config,
        runtime=agentcore.runtime,
        tool_gateway=agentcore.gateway,
        llm_gateway_load_balancer=llm_gateway.load_balancer if llm_gateway is not None else None,
        target_groups=watched.target_groups,
        ecs_services=watched.services,
        databases=watched.databases,
        knowledge_base=knowledge_base.knowledge_base,
        ticket_functions=[agentcore.tools.tickets_function],
    )
    stacks: dict[str, cdk.Stack] = {
        "network": network,
        "identity": identity,
        "knowledge_base": knowledge_base,
        "guardrails": guardrails,
        "agentcore": agentcore,
        "operations": operations,
    }
    if llm_gateway is not None:
        stacks["llm_gateway"] = llm_gateway
    if observability is not None:
        stacks["observability"] = observability
    if edge is not None:
        stacks["edge"] = edge
    if frontend is not None:
        stacks["frontend"] = frontend
    if evaluation is not None:
        stacks["evaluation"] = evaluation
    return stacks


def main() -> None:
    app = cdk.App()
    try:
        config = load_config(app.node.get_all_context())
    except ConfigError as error:
        sys.exit(f"error: {error}")  # the message names the key; a traceback would only hide it
    build(app, config)
    apply_cost_tags(app, config)
    enable_compliance_checks(app)
    app.synth()


if __name__ == "__main__":
    main()
