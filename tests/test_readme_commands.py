"""Every fenced shell command of README.md and docs/*.md works as written on a fresh machine.

Each command is classified by the first matching row of RULES (a regex over the command with its
comment removed and `[optional]` placeholders dropped):

| kind | what the test does |
| --- | --- |
| Offline | runs it; checks the exit code (bounded by a timeout) |
| NeedsAws | runs it with no AWS region, then with a region but no credentials (no profile files,
             AWS_EC2_METADATA_DISABLED=true): it must fail, without a traceback, naming what is missing |
| Server | starts it on a free port, waits for its health URL, stops it |
| DryRun | `make -n` of it succeeds: the target exists and parses (expensive or account-only commands;
           `covered_by` names the test that runs the real thing) |
| Skip | nothing to run by itself (shell state, another tool, talks to a running stack); `reason` says why |
| Wrong | a command that cannot work as written on a fresh machine: the test fails with `fix` |

An UNCLASSIFIED command fails the test: a new README command must get a row here.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from local_stack.processes import free_port

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*```(bash|sh|shell)\s*$")
MISSING_AWS = r"AWS_REGION|AWS_PROFILE|AWS_ACCESS_KEY_ID|credentials"


@dataclass(frozen=True)
class Offline:
    timeout: float = 120
    exit_code: int = 0


@dataclass(frozen=True)
class NeedsAws:
    missing: str = MISSING_AWS  # regex the message must match (what to set)
    timeout: float = 240


@dataclass(frozen=True)
class Server:
    port_variable: str  # appended as NAME=<free port> (a make variable)
    health: str  # path polled until it answers 200
    timeout: float = 120


@dataclass(frozen=True)
class DryRun:
    reason: str
    covered_by: str = ""


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Wrong:
    fix: str


Kind = Offline | NeedsAws | Server | DryRun | Skip | Wrong

# First match wins. Extend by adding a row; keep expensive commands as DryRun with `covered_by`.
RULES: list[tuple[str, Kind]] = [
    (r".*--baseline eval-reports/main/.*", Wrong("nothing writes eval-reports/main/: keep a baseline with `make eval-baseline` and pass --baseline eval-reports/baseline/report.json")),
    # --- offline, cheap: run them
    (r"make help", Offline(timeout=60)),
    (r"make eval-validate", Offline(timeout=180)),
    (r"\.venv/bin/lint-imports", Offline(timeout=180)),
    (r"make chat", Server("CHAT_PORT", "/_stcore/health")),
    # --- need an AWS account: must stop with a message naming what to set
    (r"make (preflight|bootstrap|deploy|verify)( CONTEXT=.*)?", NeedsAws()),
    (r"make user EMAIL=\S+( TEAM=\S+)?", NeedsAws()),
    (r"make chat MODE=agentcore( \S+=\S+)*", NeedsAws()),
    (r"((?!GATEWAY_UPSTREAM_)[A-Z_]+=\S+ )*make (local|gateway)", NeedsAws()),  # Bedrock: your credentials
    (r"(\.venv/bin/python -m eval run |make eval-run ARGS=\")--target agentcore.*", NeedsAws(r"LLM_GATEWAY_URL|AGENT_RUNTIME_ARN")),
    (r"\.venv/bin/python -m eval online.*|make eval-online( ARGS=.*)?", NeedsAws(r"LANGFUSE_HOST")),
    # --- expensive or account-only: the target exists; the real run is another test's
    (r"make synth( CONTEXT=.*)?", DryRun("cdk synth of 10 stacks with nag + cfn-lint (15-50 s)", "tests/test_app.py, tests/test_app_modes.py")),
    (r"make cost( CONTEXT=.*)?", DryRun("runs make synth first", "tests/cost/")),
    (
        r"\.venv/bin/python -m cost cdk\.out( --.*)?",
        Skip("reads the assembly `make synth` writes; tests/cost/test_usage.py runs this CLI with each flag"),
    ),
    (r"make test", DryRun("the whole suite, this test included", ".ci/run")),
    (r"make eval( EVAL_ARGS=.*)?", DryRun("the golden dataset through the local stack (~30 s+)", "tests/eval/test_make_eval.py")),
    (r"make eval-baseline( FROM=\S+)?", DryRun("needs a finished make eval", "tests/test_readme_commands.py::test_eval_baseline_copies_the_report")),
    (r"(\.venv/bin/python -m eval run |make eval-run ARGS=\")--target local.*", DryRun("needs a running local agent with a real model", "tests/eval/test_pipeline.py")),
    (r"make (diff|destroy)( CONTEXT=.*)?", DryRun("cdk against a deployed account")),
    (r"make screenshots", DryRun("browser test + make eval, rewrites docs/images", "tests/frontend/test_artifacts_untracked.py")),
    (r"make (soak|bench-\S+)( \S+=\S+)*", DryRun("load and benchmarks: minutes of CPU")),
    (r"make mutation( MUTATION_ARGS=\".*\")?", DryRun("mutmut: tens of minutes per package on 2 cores", "tests/scripts/test_mutation.py")),
    (r"GATEWAY_UPSTREAM_BASE=\S+( [A-Z_]+=\S+)* make local", DryRun("starts four processes on fixed ports", "tests/e2e/test_local_mode.py")),
    (r"GATEWAY_UPSTREAM_BASE=\S+( GATEWAY_UPSTREAM_MODEL=\S+)? make gateway", DryRun("the real LiteLLM proxy", "tests/llm_gateway/")),
    (r"cdk synth( -c \S+)+", DryRun("= make synth CONTEXT=\"-c ...\" (cdk is node_modules/.bin/cdk)", "tests/test_app_modes.py")),
    (r"([A-Z_]+=\S+ )*\.venv/bin/python -m pytest .*", Skip("a subset of make test")),
    (r"ollama (serve|pull) .*", Skip("a third-party model server on your laptop (docs/local-mode.md)")),
    (r"\.venv/bin/python -m tests\.permissions\.table --(check|write)", Skip("synthesizes the app; --check runs in tests/permissions")),
    (r"\.venv/bin/python -m tools\.server.*", Skip("the MCP tool server, started by tests/tools and tests/e2e")),
    # --- not runnable by themselves
    (r"export \S+=.*", Skip("sets variables for the commands after it")),
    (r"source \.local/gateway\.env", Skip("shell state written by make gateway / make local")),
    (r"curl .*localhost:8080.*", Skip("talks to make local's agent: tests/e2e/test_local_mode.py")),
    (r"aws \S+ .*", Skip("the AWS CLI against your account (not installed by this project)")),
    (r"npx @modelcontextprotocol/inspector.*", Skip("interactive MCP UI")),
    # --- cannot work as written on a fresh machine
    (r"python3? -m eval .*", Wrong("`python` is not the project's venv: write `make eval-run ARGS=\"...\"` or `.venv/bin/python -m eval ...`")),
    (r"(open|xdg-open) .*", Wrong("`open` is macOS-only: print or link the file:// URL (python3 -m webbrowser file://...)")),
]  # fmt: skip


@dataclass(frozen=True)
class Command:
    text: str
    sources: tuple[str, ...] = field(default=())


def _strip_comment(line: str) -> str:
    """The line without its shell comment (a `#` outside quotes, at the start or after a blank)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def _complete(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def documented_commands() -> list[Command]:
    """The unique commands of every ```bash block, each with the file:line it appears on."""
    found: dict[str, list[str]] = {}
    for path in DOCUMENTS:
        in_block, pending, start = False, "", 0
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not in_block:
                in_block = bool(FENCE.match(raw))
                continue
            if raw.strip().startswith("```"):
                in_block, pending = False, ""
                continue
            line = raw if pending and not _complete(pending) else _strip_comment(raw)
            start = start if pending else number
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            pending += line
            if not _complete(pending):
                pending += "\n"
                continue
            text = re.sub(r"\s+\[[^\]]*\]", "", " ".join(pending.split()))  # drop [OPTIONAL=...] placeholders
            pending = ""
            if text:
                found.setdefault(text, []).append(f"{path.relative_to(REPO)}:{start}")
    return [Command(text, tuple(sources)) for text, sources in found.items()]


def classify(text: str) -> Kind | None:
    for pattern, kind in RULES:
        if re.fullmatch(pattern, text):
            return kind
    return None


COMMANDS = documented_commands()


def _ids(command: Command) -> str:
    return f"{command.sources[0]}:{command.text[:40]}"


# --- the table itself ------------------------------------------------------------------------------


def test_the_documents_have_commands() -> None:
    assert len(COMMANDS) >= 10 and any(c.text == "make test" for c in COMMANDS)


def test_every_documented_command_is_classified() -> None:
    unclassified = [f"{c.sources[0]}: {c.text}" for c in COMMANDS if classify(c.text) is None]
    assert not unclassified, "add a row to RULES in tests/test_readme_commands.py for:\n" + "\n".join(
        unclassified
    )


def test_no_documented_command_is_known_to_be_wrong() -> None:
    wrong = [
        f"{c.sources[0]}: {c.text}\n    fix: {kind.fix}"
        for c in COMMANDS
        if isinstance(kind := classify(c.text), Wrong)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_parser_handles_comments_continuations_quotes_and_placeholders(tmp_path: Path) -> None:
    assert _strip_comment("make synth   # synth # all") == "make synth"
    assert _strip_comment('curl -d \'{"a": "#1"}\' # x') == 'curl -d \'{"a": "#1"}\''
    assert classify("make chat MODE=agentcore PREFIX=aaf") == NeedsAws()
    assert classify("make something-new") is None
    assert classify("python -m eval run --target local") == classify("python3 -m eval online")


# --- running them ----------------------------------------------------------------------------------


def fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh laptop: no AWS, Langfuse, gateway or agent settings; the venv not activated."""
    prefixes = ("AWS_", "LANGFUSE_", "GATEWAY_", "LLM_GATEWAY_", "AGENT_", "EVAL_", "COGNITO_", "TAVILY_")
    venv_bin = str(REPO / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        LOCAL_STATE_DIR=str(tmp_path / "local-state"),
        **extra,
    )
    return env


def run(text: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", text],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def selected(*kinds: type) -> list[Command]:
    return [c for c in COMMANDS if isinstance(classify(c.text), kinds)]


@pytest.mark.slow
@pytest.mark.parametrize("command", selected(Offline), ids=_ids)
def test_offline_commands_work(command: Command, tmp_path: Path) -> None:
    kind = classify(command.text)
    assert isinstance(kind, Offline)
    done = run(command.text, fresh_env(tmp_path), kind.timeout)
    assert done.returncode == kind.exit_code, f"{command.sources}: {done.stdout[-1500:]}{done.stderr[-1500:]}"


@pytest.mark.slow
@pytest.mark.parametrize("command", selected(NeedsAws), ids=_ids)
@pytest.mark.parametrize("region", ["", "us-east-1"], ids=["no-region", "region-no-credentials"])
def test_account_commands_fail_clearly_without_aws(command: Command, region: str, tmp_path: Path) -> None:
    kind = classify(command.text)
    assert isinstance(kind, NeedsAws)
    env = fresh_env(tmp_path, **({"AWS_REGION": region} if region else {}))
    done = run(command.text, env, kind.timeout)
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"{command.sources}: succeeded without AWS: {output[-1500:]}"
    assert "Traceback" not in output, f"{command.sources}: {output[-3000:]}"
    assert re.search(kind.missing, output), (
        f"{command.sources}: the message names nothing to set: {output[-1500:]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", selected(Server), ids=_ids)
def test_server_commands_start_and_stop(command: Command, tmp_path: Path) -> None:
    kind = classify(command.text)
    assert isinstance(kind, Server)
    port = free_port()
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command.text} {kind.port_variable}={port}"],
        cwd=REPO,
        env=fresh_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make, then the server it execs
    )
    try:
        deadline = time.monotonic() + kind.timeout
        while True:
            assert process.poll() is None, (
                f"{command.sources}: exited: {process.stdout.read() if process.stdout else ''}"
            )
            try:
                if httpx.get(f"http://127.0.0.1:{port}{kind.health}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{command.sources}: not healthy after {kind.timeout} s"
            time.sleep(0.5)
    finally:
        _stop(process)
    assert process.returncode is not None


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.parametrize("command", selected(DryRun), ids=_ids)
def test_expensive_commands_name_existing_targets(command: Command, tmp_path: Path) -> None:
    """`make -n` of a make command succeeds; an evaluation command's options parse."""
    argv = shlex.split(command.text)
    if argv[0] == "cdk":  # the same synthesis through the Makefile
        argv = ["make", "synth", f"CONTEXT={' '.join(argv[2:])}"]
    if argv[:3] == [".venv/bin/python", "-m", "eval"]:
        _parse_eval_args(argv[3:], command)
        return
    assert "make" in argv, f"{command.sources}: a DryRun row needs a make command or an eval command"
    at = argv.index("make")
    env = {**fresh_env(tmp_path), **dict(a.split("=", 1) for a in argv[:at])}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", *argv[at + 1 :]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command.sources}: {done.stderr[-1500:]}"
    eval_args = next((a.split("=", 1)[1] for a in argv[at + 1 :] if a.startswith("ARGS=")), None)
    if argv[at + 1] == "eval-run" and eval_args is not None:
        _parse_eval_args(["run", *shlex.split(eval_args)], command)


def _parse_eval_args(args: list[str], command: Command) -> None:
    from eval.cli import build_parser

    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"{command.sources}: `python -m eval` rejects {args}") from exc


def test_eval_baseline_copies_the_report(tmp_path: Path) -> None:
    source, baseline = tmp_path / "pipeline", tmp_path / "baseline"
    source.mkdir()
    (source / "report.json").write_text("{}", encoding="utf-8")
    (source / "report.html").write_text("<html></html>", encoding="utf-8")
    done = run(f"make eval-baseline FROM={source} EVAL_BASELINE_DIR={baseline}", fresh_env(tmp_path), 60)
    assert done.returncode == 0, done.stderr
    assert (baseline / "report.json").read_text(encoding="utf-8") == "{}"
    assert f"--baseline {baseline}/report.json" in done.stdout
    missing = run(f"make eval-baseline FROM={tmp_path / 'none'}", fresh_env(tmp_path), 60)
    assert missing.returncode != 0 and "run `make eval`" in missing.stderr


def commands_iter() -> Iterator[str]:  # for a quick look: python -m tests.test_readme_commands
    for command in COMMANDS:
        kind = classify(command.text)
        yield f"{type(kind).__name__ if kind else 'UNCLASSIFIED':<12} {command.sources[0]:<28} {command.text}"


if __name__ == "__main__":
    print("\n".join(commands_iter()))
