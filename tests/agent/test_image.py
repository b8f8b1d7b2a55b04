"""The agent image definition: ARM64, slim, non-root, pinned, no litellm, the tested versions."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
DOCKERFILE = (AGENT / "Dockerfile").read_text(encoding="utf-8")
REQUIREMENTS = [
    line.split("#")[0].strip()
    for line in (AGENT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    if line.split("#")[0].strip()
]


def test_every_stage_targets_arm64_on_a_slim_base() -> None:
    stages = re.findall(r"^FROM (.+)$", DOCKERFILE, flags=re.MULTILINE)
    assert len(stages) == 2 and all(stage.startswith("--platform=linux/arm64") for stage in stages)
    assert re.search(r"^ARG PYTHON_IMAGE=\S+:3\.11\.\d+-slim-bookworm$", DOCKERFILE, flags=re.MULTILINE)


def test_runs_as_a_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_entrypoint_is_the_agent_without_auto_instrumentation() -> None:
    assert 'ENTRYPOINT ["python", "-m", "agent.main"]' in DOCKERFILE
    assert "opentelemetry-instrument" not in DOCKERFILE.split("ENTRYPOINT")[1]


def test_requirements_are_pinned_to_the_tested_versions_without_litellm() -> None:
    assert REQUIREMENTS
    for requirement in REQUIREMENTS:
        name, _, pinned = requirement.partition("==")
        assert pinned, f"{requirement} is not pinned"
        installed = version(re.sub(r"\[.*\]", "", name))
        assert installed == pinned, f"{name}: the tested venv has {installed}"
        assert not name.lower().startswith("litellm")
