"""Run the real LiteLLM proxy locally from the same model catalog as the deployed gateway.

    python -m llm_gateway.local            # or: make gateway
    python -m llm_gateway.local --check    # only check credentials and write the files

Models are reached through the catalogued providers: Bedrock with the user's AWS credentials
(profile, SSO or environment; a region from AWS_REGION / AWS_DEFAULT_REGION / the profile), OpenAI
or Anthropic with their API key variables. Alternatively `GATEWAY_UPSTREAM_BASE=<url ending in /v1>`
serves every alias from one OpenAI-compatible server (`GATEWAY_UPSTREAM_MODEL` picks its model name,
`GATEWAY_UPSTREAM_KEY_ENV` names the variable holding its key). The catalog's rpm/tpm limits are Bedrock
quotas, so they are not applied to such an upstream unless `GATEWAY_UPSTREAM_RATE_LIMITS=catalog`.
Missing credentials stop the launch before the proxy starts, with a message naming the variables.

There is no database locally (LiteLLM's Prisma engines cannot be installed here), so there are no
virtual keys: each run generates a master key and writes it, with the URL, to `.local/gateway.env`
(mode 0600) for `make local` and other clients:

    LLM_GATEWAY_URL=http://127.0.0.1:4000
    LLM_GATEWAY_KEY=sk-local-...
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config import REPO_ROOT, AppConfig, load_config
from llm_gateway.bootstrap import local_teams_document
from llm_gateway.config import (
    DEFAULT_API_KEY_ENV,
    ENV_MASTER_KEY,
    Upstream,
    local_config,
    render_yaml,
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4000
STATE_DIR = REPO_ROOT / ".local"
ENV_FILE_NAME = "gateway.env"
TEAMS_FILE_NAME = "teams.json"
# read by llm_gateway.local_auth inside the proxy (not imported here: it imports litellm)
TEAMS_FILE_ENV = "LOCAL_GATEWAY_TEAMS_FILE"
CONFIG_FILE_NAME = "litellm-config.yaml"
# uvicorn logging without one access-log line per request (measurable on the hot path; see the benchmark).
QUIET_LOG_CONFIG = Path(__file__).with_name("uvicorn_log_config.json")
UPSTREAM_BASE_ENV = "GATEWAY_UPSTREAM_BASE"
UPSTREAM_MODEL_ENV = "GATEWAY_UPSTREAM_MODEL"
UPSTREAM_KEY_ENV = "GATEWAY_UPSTREAM_KEY_ENV"
UPSTREAM_RATE_LIMITS_ENV = "GATEWAY_UPSTREAM_RATE_LIMITS"
# GATEWAY_UPSTREAM_RATE_LIMITS values: whether the catalog's rpm/tpm apply to GATEWAY_UPSTREAM_BASE.
UPSTREAM_RATE_LIMITS: Mapping[str, bool] = {"": False, "off": False, "catalog": True}
AWS_REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")

# Quiet, lean proxy: these switch off work the local gateway does not need (see benchmarks/gateway_overhead.py).
PROXY_ENV_DEFAULTS: Mapping[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # never fetch the cost map from the internet
    "LITELLM_LOG": "ERROR",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    # The admin UI stays off locally: its login stores the UI session as a virtual key in LiteLLM's
    # database, which cannot run here (/v2/login answers "Not connected to DB!"; docs/platform-console.md).
    "DISABLE_ADMIN_UI": "True",
}


class CredentialsError(RuntimeError):
    """A catalogued provider has no credentials; the message names the variables to set."""


class UpstreamError(CredentialsError):
    """GATEWAY_UPSTREAM_BASE is unreachable, refuses the key or does not serve the model to be sent."""


UPSTREAM_CHECK_TIMEOUT_SECONDS = 5.0
UPSTREAM_MODELS_SHOWN = 8


def _list_models(base: str, key: str | None, timeout: float) -> list[str] | None:
    """The model ids `GET <base>/models` lists (OpenAI-compatible; Ollama serves /v1/models too), or None
    when the server has no such route (it answered, so it is reachable).

    Raises:
        UpstreamError: unreachable within `timeout`, key refused, or a server error.
    """
    url = f"{base.rstrip('/')}/models"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (http(s) checked)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) checked)
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise UpstreamError(
                f"{UPSTREAM_BASE_ENV}={base} refused the request (HTTP {error.code}): set "
                f"{UPSTREAM_KEY_ENV} to the name of the variable holding its API key"
            ) from None
        if error.code in (404, 405, 501):
            return None
        raise UpstreamError(f"{UPSTREAM_BASE_ENV}={base}: GET {url} answered HTTP {error.code}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise UpstreamError(
            f"cannot reach {UPSTREAM_BASE_ENV}={base} within {timeout:.0f}s ({reason or type(reason).__name__}):"
            " is the model server running (e.g. `ollama serve`) and does the URL end in /v1?"
        ) from None
    try:
        data = json.loads(body)["data"]
        return [str(item["id"]) for item in data]
    except (ValueError, KeyError, TypeError):
        return None


def check_upstream(
    config: AppConfig,
    upstreams: Mapping[str, Upstream],
    environ: Mapping[str, str],
    *,
    timeout: float = UPSTREAM_CHECK_TIMEOUT_SECONDS,
) -> list[str]:
    """Check each GATEWAY_UPSTREAM_BASE before anything starts: it answers within `timeout` and lists
    the model every alias will send (GATEWAY_UPSTREAM_MODEL, else the catalog's Bedrock id, which an
    Ollama or vLLM server does not have). Returns warnings (a server without `GET /models`).

    Raises:
        UpstreamError: naming the cause and the fix, e.g. `GATEWAY_UPSTREAM_MODEL=llama3.2 make local`.
    """
    warnings: list[str] = []
    checked: dict[str, list[str] | None] = {}
    for entry in config.models.entries:
        upstream = upstreams.get(entry.alias)
        if upstream is None:
            continue
        if upstream.api_base not in checked:
            key = environ.get(upstream.api_key_env) if upstream.api_key_env else None
            checked[upstream.api_base] = _list_models(upstream.api_base, key, timeout)
        listed = checked[upstream.api_base]
        sent = upstream.model or entry.model_id
        if listed is None:
            if upstream.model is None:
                raise UpstreamError(
                    f"{UPSTREAM_BASE_ENV}={upstream.api_base} does not list its models (GET /models), and "
                    f"without {UPSTREAM_MODEL_ENV} alias {entry.alias!r} would ask it for the Bedrock id "
                    f"{sent!r}: set {UPSTREAM_MODEL_ENV} to a model it serves, e.g. "
                    f"`{UPSTREAM_MODEL_ENV}=llama3.2 make local`"
                )
            warning = (
                f"{UPSTREAM_BASE_ENV}={upstream.api_base} does not list its models: {sent!r} is not checked"
            )
            if warning not in warnings:
                warnings.append(warning)
            continue
        if sent in listed:
            continue
        shown = ", ".join(listed[:UPSTREAM_MODELS_SHOWN]) + (
            " ..." if len(listed) > UPSTREAM_MODELS_SHOWN else ""
        )
        example = listed[0] if listed else "<model>"
        problem = (
            f"{UPSTREAM_MODEL_ENV}={upstream.model} is not a model it serves"
            if upstream.model
            else f"{UPSTREAM_MODEL_ENV} is not set, so alias {entry.alias!r} would ask it for the Bedrock id {sent!r}"
        )
        raise UpstreamError(
            f"{UPSTREAM_BASE_ENV}={upstream.api_base}: {problem}.\n"
            f"It serves: {shown or '(no models; pull one first, e.g. `ollama pull llama3.2`)'}\n"
            f"Fix: {UPSTREAM_MODEL_ENV}={example} {UPSTREAM_BASE_ENV}={upstream.api_base} make local"
        )
    return warnings


@dataclass(frozen=True)
class LocalGateway:
    """Everything needed to start the proxy: the command line, its environment and the files written."""

    argv: list[str]
    env: dict[str, str]
    config_path: Path
    env_file: Path | None
    master_key: str
    url: str
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    # The run's team keys (llm_gateway.bootstrap.local_teams_document, mode 0600): the proxy accepts them
    # (LOCAL_GATEWAY_TEAMS_FILE) and the agent picks one per caller's team (LLM_GATEWAY_TEAMS_FILE).
    teams_file: Path | None = None


def generate_master_key() -> str:
    """A fresh master key for one local run (LiteLLM requires the `sk-` prefix)."""
    return f"sk-local-{secrets.token_urlsafe(32)}"


def upstreams_from_env(config: AppConfig, environ: Mapping[str, str]) -> dict[str, Upstream]:
    """Every alias served by `GATEWAY_UPSTREAM_BASE` when it is set; none otherwise."""
    base = environ.get(UPSTREAM_BASE_ENV, "").strip()
    if not base:
        return {}
    if not base.startswith(("http://", "https://")):
        raise CredentialsError(f"{UPSTREAM_BASE_ENV} must be an http(s) URL ending in /v1 (got {base!r})")
    key_env = environ.get(UPSTREAM_KEY_ENV, "").strip() or None
    if key_env is not None and not environ.get(key_env):
        raise CredentialsError(f"{UPSTREAM_KEY_ENV} names {key_env}, which is not set")
    model = environ.get(UPSTREAM_MODEL_ENV, "").strip() or None
    limits = environ.get(UPSTREAM_RATE_LIMITS_ENV, "").strip().lower()
    if limits not in UPSTREAM_RATE_LIMITS:
        raise CredentialsError(
            f"{UPSTREAM_RATE_LIMITS_ENV} must be one of {sorted(k for k in UPSTREAM_RATE_LIMITS if k)}"
            f" (got {limits!r})"
        )
    return {
        entry.alias: Upstream(
            api_base=base, model=model, api_key_env=key_env, rate_limits=UPSTREAM_RATE_LIMITS[limits]
        )
        for entry in config.models.entries
    }


def _aws_credentials_present() -> bool:
    import boto3  # imported lazily: only Bedrock needs it

    return boto3.session.Session().get_credentials() is not None


def _aws_region(environ: Mapping[str, str]) -> str | None:
    for name in AWS_REGION_ENVS:
        if environ.get(name):
            return environ[name]
    import boto3

    return boto3.session.Session().region_name


def check_credentials(
    config: AppConfig,
    upstreams: Mapping[str, Upstream],
    environ: Mapping[str, str],
    *,
    aws_credentials: Callable[[], bool] = _aws_credentials_present,
    aws_region: Callable[[Mapping[str, str]], str | None] = _aws_region,
) -> None:
    """Fail before the proxy starts when an alias cannot reach its provider.

    Raises:
        CredentialsError: naming each alias and the variables it needs.
    """
    problems: list[str] = []
    bedrock_aliases = []
    for entry in config.models.entries:
        if entry.alias in upstreams:
            continue
        if entry.provider == "bedrock":
            bedrock_aliases.append(entry.alias)
            continue
        needed = [name for name in (entry.api_base_env,) if name]
        key_env = entry.api_key_env or DEFAULT_API_KEY_ENV.get(entry.provider)
        if key_env:
            needed.append(key_env)
        missing = [name for name in needed if not environ.get(name)]
        if missing:
            problems.append(f"alias {entry.alias!r} ({entry.provider}) needs {', '.join(missing)}")
    if bedrock_aliases:
        if not aws_credentials():
            problems.append(
                f"aliases {bedrock_aliases} (bedrock) need AWS credentials: set AWS_PROFILE (after "
                "`aws sso login`) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if not aws_region(environ):
            problems.append(f"aliases {bedrock_aliases} (bedrock) need a region: set AWS_REGION")
    if problems:
        raise CredentialsError(
            "cannot start the local gateway:\n  - "
            + "\n  - ".join(problems)
            + f"\nor serve every alias from one OpenAI-compatible server: set {UPSTREAM_BASE_ENV}"
            f" (and optionally {UPSTREAM_MODEL_ENV}, {UPSTREAM_KEY_ENV})"
        )


def litellm_executable() -> str:
    """The `litellm` console script of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "litellm"
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(
        f"{candidate} not found: install llm_gateway/requirements.txt into this environment (make gateway does)"
    )


