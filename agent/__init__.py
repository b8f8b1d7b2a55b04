"""The customer-service agent served on AgentCore Runtime (and locally by `make local`).

Import nothing heavy here: `agent.main` must answer `/ping` before Strands, OpenAI and MCP are loaded.
"""
