"""Fixtures for the gateway tests: a scripted catalog and a real LiteLLM proxy in front of scripted models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from config import AppConfig, build_config
from llm_gateway.config import Upstream
from llm_gateway.local import LocalGateway, prepare
from local_stack import components
from local_stack.processes import ManagedProcess, free_port
from local_stack.scripted_model import ScriptedModel

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# USD per million tokens of the scripted aliases: non-zero so the proxy reports a real cost.
PRIMARY_PRICE = (3.0, 15.0)
BACKUP_PRICE = (1.0, 5.0)
LIMITED_RPM = 2


def scripted_catalog_config() -> AppConfig:
    """A catalog of OpenAI-compatible aliases: primary -> backup fallback, and an rpm-limited alias."""
    return build_config(
        {
            "models": {
                "entries": [
                    {
                        "alias": "primary",
                        "provider": "openai_compatible",
                        "model_id": "scripted-primary",
                        "api_base_env": "SCRIPTED_PRIMARY_BASE",
                        "fallbacks": ["backup"],
                        "input_cost_per_million": PRIMARY_PRICE[0],
                        "output_cost_per_million": PRIMARY_PRICE[1],
                    },
                    {
                        "alias": "backup",
                        "provider": "openai_compatible",
                        "model_id": "scripted-backup",
                        "api_base_env": "SCRIPTED_BACKUP_BASE",
                        "input_cost_per_million": BACKUP_PRICE[0],
                        "output_cost_per_million": BACKUP_PRICE[1],
                    },
                    {
                        "alias": "limited",
                        "provider": "openai_compatible",
                        "model_id": "scripted-limited",
                        "api_base_env": "SCRIPTED_PRIMARY_BASE",
                        "rpm": LIMITED_RPM,
                        "input_cost_per_million": 1.0,
                        "output_cost_per_million": 1.0,
                    },
                ],
                "agent_alias": "primary",
                "judge_alias": "backup",
                # No retries: a scripted failure must go straight to the fallback, deterministically.
                "num_retries": 0,
                "allowed_fails": 100,
                "request_timeout_seconds": 30,
            }
        },
        source="tests/llm_gateway",
    )


@dataclass
class RunningGateway:
    """A started proxy, its scripted upstreams and an authenticated client."""

    gateway: LocalGateway
    process: ManagedProcess
    primary: ScriptedModel
    backup: ScriptedModel
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.gateway.url


@pytest.fixture(scope="module")
def running_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The real `litellm` proxy, launched exactly as `make gateway` does, in front of two scripted models."""
    state_dir = tmp_path_factory.mktemp("gateway")
    with (
        ScriptedModel(model_name="scripted-primary") as primary,
        ScriptedModel(model_name="scripted-backup") as backup,
    ):
        gateway = prepare(
            scripted_catalog_config(),
            state_dir=state_dir,
            port=free_port(),
            upstreams={
                "primary": Upstream(primary.base_url),
                "backup": Upstream(backup.base_url),
                # the catalog's rpm limit kept on purpose (GATEWAY_UPSTREAM_RATE_LIMITS=catalog)
                "limited": Upstream(primary.base_url, rate_limits=True),
            },
            environ={k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")},
        )
        with (
            components.gateway(gateway, startup_timeout=90).process(state_dir / "litellm.log") as process,
            httpx.Client(
                base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.master_key}"}, timeout=30
            ) as client,
        ):
            yield RunningGateway(gateway, process, primary, backup, client)


@pytest.fixture
def gw(running_gateway: RunningGateway) -> RunningGateway:
    """The module's gateway with both scripted models' queues and recordings cleared."""
    running_gateway.primary.reset()
    running_gateway.backup.reset()
    return running_gateway


def log_path(gateway: RunningGateway) -> Path:
    return gateway.process.log_path