def prepare(
    config: AppConfig,
    *,
    state_dir: Path = STATE_DIR,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    upstreams: Mapping[str, Upstream] | None = None,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
    num_workers: int = 1,
    access_log: bool = False,
    write_env_file: bool = True,
    check: bool = True,
    aws_credentials: Callable[[], bool] = _aws_credentials_present,
) -> LocalGateway:
    """Check credentials, write the generated config (and the env file), and build the proxy command.

    Args:
        config: the validated app config (its model catalog drives the proxy).
        state_dir: where the config and env file go (created, mode 0700).
        host, port: where the proxy listens (loopback by default).
        upstreams: aliases re-pointed at OpenAI-compatible servers; default from GATEWAY_UPSTREAM_*.
        environ: the environment to check and to start from (default: os.environ).
        master_key: the key to require (default: a fresh one).
        num_workers: uvicorn workers (1 keeps rate-limit counters in one process).
        access_log: keep uvicorn's per-request access log lines (off by default: they cost latency).
        write_env_file: write `gateway.env` with URL and key for other local tools.
        check: verify provider credentials first.
        aws_credentials: how to detect AWS credentials (tests inject a stand-in).

    Raises:
        CredentialsError: when `check` finds an alias without credentials.
    """
    environ = dict(os.environ if environ is None else environ)
    if upstreams is None:
        upstreams = upstreams_from_env(config, environ)
    if check:
        check_credentials(config, upstreams, environ, aws_credentials=aws_credentials)
    langfuse = all(
        environ.get(name) for name in ("LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY")
    )
    document = local_config(config, upstreams, langfuse=langfuse)

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = state_dir / CONFIG_FILE_NAME
    config_path.write_text(render_yaml(document), encoding="utf-8")
    key = master_key or generate_master_key()
    url = f"http://{host}:{port}"
    # One fresh virtual key per team (and the default team), with the team budgets of the config: spend
    # follows the caller's team locally as deployed (docs/spend.md). A teams file named in the
    # environment (LOCAL_GATEWAY_TEAMS_FILE) is used as it is.
    if environ.get(TEAMS_FILE_ENV):
        teams_file = Path(environ[TEAMS_FILE_ENV])
    else:
        teams_file = state_dir / TEAMS_FILE_NAME
        _write_private(teams_file, json.dumps(local_teams_document(config)))
    env_file = None
    if write_env_file:
        env_file = state_dir / ENV_FILE_NAME
        _write_private(
            env_file, f"LLM_GATEWAY_URL={url}\nLLM_GATEWAY_KEY={key}\nLLM_GATEWAY_TEAMS_FILE={teams_file}\n"
        )

    env = {**environ, **{k: v for k, v in PROXY_ENV_DEFAULTS.items() if k not in environ}}
    env[ENV_MASTER_KEY] = key
    env[TEAMS_FILE_ENV] = str(teams_file)
    # The local auth hook (llm_gateway.local_auth) is imported by the proxy: make the repo importable.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environ.get("PYTHONPATH", "")]))
    argv = [
        litellm_executable(),
        "--config",
        str(config_path),
        "--host",
        host,
        "--port",
        str(port),
        "--num_workers",
        str(num_workers),
    ]
    if not access_log:
        argv += ["--log_config", str(QUIET_LOG_CONFIG)]
    return LocalGateway(
        argv=argv,
        env=env,
        config_path=config_path,
        env_file=env_file,
        master_key=key,
        url=url,
        upstreams=upstreams,
        teams_file=teams_file,
    )


