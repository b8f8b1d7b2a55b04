"""`make eval`: the golden dataset through the local stack with the golden scripted model, then the gate.

    python -m scripts.eval_pipeline [python -m eval run options...]

Starts, on loopback ports (local_stack.stack): the scripted model playing the golden dataset
(scripts/golden_model.py) -> the real LiteLLM proxy (every catalog alias, including the judge alias,
served by the scripted model) -> the real agent HTTP server -> the real MCP tool server (SQLite tickets,
embedded index of corpus/). Then runs `python -m eval run --target local` against it and stops
everything, whatever happens. The pipeline tests (tests/eval/conftest.py) use `scripted_stack()`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from config import REPO_ROOT, load_config
from eval.dataset import GoldenCase, load_dataset
from local_stack.scripted_model import ScriptedModel
from local_stack.stack import (
    LocalStack,
    hermetic_environ,
    plan,
    scripted_upstream,
    warm_agent,
    without_rate_limits,
)
from scripts.golden_model import GoldenModel

MASTER_KEY = "sk-eval-pipeline"
PIPELINE_NOTE = "the local stack answered with the scripted golden model (scripts/golden_model.py)"
# Shared with `make local` and the other pipeline runs: the corpus embeddings are computed once.
SHARED_INDEX_CACHE = REPO_ROOT / ".local" / "index"


@dataclass
class PipelineStack:
    model: ScriptedModel
    gateway_url: str
    gateway_key: str
    tools_url: str
    agent_url: str
    work_dir: Path


@contextlib.contextmanager
def scripted_stack(
    cases: Sequence[GoldenCase],
    work_dir: Path,
    index_cache: Path | None = None,
    langfuse_env: Mapping[str, str] | None = None,
) -> Iterator[PipelineStack]:
    """Start the whole local chain with the golden scripted model; stop it on exit."""
    config = without_rate_limits(load_config({"profile": "dev"}))
    work_dir.mkdir(parents=True, exist_ok=True)
    with ScriptedModel(responder=GoldenModel(cases)) as model:
        launches = plan(
            config,
            state_dir=work_dir,
            environ=hermetic_environ(os.environ),
            upstream=scripted_upstream(model),
            master_key=MASTER_KEY,
            index_cache=index_cache or work_dir / "index",
            with_guardrail_policy=False,
            agent_extra={"AGENT_TRACE_EXPORT_TIMEOUT_SECONDS": "1", **(langfuse_env or {})},
            startup_timeouts={"gateway": 90, "tools": 120, "agent": 60},
        )
        with LocalStack(launches, work_dir / "logs") as stack:
            warm_agent(stack.url("agent"))
            model.reset()
            yield PipelineStack(
                model, stack.url("gateway"), MASTER_KEY, stack.url("tools"), stack.url("agent"), work_dir
            )


def main(argv: Sequence[str] | None = None) -> int:
    from eval.cli import DEFAULT_DATASET
    from eval.cli import main as eval_main

    args = list(sys.argv[1:] if argv is None else argv)
    dataset = Path(args[args.index("--dataset") + 1]) if "--dataset" in args else REPO_ROOT / DEFAULT_DATASET
    cases = load_dataset(dataset)
    with (
        tempfile.TemporaryDirectory(prefix="eval-stack-") as tmp,
        scripted_stack(cases, Path(tmp), SHARED_INDEX_CACHE) as stack,
    ):
        os.environ.update(
            LLM_GATEWAY_URL=stack.gateway_url,
            LLM_GATEWAY_KEY=stack.gateway_key,
            EVAL_MODEL_NOTE=PIPELINE_NOTE,
        )
        for name in [n for n in os.environ if n.startswith("LANGFUSE_")]:
            del os.environ[name]
        return eval_main(["run", "--target", "local", "--agent-url", stack.agent_url, *args])


if __name__ == "__main__":
    raise SystemExit(main())
