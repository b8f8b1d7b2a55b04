"""The local launcher: fail fast on missing credentials, generated per-run key, files and command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import REPO_ROOT, build_config
from llm_gateway.local import (
    CONFIG_FILE_NAME,
    QUIET_LOG_CONFIG,
    CredentialsError,
    check_credentials,
    generate_master_key,
    prepare,
    upstreams_from_env,
)
from tests.factories import test_config


def no_aws() -> bool:
    return False


def test_bedrock_without_aws_credentials_fails_naming_the_variables() -> None:
    config = test_config("dev")

    with pytest.raises(CredentialsError) as raised:
        check_credentials(config, {}, {"AWS_REGION": "us-east-1"}, aws_credentials=no_aws)

    message = str(raised.value)
    assert "AWS_PROFILE" in message
    assert "AWS_ACCESS_KEY_ID" in message
    assert "claude-sonnet" in message
    assert "GATEWAY_UPSTREAM_BASE" in message


def test_bedrock_without_a_region_fails_naming_aws_region() -> None:
    with pytest.raises(CredentialsError, match="AWS_REGION"):
        check_credentials(
            test_config("dev"), {}, {}, aws_credentials=lambda: True, aws_region=lambda env: None
        )


def test_bedrock_with_credentials_and_region_passes() -> None:
    check_credentials(test_config("dev"), {}, {"AWS_REGION": "us-east-1"}, aws_credentials=lambda: True)


def test_openai_alias_without_key_names_openai_api_key() -> None:
    config = build_config(
        {
            "models": {
                "entries": [{"alias": "gpt", "provider": "openai", "model_id": "gpt-4.1-mini"}],
                "agent_alias": "gpt",
                "judge_alias": "gpt",
            }
        }
    )

    with pytest.raises(CredentialsError, match="alias 'gpt' \\(openai\\) needs OPENAI_API_KEY"):
        check_credentials(config, {}, {})
    check_credentials(config, {}, {"OPENAI_API_KEY": "sk-from-the-user"})


def test_upstream_base_serves_every_alias_and_needs_no_aws() -> None:
    config = test_config("dev")
    environ = {"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:8001/v1", "GATEWAY_UPSTREAM_MODEL": "qwen3"}

    upstreams = upstreams_from_env(config, environ)

    assert set(upstreams) == {entry.alias for entry in config.models.entries}
    assert {u.model for u in upstreams.values()} == {"qwen3"}
    check_credentials(config, upstreams, environ, aws_credentials=no_aws)


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"GATEWAY_UPSTREAM_BASE": "localhost:8001"}, "http(s) URL"),
        ({"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:1/v1", "GATEWAY_UPSTREAM_KEY_ENV": "MY_KEY"}, "MY_KEY"),
    ],
)
def test_bad_upstream_settings_are_named(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(CredentialsError, match=fragment.replace("(", "\\(").replace(")", "\\)")):
        upstreams_from_env(test_config("dev"), environ)


def test_master_key_is_fresh_per_run() -> None:
    keys = {generate_master_key() for _ in range(20)}

    assert len(keys) == 20
    assert all(key.startswith("sk-local-") and len(key) > 40 for key in keys)


def test_prepare_writes_config_and_a_loopback_command(tmp_path: Path) -> None:
    gateway = prepare(
        test_config("dev"),
        state_dir=tmp_path,
        port=4123,
        environ={"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:8001/v1"},
    )

    assert gateway.config_path == tmp_path / CONFIG_FILE_NAME
    document = yaml.safe_load(gateway.config_path.read_text())
    assert {m["litellm_params"]["api_base"] for m in document["model_list"]} == {"http://127.0.0.1:8001/v1"}
    assert gateway.argv[1:9] == [
        "--config",
        str(gateway.config_path),
        "--host",
        "127.0.0.1",
        "--port",
        "4123",
        "--num_workers",
        "1",
    ]
    assert gateway.argv[9:] == ["--log_config", str(QUIET_LOG_CONFIG)]
    assert gateway.env["LITELLM_MASTER_KEY"] == gateway.master_key
    assert gateway.master_key not in gateway.config_path.read_text()
    assert str(REPO_ROOT) in gateway.env["PYTHONPATH"].split(os.pathsep)


def test_prepare_gives_each_team_a_fresh_key_that_the_proxy_and_the_agent_read(tmp_path: Path) -> None:
    config = test_config("dev")
    gateway = prepare(
        config, state_dir=tmp_path, environ={"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:8001/v1"}
    )

    assert gateway.teams_file is not None
    assert gateway.env["LOCAL_GATEWAY_TEAMS_FILE"] == str(gateway.teams_file)  # llm_gateway.local_auth
    assert oct(gateway.teams_file.stat().st_mode & 0o777) == "0o600"
    document = json.loads(gateway.teams_file.read_text())
    teams = (*config.identity.teams, config.llm_gateway.default_team)
    assert sorted(document["team_keys"]) == sorted(teams)
    assert document["default_team"] == config.llm_gateway.default_team
    assert document["api_key"] == document["team_keys"][config.llm_gateway.default_team]
    keys = list(document["team_keys"].values())
    assert len(set(keys)) == len(keys) and all(key.startswith("sk-") for key in keys)
    assert gateway.master_key not in keys
    budgets = {budget.team: budget.max_budget_usd for budget in config.llm_gateway.team_budgets}
    assert document["budgets"] == {team: budgets[team] for team in teams}
    assert gateway.env_file is not None
    assert f"LLM_GATEWAY_TEAMS_FILE={gateway.teams_file}\n" in gateway.env_file.read_text()  # the agent's
    again = prepare(config, state_dir=tmp_path, environ={"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:8001/v1"})
    assert again.teams_file is not None
    assert set(json.loads(again.teams_file.read_text())["team_keys"].values()).isdisjoint(keys)  # per run


def test_a_teams_file_named_in_the_environment_is_used_as_it_is(tmp_path: Path) -> None:
    own = tmp_path / "own-teams.json"
    own.write_text('{"team_keys": {}}')
    environ = {"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:8001/v1", "LOCAL_GATEWAY_TEAMS_FILE": str(own)}
    gateway = prepare(test_config("dev"), state_dir=tmp_path / "state", environ=environ)

    assert gateway.teams_file == own
    assert gateway.env["LOCAL_GATEWAY_TEAMS_FILE"] == str(own)
    assert own.read_text() == '{"team_keys": {}}'
    assert not (tmp_path / "state" / "teams.json").exists()


def test_cli_without_credentials_exits_2_before_starting_the_proxy(tmp_path: Path) -> None:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "GATEWAY_UPSTREAM", "OPENAI_", "ANTHROPIC_"))
    }
    environ |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1",
    }

    result = subprocess.run(
        [sys.executable, "-m", "llm_gateway.local", "--state-dir", str(tmp_path / "state")],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert "AWS_PROFILE" in result.stderr
    assert "GATEWAY_UPSTREAM_BASE" in result.stderr
    assert not (tmp_path / "state" / "gateway.env").exists()


@pytest.mark.parametrize(
    ("value", "limited"), [(None, False), ("", False), ("off", False), ("catalog", True), ("CATALOG", True)]
)
def test_upstream_rate_limits_are_off_unless_asked(tmp_path: Path, value: str | None, limited: bool) -> None:
    environ = {"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:8001/v1"}
    if value is not None:
        environ["GATEWAY_UPSTREAM_RATE_LIMITS"] = value

    gateway = prepare(test_config("dev"), state_dir=tmp_path, environ=environ, write_env_file=False)

    document = yaml.safe_load(gateway.config_path.read_text())
    for model in document["model_list"]:
        assert ("rpm" in model["litellm_params"]) is limited, model


def test_a_bad_rate_limit_setting_is_named() -> None:
    with pytest.raises(CredentialsError, match=r"GATEWAY_UPSTREAM_RATE_LIMITS.*'bedrock'"):
        upstreams_from_env(
            test_config("dev"),
            {"GATEWAY_UPSTREAM_BASE": "http://127.0.0.1:1/v1", "GATEWAY_UPSTREAM_RATE_LIMITS": "bedrock"},
        )


def test_prepare_for_upstream_routes_every_alias_to_it_without_langfuse_or_an_env_file(
    tmp_path: Path,
) -> None:
    """What the tests, `make eval` and `make soak` start: one scripted server behind every catalog alias."""
    from llm_gateway.config import Upstream
    from llm_gateway.local import prepare_for_upstream

    config = test_config("dev")
    environ = {"LANGFUSE_HOST": "http://127.0.0.1:1", "LANGFUSE_SECRET_KEY": "sk-lf-x", "PATH": "/usr/bin"}
    gateway = prepare_for_upstream(
        config,
        Upstream(api_base="http://127.0.0.1:8001/v1", model="scripted"),
        state_dir=tmp_path,
        port=4124,
        master_key="sk-test-master",
        environ=environ,
    )

    document = yaml.safe_load(gateway.config_path.read_text())
    routed = {m["model_name"]: m["litellm_params"]["api_base"] for m in document["model_list"]}
    assert set(routed) >= {entry.alias for entry in config.models.entries}
    assert set(routed.values()) == {"http://127.0.0.1:8001/v1"}
    assert gateway.env_file is None and not (tmp_path / "gateway.env").exists()
    assert not any(key.startswith("LANGFUSE_") for key in gateway.env)
    assert gateway.master_key == "sk-test-master" and gateway.url.endswith(":4124")