def prepare_for_upstream(
    config: AppConfig,
    upstream: Upstream,
    *,
    state_dir: Path,
    port: int,
    master_key: str,
    environ: Mapping[str, str] | None = None,
) -> LocalGateway:
    """A proxy that sends every catalog alias to one OpenAI-compatible server (the scripted model of the
    tests, benchmarks and `make eval`): no env file, no credential check, and no Langfuse callback from
    the caller's environment (the agent's own spans are what those runs check).
    """
    source = os.environ if environ is None else environ
    return prepare(
        config,
        state_dir=state_dir,
        port=port,
        upstreams=dict.fromkeys((entry.alias for entry in config.models.entries), upstream),
        environ={k: v for k, v in source.items() if not k.startswith("LANGFUSE_")},
        master_key=master_key,
        write_env_file=False,
        check=False,
    )


def _write_private(path: Path, text: str) -> None:
    """Write a file only the current user can read (it holds the run's master key)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the LiteLLM gateway locally from the model catalog.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--profile", default=os.environ.get("PROFILE", "dev"), help="config profile (dev|prod)"
    )
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    parser.add_argument(
        "--check", action="store_true", help="check credentials and write files, do not start"
    )
    parser.add_argument("--access-log", action="store_true", help="log one line per request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config({"profile": args.profile})
    try:
        gateway = prepare(
            config, state_dir=args.state_dir, host=args.host, port=args.port, access_log=args.access_log
        )
        for warning in check_upstream(config, gateway.upstreams, gateway.env):
            logger.warning("%s", warning)
    except CredentialsError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"LLM gateway: {gateway.url} (OpenAI-compatible base URL {gateway.url}/v1)")
    print(f"aliases: {', '.join(entry.alias for entry in config.models.entries)}")
    print(f"config: {gateway.config_path}")
    print(f"master key for this run: in {gateway.env_file} (LLM_GATEWAY_KEY)")
    if args.check:
        return 0
    sys.stdout.flush()
    os.execve(gateway.argv[0], gateway.argv, gateway.env)  # noqa: S606 (replace this process with the proxy)


if __name__ == "__main__":
    raise SystemExit(main())
