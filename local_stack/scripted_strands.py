"""An in-process scripted Strands `Model`: replays queued replies as Strands stream events.

It stands in for the LLM only (the one part that cannot run here); everything else in the unit tests
and in benchmarks/agent_turn_overhead.py is the real agent code. Replies are `Say(text)` or `Call(name, arguments)`; an empty queue answers
`responder(messages)` (default: echo the last user text). Every request is recorded.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

from strands.models.model import Model


@dataclass(frozen=True)
class Say:
    text: str
    chunk_chars: int = 8


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]
    text: str = ""


@dataclass(frozen=True)
class Boom:
    """Raise this exception instead of answering (e.g. a model endpoint failure)."""

    error: Exception


Reply = Say | Call | Boom


def echo(messages: list[dict[str, Any]]) -> Reply:
    for message in reversed(messages):
        if message["role"] == "user":
            texts = [block["text"] for block in message["content"] if "text" in block]
            if texts:
                return Say(f"echo: {texts[-1]}")
    return Say("echo")


@dataclass
class Request:
    messages: list[dict[str, Any]]
    tool_names: list[str]
    system_prompt: str | None


@dataclass
class ScriptedStrandsModel(Model):
    replies: deque[Reply] = field(default_factory=deque)
    responder: Callable[[list[dict[str, Any]]], Reply] = echo
    requests: list[Request] = field(default_factory=list)
    calls: int = 0

    def enqueue(self, *replies: Reply) -> ScriptedStrandsModel:
        self.replies.extend(replies)
        return self

    def update_config(self, **model_config: Any) -> None:
        return None

    def get_config(self) -> Any:
        return {"model_id": "scripted"}

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        raise NotImplementedError("not scripted")
        yield {}

    async def stream(
        self, messages: Any, tool_specs: Any = None, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncIterable[Any]:
        self.calls += 1
        self.requests.append(
            Request(
                json.loads(json.dumps(messages, default=str)),
                [s["name"] for s in tool_specs or []],
                system_prompt,
            )
        )
        reply = self.replies.popleft() if self.replies else self.responder(messages)
        if isinstance(reply, Boom):
            raise reply.error
        yield {"messageStart": {"role": "assistant"}}
        text = reply.text
        if text:
            yield {"contentBlockStart": {"start": {}}}
            size = reply.chunk_chars if isinstance(reply, Say) else 8
            for start in range(0, len(text), size):
                yield {"contentBlockDelta": {"delta": {"text": text[start : start + size]}}}
            yield {"contentBlockStop": {}}
        stop = "end_turn"
        if isinstance(reply, Call):
            stop = "tool_use"
            yield {
                "contentBlockStart": {
                    "start": {"toolUse": {"toolUseId": f"tool-{self.calls}", "name": reply.name}}
                }
            }
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(reply.arguments)}}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": stop}}
        yield {
            "metadata": {
                "usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18},
                "metrics": {"latencyMs": 0},
            }
        }
