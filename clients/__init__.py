"""Clients of the foundation's HTTP surfaces, shared by the chat, the evaluation runner and CLIs.

Nothing here imports Streamlit: `clients.oauth` (Cognito managed login with PKCE, refresh, client
credentials), `clients.agentcore` (the agent contract of docs/agent-api.md, local or AgentCore Runtime)
and `clients.langfuse` (user feedback as Langfuse scores).
"""
