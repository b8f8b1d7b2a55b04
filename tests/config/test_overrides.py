"""Context overrides: list values, CDK's own keys, unknown keys with a suggestion, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import config
from config import CDK_JSON, REPO_ROOT, AppConfig, ConfigError, known_keys, load_config
from config.base import Section, is_scalar_list


def _field(dotted: str) -> Any:
    """The pydantic FieldInfo of a dotted config key."""
    model: Any = AppConfig
    *parents, last = dotted.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    return model.model_fields[last]


LIST_KEYS = [key for key in known_keys() if is_scalar_list(_field(key).annotation)]


def _error(context: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(context)
    return str(raised.value)


# --- list fields: comma-separated or JSON ------------------------------------------------------------


def test_list_keys_are_found_by_annotation() -> None:
    assert {
        "identity.callback_urls",
        "identity.logout_urls",
        "identity.teams",
        "guardrail.blocked_words",
        "agentcore.runtime_az_ids",
    } <= set(LIST_KEYS)
    assert "models.entries" not in LIST_KEYS  # a list of objects: JSON/YAML only
    assert "llm_gateway.team_budgets" not in LIST_KEYS


def test_comma_separated_callback_urls() -> None:
    config = load_config({"identity.callback_urls": "https://chat.example.com/, http://localhost:8501/"})
    assert config.identity.callback_urls == ("https://chat.example.com/", "http://localhost:8501/")


def test_json_list_of_callback_urls() -> None:
    config = load_config({"identity.callback_urls": '["https://chat.example.com/"]'})
    assert config.identity.callback_urls == ("https://chat.example.com/",)


def test_one_plain_url_is_a_one_item_list_and_http_is_refused_by_its_own_rule() -> None:
    message = _error({"identity.callback_urls": "http://example.com"})
    assert "config key 'identity.callback_urls'" in message and "must use https://" in message
    assert "valid tuple" not in message


@pytest.mark.parametrize("key", LIST_KEYS)
def test_every_list_field_reads_comma_separated_like_json(key: str) -> None:
    """Same outcome (value or error) for `a,b` and `["a", "b"]`, for every scalar list field."""
    items = ["support", "platform"] if key == "identity.teams" else ["https://a.example.com/", "b"]

    def outcome(raw: str) -> Any:
        try:
            return load_config({key: raw}).model_dump()
        except ConfigError as error:
            return str(error).replace(repr(tuple(items)), "<items>").replace(repr(items), "<items>")

    comma, listed = outcome(",".join(items)), outcome(json.dumps(items))
    assert comma == listed
    assert "valid tuple" not in str(comma)


def test_section_splits_strings_for_list_fields_only() -> None:
    class Sample(Section):
        names: tuple[str, ...] = ()
        maybe: tuple[int, ...] | None = None
        label: str = ""

    sample = Sample.model_validate({"names": "a, b", "maybe": "1,2", "label": "x,y"})
    assert (sample.names, sample.maybe, sample.label) == (("a", "b"), (1, 2), "x,y")


# --- CDK's own context keys and undotted keys -----------------------------------------------------


def test_cdk_json_context_and_cdk_cli_keys_are_accepted() -> None:
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    context.update(
        {
            "aws:cdk:enable-path-metadata": True,
            "aws:cdk:version-reporting": False,
            "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
            "acknowledged-issue-numbers": [32775],
            "cli-telemetry": False,
            "profile": "dev",
        }
    )
    assert load_config(context).project.profile == "dev"


def test_any_key_of_cdk_json_context_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"app": "x", "context": {"team-flag": True}}), encoding="utf-8")
    monkeypatch.setattr(config, "CDK_JSON", cdk_json)
    config._non_config_context_keys.cache_clear()
    try:
        load_config({"team-flag": True})
        monkeypatch.setattr(config, "CDK_JSON", tmp_path / "absent.json")
        config._non_config_context_keys.cache_clear()
        assert "'team-flag' is not a config key" in _error({"team-flag": True})
    finally:
        config._non_config_context_keys.cache_clear()


def test_undotted_key_suggests_the_dotted_one() -> None:
    message = _error({"nat_gateways": "2"})
    assert message.startswith("context key 'nat_gateways' is not a config key")
    assert message.endswith("did you mean network.nat_gateways?")


def test_undotted_unknown_key_fails_without_a_guess() -> None:
    assert _error({"frobnicate": "1"}) == (
        "context key 'frobnicate' is not a config key: config keys are dotted (section.key)"
    )


def test_a_section_name_alone_is_refused() -> None:
    assert "e.g. network." in _error({"network": "2"})


# --- typos suggest the nearest key ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "guess"),
    [
        ("network.nat_gatways", "network.nat_gateways"),
        ("identity.callback_url", "identity.callback_urls"),
        ("llm_gateway.nat_gateways", "network.nat_gateways"),
        ("knowledge_base.chunkin.strategy", "knowledge_base.chunking"),
        ("netwrk.nat_gateways", "network.nat_gateways"),
        ("models.agent_aliass", "models.agent_alias"),
    ],
)
def test_typo_suggests_the_nearest_key(key: str, guess: str) -> None:
    message = _error({key: "1"})
    assert message.endswith(f"did you mean {guess}?"), message


def test_typo_in_the_yaml_file_suggests_too(tmp_path: Path) -> None:
    document = (REPO_ROOT / "config" / "foundation.yaml").read_text(encoding="utf-8")
    odd = tmp_path / "odd.yaml"
    odd.write_text(document.replace("    max_azs: 2\n", "    max_az: 2\n", 1), encoding="utf-8")
    message = _error({"config_file": str(odd)})
    assert "config key 'network.max_az': unknown config key; did you mean network.max_azs?" in message


def test_keys_inside_mapping_fields_are_not_typos() -> None:
    config = load_config({"network.az_names.use1-az1": "us-east-1c"})
    assert config.network.az_names == {"use1-az1": "us-east-1c"}


# --- external components: a ConfigError at load, naming the missing keys ---------------------------


@pytest.mark.parametrize(
    ("component", "keys"),
    [
        ("observability", ["observability.external_host", "observability.external_keys_secret_name"]),
        (
            "llm_gateway",
            [
                "llm_gateway.external_url",
                "llm_gateway.external_agent_key_secret_name",
                "llm_gateway.external_eval_key_secret_name",
            ],
        ),
    ],
)
def test_external_component_without_its_keys_is_a_config_error(component: str, keys: list[str]) -> None:
    message = _error({f"components.{component}": "external"})
    assert f"config key 'components.{component}'" in message and "\n" not in message
    assert all(key in message for key in keys), message
    # one key set: only the others are named
    message = _error({f"components.{component}": "external", keys[0]: "https://x.example.com"})
    assert keys[0] not in message and all(key in message for key in keys[1:]), message


def test_external_components_with_their_keys_load() -> None:
    config = load_config(
        {
            "components.observability": "external",
            "observability.external_host": "https://cloud.langfuse.com",
            "observability.external_keys_secret_name": "aaf/langfuse",
            "components.llm_gateway": "external",
            "llm_gateway.external_url": "https://llm.example.com",
            "llm_gateway.external_agent_key_secret_name": "team/llm/agent",
            "llm_gateway.external_eval_key_secret_name": "team/llm/eval",
        }
    )
    assert (config.components.observability, config.components.llm_gateway) == ("external", "external")


def test_single_error_is_one_line() -> None:
    message = _error({"network.nat_gateways": "7"})
    assert "\n" not in message and message.startswith("invalid configuration (")


# --- the real CLI path: app.py reads the context cdk passes in CDK_CONTEXT_JSON --------------------


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"nat_gateways": "2"}, "did you mean network.nat_gateways?"),
        ({"components.observability": "external"}, "observability.external_host"),
        ({"identity.callback_urls": "http://example.com"}, "must use https://"),
    ],
)
def test_app_exits_with_one_error_line(tmp_path: Path, override: dict[str, str], fragment: str) -> None:
    context = {**json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"], **override}
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    }
    result = subprocess.run(  # our own app with a fixed argv
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # jsii prints a framed banner (b'!! ... !!') when Node.js is end-of-life, with no switch to silence
    # it; it is not ours, so it is left out of the count
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("b'!!")]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
