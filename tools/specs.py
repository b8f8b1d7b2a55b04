"""The tools the agent can call, defined once.

The AgentCore Gateway targets (deployed) and the local MCP tool server (laptop) are both built from
these specs, so the agent sees the same names, descriptions and JSON schemas in both places. The caller's
identity is never an argument the model sees or fills: the ticket owner comes from the validated token
(deployed) or the `X-Actor-Id` header (local mode).

Deployed, the identity travels as one declared argument, IDENTITY_ARGUMENT, that only the gateway
schema of the targets in IDENTITY_TARGETS carries (`ToolSpec.gateway_input_schema`): the gateway's
REQUEST interceptor always overwrites it with the verified caller, and its RESPONSE interceptor removes
it from every tool listing (`public_input_schema`), so the model never sees it. `ToolSpec.input_schema`
is the public schema (local server, model) and never contains it. See docs/tool-gateway.md, "Identity flow".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Target = Literal["tickets", "knowledge", "web_search"]

TICKET_STATUSES = ("open", "in_progress", "resolved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high")
MAX_SUBJECT_CHARS = 200
MAX_DESCRIPTION_CHARS = 4000
MAX_COMMENT_CHARS = 2000
MAX_QUERY_CHARS = 1000
MAX_EMAIL_CHARS = 254
MAX_DEVICE_CHARS = 100
MAX_LIST_LIMIT = 50
TICKET_ID_PATTERN = "^TCK-[0-9A-F]{8}$"

IDENTITY_ARGUMENT = "_actor"
"""The argument that carries the verified caller to a target (gateway schema only; never model-visible)."""
IDENTITY_TARGETS: frozenset[Target] = frozenset({"tickets"})
"""The targets whose tools act for the calling user and so receive IDENTITY_ARGUMENT."""
IDENTITY_PROPERTY: dict[str, Any] = {
    "type": "string",
    "description": "Set by the tool gateway from the caller's verified token; any caller-supplied value is replaced.",
}


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, the description the model reads, and the JSON schema of its arguments."""

    name: str
    target: Target
    description: str
    input_schema: dict[str, Any]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.input_schema.get("required", ()))

    @property
    def needs_identity(self) -> bool:
        """Whether the target acts for the calling user (and so receives IDENTITY_ARGUMENT)."""
        return self.target in IDENTITY_TARGETS

    @property
    def gateway_input_schema(self) -> dict[str, Any]:
        """The schema published on the gateway target: the public schema plus, for identity targets, the
        declared (optional) IDENTITY_ARGUMENT the REQUEST interceptor fills. Not required, so the gateway
        accepts the call whether it validates arguments before or after the interceptor."""
        if not self.needs_identity:
            return self.input_schema
        properties = {**self.input_schema["properties"], IDENTITY_ARGUMENT: dict(IDENTITY_PROPERTY)}
        return {**self.input_schema, "properties": properties}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_TICKET_ID = {
    "type": "string",
    "pattern": TICKET_ID_PATTERN,
    "description": "The ticket id, e.g. TCK-1A2B3C4D.",
}

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="create_ticket",
        target="tickets",
        description=(
            "Create a support ticket for the current user. Ask the user for their contact email and a "
            "description of the problem before calling this; never invent them."
        ),
        input_schema=_object(
            {
                "email": {
                    "type": "string",
                    "description": "Contact email of the user.",
                    "maxLength": MAX_EMAIL_CHARS,
                },
                "subject": {
                    "type": "string",
                    "description": "One-line summary of the problem.",
                    "minLength": 1,
                    "maxLength": MAX_SUBJECT_CHARS,
                },
                "description": {
                    "type": "string",
                    "description": "What happened, what the user tried, and any error shown.",
                    "minLength": 1,
                    "maxLength": MAX_DESCRIPTION_CHARS,
                },
                "priority": {"type": "string", "enum": list(TICKET_PRIORITIES), "default": "normal"},
                "device": {
                    "type": "string",
                    "description": "Product or device model, if known.",
                    "maxLength": MAX_DEVICE_CHARS,
                },
            },
            required=("email", "subject", "description"),
        ),
    ),
    ToolSpec(
        name="get_ticket",
        target="tickets",
        description="Get one of the current user's support tickets, with its status and comments.",
        input_schema=_object({"ticket_id": _TICKET_ID}, required=("ticket_id",)),
    ),
    ToolSpec(
        name="list_tickets",
        target="tickets",
        description="List the current user's support tickets, newest first, optionally filtered by status.",
        input_schema=_object(
            {
                "status": {"type": "string", "enum": list(TICKET_STATUSES)},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 10},
            }
        ),
    ),
    ToolSpec(
        name="update_ticket_status",
        target="tickets",
        description="Change the status of one of the current user's tickets (e.g. resolved when the user confirms a fix).",
        input_schema=_object(
            {"ticket_id": _TICKET_ID, "status": {"type": "string", "enum": list(TICKET_STATUSES)}},
            required=("ticket_id", "status"),
        ),
    ),
    ToolSpec(
        name="add_ticket_comment",
        target="tickets",
        description="Add a comment to one of the current user's tickets, e.g. new information from the user.",
        input_schema=_object(
            {
                "ticket_id": _TICKET_ID,
                "comment": {"type": "string", "minLength": 1, "maxLength": MAX_COMMENT_CHARS},
            },
            required=("ticket_id", "comment"),
        ),
    ),
    ToolSpec(
        name="search_knowledge_base",
        target="knowledge",
        description=(
            "Search the product support knowledge base (manuals, troubleshooting guides, policies). "
            "Returns passages with document title, source URI, page number and relevance score. Cite the "
            "document and page of every passage you use."
        ),
        input_schema=_object(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
            },
            required=("query",),
        ),
    ),
    ToolSpec(
        name="web_search",
        target="web_search",
        description="Search the public web for information that is not in the knowledge base. Cite the URLs you use.",
        input_schema=_object(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 400},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
            },
            required=("query",),
        ),
    ),
)


def public_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without IDENTITY_ARGUMENT (in `properties` and `required`): what a client may see."""
    properties = schema.get("properties")
    required = schema.get("required")
    if not (isinstance(properties, dict) and IDENTITY_ARGUMENT in properties) and not (
        isinstance(required, list) and IDENTITY_ARGUMENT in required
    ):
        return schema
    public = dict(schema)
    if isinstance(properties, dict):
        public["properties"] = {k: v for k, v in properties.items() if k != IDENTITY_ARGUMENT}
    if isinstance(required, list):
        public["required"] = [name for name in required if name != IDENTITY_ARGUMENT]
    return public


def specs_for(target: Target) -> tuple[ToolSpec, ...]:
    """The specs served by one target (gateway target or local tool group)."""
    return tuple(spec for spec in TOOL_SPECS if spec.target == target)


def spec(name: str) -> ToolSpec:
    """The spec of one tool by name (KeyError names the tool)."""
    for candidate in TOOL_SPECS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown tool {name!r}; known tools: {[s.name for s in TOOL_SPECS]}")
