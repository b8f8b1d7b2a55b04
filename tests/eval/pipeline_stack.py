"""The local stack with the golden scripted model: `make eval` and the pipeline tests run against it.

    python -m tests.eval.pipeline_stack [python -m eval run options...]

Starts, on loopback ports: the scripted model playing the golden dataset -> the real LiteLLM proxy (every
catalog alias, including the judge alias, served by the scripted model) -> the real agent HTTP server ->
the real MCP tool server (SQLite tickets, embedded index of corpus/). Then runs `python -m eval run
--target local` against it and stops everything, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from config import AppConfig, load_config
from eval.dataset import GoldenCase, load_dataset
from llm_gateway.config import Upstream
from llm_gateway.local import prepare_for_upstream
from tests.eval.golden_model import GoldenModel
from tests.support.processes import ManagedProcess, free_port
from tests.support.scripted_model import ScriptedModel

REPO = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-eval-pipeline"
PIPELINE_NOTE = "the local stack answered with the scripted golden model (tests/eval/golden_model.py)"


@dataclass
class PipelineStack:
    model: ScriptedModel
    gateway_url: str
    gateway_key: str
    tools_url: str
    agent_url: str
    work_dir: Path


def _clean_environ() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_", "AGENT_", "TAVILY_"))
    }


def without_rate_limits(config: AppConfig) -> AppConfig:
    """The catalog's rpm/tpm limits protect provider quotas; the scripted upstream has none, and a
    pipeline run sends a few hundred requests in seconds, so the local proxy drops them."""
    entries = tuple(entry.model_copy(update={"rpm": None, "tpm": None}) for entry in config.models.entries)
    return config.model_copy(update={"models": config.models.model_copy(update={"entries": entries})})


@contextlib.contextmanager
def scripted_stack(
    cases: Sequence[GoldenCase],
    work_dir: Path,
    index_cache: Path | None = None,
    langfuse_env: dict[str, str] | None = None,
) -> Iterator[PipelineStack]:
    """Start the whole local chain with the golden scripted model; stop it on exit."""
    config = without_rate_limits(load_config({"profile": "dev"}))
    work_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        model = ScriptedModel(responder=GoldenModel(cases)).start()
        stack.callback(model.stop)

        upstream = Upstream(api_base=model.base_url, model=model.model_name)
        gateway = prepare_for_upstream(
            config,
            upstream,
            state_dir=work_dir / "gateway",
            port=free_port(),
            master_key=MASTER_KEY,
            environ=_clean_environ(),
        )
        stack.enter_context(
            ManagedProcess(
                gateway.argv,
                health_url=f"{gateway.url}/health/liveliness",
                env=gateway.env,
                inherit_env=False,
                log_path=work_dir / "litellm.log",
                startup_timeout=90,
            )
        )

        tools_port = free_port()
        stack.enter_context(
            ManagedProcess(
                [
                    sys.executable,
                    "-m",
                    "tools.server",
                    "--port",
                    str(tools_port),
                    "--db",
                    str(work_dir / "tickets.db"),
                    "--index-cache",
                    str(index_cache or work_dir / "index"),
                ],
                health_url=f"http://127.0.0.1:{tools_port}/health",
                env=_clean_environ(),
                inherit_env=False,
                cwd=REPO,
                log_path=work_dir / "tools.log",
                startup_timeout=120,
            )
        )
        tools_url = f"http://127.0.0.1:{tools_port}/mcp"

        agent_port = free_port()
        agent_env = {
            **_clean_environ(),
            "AGENT_MODE": "local",
            "LLM_GATEWAY_URL": gateway.url,
            "LLM_GATEWAY_KEY": MASTER_KEY,
            "MODEL_ALIAS": config.models.agent_alias,
            "TOOL_GATEWAY_URL": tools_url,
            "LOCAL_USER": config.agentcore.local_user,
            "AGENT_ENVIRONMENT": "dev",
            "AGENT_HOST": "127.0.0.1",
            "AGENT_PORT": str(agent_port),
            "LOCAL_MEMORY_PATH": str(work_dir / "memory.db"),
            "AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": "1",
            "PYTHONPATH": str(REPO),
            **(langfuse_env or {}),
        }
        stack.enter_context(
            ManagedProcess(
                [sys.executable, "-m", "agent.main"],
                health_url=f"http://127.0.0.1:{agent_port}/ping",
                env=agent_env,
                inherit_env=False,
                cwd=REPO,
                log_path=work_dir / "agent.log",
                startup_timeout=60,
            )
        )
        agent_url = f"http://127.0.0.1:{agent_port}"
        _warm(agent_url)
        model.reset()
        yield PipelineStack(model, gateway.url, MASTER_KEY, tools_url, agent_url, work_dir)


def _warm(url: str, timeout: float = 90.0) -> None:
    """The agent's first turn waits for its background imports: do it once before measuring."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.post(f"{url}/invocations", json={"prompt": "warm-up"}, timeout=60)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.TransportError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"agent at {url} never answered a turn: {last}")


def main(argv: Sequence[str] | None = None) -> int:
    from eval.cli import DEFAULT_DATASET
    from eval.cli import main as eval_main

    args = list(sys.argv[1:] if argv is None else argv)
    dataset = Path(args[args.index("--dataset") + 1]) if "--dataset" in args else REPO / DEFAULT_DATASET
    cases = load_dataset(dataset)
    index_cache = REPO / ".local" / "index"
    with (
        tempfile.TemporaryDirectory(prefix="eval-stack-") as tmp,
        scripted_stack(cases, Path(tmp), index_cache) as stack,
    ):
        os.environ.update(
            LLM_GATEWAY_URL=stack.gateway_url,
            LLM_GATEWAY_KEY=stack.gateway_key,
            EVAL_MODEL_NOTE=PIPELINE_NOTE,
        )
        for name in [n for n in os.environ if n.startswith("LANGFUSE_")]:
            del os.environ[name]
        return eval_main(
            [
                "run",
                "--target",
                "local",
                "--agent-url",
                stack.agent_url,
                *args,
            ]
        )


if __name__ == "__main__":
    raise SystemExit(main())
