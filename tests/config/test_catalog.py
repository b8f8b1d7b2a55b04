"""The model catalog lives in config/foundation.yaml: today's defaults, adding, replacing, switching."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import DEFAULT_CONFIG_FILE, AppConfig, ConfigError, build_config, load_config
from config.models import ModelCatalogConfig, ModelEntry
from llm_gateway.config import deployed_config, render_yaml

# The catalog as it was defined in Python (config/models.py) before it moved to the YAML file.
PREVIOUS_CATALOG = ModelCatalogConfig(
    entries=(
        ModelEntry(
            alias="claude-sonnet",
            provider="bedrock",
            model_id="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            fallbacks=("claude-haiku",),
            rpm=60,
            tpm=200_000,
        ),
        ModelEntry(
            alias="claude-haiku",
            provider="bedrock",
            model_id="us.anthropic.claude-haiku-4-5-20251001-v1:0",
            fallbacks=("nova-pro",),
            rpm=120,
            tpm=400_000,
        ),
        ModelEntry(alias="nova-pro", provider="bedrock", model_id="us.amazon.nova-pro-v1:0", rpm=120),
    ),
    agent_alias="claude-sonnet",
    judge_alias="claude-haiku",
)
NOVA_LITE = {"alias": "nova-lite", "provider": "bedrock", "model_id": "us.amazon.nova-lite-v1:0", "rpm": 120}


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    return loaded


def _write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "foundation.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


def test_the_catalog_has_no_python_default() -> None:
    fields = ModelCatalogConfig.model_fields
    assert fields["entries"].is_required()
    assert fields["agent_alias"].is_required() and fields["judge_alias"].is_required()
    assert AppConfig.model_fields["models"].is_required()


def test_the_yaml_file_holds_the_catalog() -> None:
    models = _document()["defaults"]["models"]
    assert [entry["alias"] for entry in models["entries"]] == ["claude-sonnet", "claude-haiku", "nova-pro"]


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_loaded_catalog_equals_the_previous_defaults(profile: str) -> None:
    assert load_config({"profile": profile}).models == PREVIOUS_CATALOG


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_generated_litellm_config_is_byte_for_byte_the_previous_one(profile: str) -> None:
    config = load_config({"profile": profile})
    previous = build_config({**config.model_dump(), "models": PREVIOUS_CATALOG.model_dump()})

    assert render_yaml(deployed_config(config)) == render_yaml(deployed_config(previous))


def test_a_model_added_in_the_yaml_reaches_the_generated_config(tmp_path: Path) -> None:
    document = _document()
    document["defaults"]["models"]["entries"].append(NOVA_LITE)

    config = load_config({"config_file": _write(tmp_path, document)})
    models = {model["model_name"]: model for model in deployed_config(config)["model_list"]}

    assert list(models) == ["claude-sonnet", "claude-haiku", "nova-pro", "nova-lite"]
    assert models["nova-lite"]["litellm_params"]["model"] == "bedrock/us.amazon.nova-lite-v1:0"
    assert models["nova-lite"]["litellm_params"]["rpm"] == 120
    assert "model: bedrock/us.amazon.nova-lite-v1:0" in render_yaml(deployed_config(config))


def test_the_commented_example_in_the_yaml_is_a_valid_entry() -> None:
    text = DEFAULT_CONFIG_FILE.read_text(encoding="utf-8")
    block = re.search(r"# - Add a model: append an entry here, e\.g\.\n((?:\s*#\s{5,}.*\n)+)", text)
    assert block is not None
    example = yaml.safe_load("\n".join(line.split("#", 1)[1] for line in block.group(1).splitlines()))
    assert example == [NOVA_LITE]
    ModelEntry.model_validate(example[0])


def test_a_profile_list_replaces_the_default_list(tmp_path: Path) -> None:
    document = _document()
    document["profiles"]["dev"]["models"] = {
        "entries": [NOVA_LITE],
        "agent_alias": "nova-lite",
        "judge_alias": "nova-lite",
    }
    path = _write(tmp_path, document)

    dev = load_config({"config_file": path, "profile": "dev"})
    prod = load_config({"config_file": path, "profile": "prod"})

    assert [entry.alias for entry in dev.models.entries] == ["nova-lite"]  # replaced, not merged
    assert dev.models.num_retries == PREVIOUS_CATALOG.num_retries  # mappings still merge key by key
    assert prod.models == PREVIOUS_CATALOG


def test_a_context_list_replaces_the_catalog() -> None:
    config = load_config(
        {
            "models.entries": json.dumps([NOVA_LITE]),
            "models.agent_alias": "nova-lite",
            "models.judge_alias": "nova-lite",
        }
    )
    assert [entry.alias for entry in config.models.entries] == ["nova-lite"]


def test_a_context_list_without_the_aliases_it_drops_names_the_alias() -> None:
    with pytest.raises(ConfigError, match=r"models.agent_alias.*'claude-sonnet' is not in the catalog"):
        load_config({"models.entries": json.dumps([NOVA_LITE])})


def test_switching_the_agent_and_judge_alias() -> None:
    config = load_config({"models.agent_alias": "claude-haiku", "models.judge_alias": "nova-pro"})
    assert (config.models.agent_alias, config.models.judge_alias) == ("claude-haiku", "nova-pro")
    assert config.models.entries == PREVIOUS_CATALOG.entries


def test_a_config_file_without_a_catalog_names_the_key(tmp_path: Path) -> None:
    document = _document()
    del document["defaults"]["models"]["entries"]
    with pytest.raises(ConfigError, match=r"config key 'models.entries': Field required"):
        load_config({"config_file": _write(tmp_path, document)})
