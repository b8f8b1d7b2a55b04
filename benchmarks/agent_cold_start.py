"""Agent cold start: process start -> /ping healthy, and -> first streamed token of a first turn.

The model is the zero-latency scripted OpenAI-compatible server (local_stack/scripted_model.py),
called directly as the agent's gateway, so the figures are the agent's own start-up cost. The real
local MCP tool server runs (started before the clock) so the first turn also opens its MCP session.
Also prints the heaviest imports of the entrypoint (`python -X importtime`) and checks that litellm is
never imported.

    .venv/bin/python -m benchmarks.agent_cold_start [--runs 5]
Targets: /ping <= 1.0 s, first token <= 2.0 s (2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx

from config import load_config
from local_stack import components
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel, Text
from local_stack.stack import hermetic_environ

REPO = Path(__file__).resolve().parents[1]


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (load-independent work measure)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(model: ScriptedModel, tools_url: str, state: Path) -> tuple[float, float, float]:
    port = free_port()
    launch = components.agent_server(
        load_config({"profile": "dev"}),
        port,
        gateway_url=model.base_url.removesuffix("/v1"),
        gateway_key="sk-bench",
        tools_url=tools_url,
        memory_path=state / f"memory-{port}.db",
        environ=hermetic_environ(os.environ),
        environment="bench",
        extra={"AGENT_LOG_LEVEL": "WARNING"},
    )
    model.enqueue(Text("Hello! This is the first streamed token and the rest of the answer.", chunk_chars=6))
    started = time.perf_counter()
    process = subprocess.Popen(  # not ManagedProcess: the clock starts at the spawn, polled every 5 ms
        launch.argv,
        env=launch.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = started + 30
        while not _ping(f"{base}/ping"):
            if time.perf_counter() > deadline or process.poll() is not None:
                raise RuntimeError("agent did not become healthy")
            time.sleep(0.005)
        ping = time.perf_counter() - started
        first_token = None
        with httpx.stream(
            "POST", f"{base}/invocations", json={"prompt": "Hi", "stream": True}, timeout=60
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:]).get("type") == "text":
                    first_token = time.perf_counter() - started
                    cpu = cpu_seconds(process.pid)
                    break
        if first_token is None:
            raise RuntimeError("no text event in the first turn")
        return ping, first_token, cpu
    finally:
        process.terminate()
        process.wait(timeout=10)


def heaviest_imports(top: int = 12) -> list[tuple[float, str]]:
    """The top-level imports of the entrypoint and the bootstrap with the highest cumulative time."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import agent.main, agent.bootstrap"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or "cumulative" in line:
            continue
        name = parts[2]
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth <= 1:
            rows.append((int(parts[1]) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:top]


def entrypoint_imports() -> tuple[float, bool, bool]:
    code = (
        "import time, sys; t = time.perf_counter(); import agent.main; d = time.perf_counter() - t; "
        "print(d, 'litellm' in sys.modules, 'strands' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), out[1] == "True", out[2] == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ScriptedModel() as model:
        state = Path(tmp)
        tools_port = free_port()
        tools = components.tool_server(
            tools_port,
            db=state / "t.db",
            environ=hermetic_environ(os.environ),
            index_cache=REPO / ".local" / "index",
            startup_timeout=120,
        )
        with tools.process(state / "tools.log"):
            runs = [one_run(model, f"http://127.0.0.1:{tools_port}/mcp", state) for _ in range(args.runs)]
    pings = [r[0] for r in runs]
    tokens = [r[1] for r in runs]
    cpus = [r[2] for r in runs]
    entry_seconds, litellm_loaded, strands_loaded = entrypoint_imports()
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"agent cold start over {args.runs} runs (median, min-max):")
    print(
        f"  process start -> /ping healthy:      {statistics.median(pings):.3f} s ({min(pings):.3f}-{max(pings):.3f})  target <= 1.0 s"
    )
    print(
        f"  process start -> first streamed token: {statistics.median(tokens):.3f} s ({min(tokens):.3f}-{max(tokens):.3f})  target <= 2.0 s"
    )
    print(
        f"  agent CPU time (user+sys) at the first token: {statistics.median(cpus):.3f} s"
        f" (1-min load average {load} on {os.cpu_count()} cores)"
    )
    print(
        f"  import agent.main: {entry_seconds:.3f} s; imports strands: {strands_loaded}; imports litellm: {litellm_loaded}"
    )
    print("  heaviest imports of agent.main + agent.bootstrap (cumulative s):")
    for seconds, name in heaviest_imports():
        print(f"    {seconds:6.3f}  {name.strip()}")
    ok = statistics.median(pings) <= 1.0 and statistics.median(tokens) <= 2.0 and not litellm_loaded
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
