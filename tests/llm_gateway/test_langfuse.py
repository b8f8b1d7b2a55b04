"""With Langfuse keys in its environment the gateway exports each call to Langfuse's OTLP endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from llm_gateway.config import Upstream
from llm_gateway.local import prepare
from local_stack import components
from local_stack.otlp_recorder import LANGFUSE_TRACES_PATH, OtlpRecorder
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel, Text
from tests.llm_gateway.conftest import scripted_catalog_config

pytestmark = pytest.mark.slow


def test_a_gateway_call_reaches_langfuse_as_an_authenticated_otel_span(tmp_path: Path) -> None:
    with (
        OtlpRecorder(public_key="pk-lf-gateway", secret_key="sk-lf-gateway") as langfuse,
        ScriptedModel(model_name="scripted-primary") as model,
    ):
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
        environ |= {
            "LANGFUSE_HOST": langfuse.url,
            "LANGFUSE_PUBLIC_KEY": "pk-lf-gateway",
            "LANGFUSE_SECRET_KEY": "sk-lf-gateway",
        }
        gateway = prepare(
            scripted_catalog_config(),
            state_dir=tmp_path,
            port=free_port(),
            upstreams={alias: Upstream(model.base_url) for alias in ("primary", "backup", "limited")},
            environ=environ,
            write_env_file=False,
        )
        assert "langfuse_otel" in gateway.config_path.read_text()
        model.enqueue(Text("traced answer"))
        with components.gateway(gateway, startup_timeout=90).process(tmp_path / "litellm.log"):
            response = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {gateway.master_key}"},
                json={"model": "primary", "messages": [{"role": "user", "content": "trace me"}]},
                timeout=30,
            )
            assert response.status_code == 200, response.text

            spans = langfuse.wait_for_spans(1, name="litellm_request", timeout=30)

        (request, *_) = langfuse.requests_to(LANGFUSE_TRACES_PATH)
        assert request.basic_auth == ("pk-lf-gateway", "sk-lf-gateway")
        (call,) = [span for span in spans if span.name == "litellm_request"]
        assert call.attr("llm.model_name") == "scripted-primary"
        assert call.attr("llm.response.model") == "primary"
