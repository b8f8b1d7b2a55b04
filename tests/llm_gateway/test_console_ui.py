"""The LiteLLM admin UI served by the real proxy (loopback, no database), seen through the console's edge
function: what renders, what its login needs, and that every request it makes passes the path filter.

    CONSOLE_SCREENSHOT=docs/images/litellm-console.png .venv/bin/python -m pytest tests/llm_gateway/test_console_ui.py

writes the README's picture of the login page (docs/platform-console.md says why only that page).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from llm_gateway.config import Upstream
from llm_gateway.local import LocalGateway, prepare
from local_stack import components
from local_stack.processes import free_port
from local_stack.scripted_model import ScriptedModel
from scripts.ensure_browser import find_chromium
from tests.llm_gateway.conftest import scripted_catalog_config
from tests.stacks.test_llm_gateway_console import passes, run_function, viewer_request

# Refused at the edge on purpose: the login page's news panel, which has the proxy fetch LiteLLM's blog
# from the internet (the page renders without it).
REFUSED_ON_PURPOSE = {"/public/litellm_blog_posts"}
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]


@dataclass
class Console:
    gateway: LocalGateway
    password: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The proxy with the UI switched on as the deployed task has it (stacks/llm_gateway.py)."""
    state_dir = tmp_path_factory.mktemp("console")
    password = secrets.token_urlsafe(18)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LANGFUSE_")}
    environ |= {
        "DISABLE_ADMIN_UI": "False",
        "LITELLM_HIDE_DEFAULT_CREDENTIALS_HINT": "True",
        "UI_USERNAME": "admin",
        "UI_PASSWORD": password,
    }
    with ScriptedModel(model_name="scripted-primary") as primary:
        gateway = prepare(
            scripted_catalog_config(),
            state_dir=state_dir,
            port=free_port(),
            upstreams=dict.fromkeys(("primary", "backup", "limited"), Upstream(primary.base_url)),
            environ=environ,
            write_env_file=False,
            check=False,
        )
        with components.gateway(gateway, startup_timeout=90).process(state_dir / "litellm.log"):
            yield Console(gateway, password)


def test_the_right_login_fails_without_a_database(console: Console) -> None:
    # Why the UI stays off locally: LiteLLM mints the UI session as a virtual key in its database
    # (litellm/proxy/auth/login_utils.py `authenticate_user`, 1.102.4), which cannot run here.
    response = httpx.post(
        f"{console.gateway.url}/v2/login",
        json={"username": "admin", "password": console.password},
        timeout=30,
    )
    assert response.status_code in (400, 500)
    assert "DB" in response.text or "Database" in response.text


@pytest.mark.parametrize(
    "path",
    ["/key/list", "/team/list", "/user/info", "/v2/model/info", "/global/spend/keys", "/spend/logs/ui"],
)
def test_management_paths_the_edge_allows_need_a_key(console: Console, path: str) -> None:
    assert passes(run_function([viewer_request(path)])[0])
    response = httpx.get(f"{console.gateway.url}{path}", timeout=30)
    assert response.status_code == 401


def test_the_login_page_renders_and_every_request_it_makes_passes_the_edge(console: Console) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed: run `python -m scripts.ensure_browser`")
    from playwright.sync_api import sync_playwright

    requested: list[tuple[str, str]] = []
    base = console.gateway.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on(
                "request",
                lambda r: (
                    requested.append((r.method, httpx.URL(r.url).path)) if r.url.startswith(base) else None
                ),
            )
            page.goto(f"{base}/ui/", wait_until="networkidle")
            page.get_by_text("Username").first.wait_for(timeout=30_000)
            assert page.get_by_text("Password").first.is_visible()
            assert not page.get_by_text("Default Credentials").count()  # the hint is switched off
            output = os.environ.get("CONSOLE_SCREENSHOT")
            if output:
                Path(output).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=output)
        finally:
            browser.close()

    assert len(requested) > 5
    results = run_function([viewer_request(path, method) for method, path in requested])
    refused = {path for (_, path), result in zip(requested, results, strict=True) if not passes(result)}
    assert refused <= REFUSED_ON_PURPOSE
