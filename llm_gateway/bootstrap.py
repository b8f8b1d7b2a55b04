"""Idempotent bootstrap of the deployed gateway: teams with budgets, and virtual keys for the services.

Runs on every relevant deploy (a Lambda-backed custom resource, functions/gateway_bootstrap) against
LiteLLM's admin API with the master key:

- Teams (one per Cognito team group): `GET /team/info?team_id=` -> `POST /team/new` when absent
  (404), `POST /team/update` only when budget or limits differ from the plan.
- Keys (the agent's and the evaluation's): the key value is generated here and written to its
  Secrets Manager secret (`{"api_key": ..., "key_alias": ...}`) BEFORE LiteLLM learns it; then
  `GET /key/info?key=` -> `POST /key/generate` with that value when absent, `POST /key/update` when
  its budget, limits, team or models differ. A run interrupted anywhere therefore converges on the
  next run without duplicate teams or keys: the secret already holds the value the next run registers.

Only the standard library and boto3 are used, so the module runs in the Lambda runtime unbundled.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the Lambda never imports the typed config
    from config import AppConfig

logger = logging.getLogger(__name__)

KEY_PREFIX = "sk-"  # LiteLLM requires virtual keys to start with sk-


class GatewayAdminError(RuntimeError):
    """The admin API answered something unexpected; the message has the method, path, status and body."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status = status


@dataclass(frozen=True)
class TeamSpec:
    """A LiteLLM team and its budget and limits."""

    team_id: str
    max_budget: float
    budget_duration: str
    rpm_limit: int
    tpm_limit: int


@dataclass(frozen=True)
class KeySpec:
    """A virtual key for one service, stored in `secret_id`."""

    name: str
    key_alias: str
    team_id: str
    secret_id: str
    max_budget: float
    budget_duration: str
    rpm_limit: int
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class BootstrapPlan:
    """What the gateway must hold after a bootstrap run."""

    teams: tuple[TeamSpec, ...]
    keys: tuple[KeySpec, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BootstrapPlan:
        data = json.loads(text)
        return cls(
            teams=tuple(TeamSpec(**team) for team in data["teams"]),
            keys=tuple(KeySpec(**{**key, "models": tuple(key.get("models", ()))}) for key in data["keys"]),
        )


@dataclass
class BootstrapResult:
    """What a run changed (empty lists: everything was already as planned)."""

    teams_created: list[str] = field(default_factory=list)
    teams_updated: list[str] = field(default_factory=list)
    keys_created: list[str] = field(default_factory=list)
    keys_updated: list[str] = field(default_factory=list)


def plan_from_config(config: AppConfig, *, agent_secret_id: str, eval_secret_id: str) -> BootstrapPlan:
    """Teams from `identity.teams` with budgets from `llm_gateway.team_budgets`; the agent and evaluation keys.

    Raises:
        ValueError: naming the config key when a team has no budget or a key's team is not a team.
    """
    gateway = config.llm_gateway
    budgets = {budget.team: budget for budget in gateway.team_budgets}
    teams = []
    for team in config.identity.teams:
        if team not in budgets:
            raise ValueError(
                f"config key 'llm_gateway.team_budgets': team {team!r} (identity.teams) has no budget; "
                f"budgeted teams: {sorted(budgets)}"
            )
        budget = budgets[team]
        teams.append(TeamSpec(team, budget.max_budget_usd, budget.budget_duration, budget.rpm, budget.tpm))
    for key in ("agent_key_team", "eval_key_team"):
        if getattr(gateway, key) not in config.identity.teams:
            raise ValueError(
                f"config key 'llm_gateway.{key}': {getattr(gateway, key)!r} is not one of identity.teams "
                f"{list(config.identity.teams)}"
            )
    aliases = tuple(entry.alias for entry in config.models.entries)
    keys = (
        KeySpec(
            name="agent",
            key_alias=f"{config.prefix}-agent",
            team_id=gateway.agent_key_team,
            secret_id=agent_secret_id,
            max_budget=gateway.agent_key_budget_usd,
            budget_duration="30d",
            rpm_limit=gateway.agent_key_rpm,
            models=aliases,
        ),
        KeySpec(
            name="evaluation",
            key_alias=f"{config.prefix}-evaluation",
            team_id=gateway.eval_key_team,
            secret_id=eval_secret_id,
            max_budget=gateway.eval_key_budget_usd,
            budget_duration="30d",
            rpm_limit=gateway.eval_key_rpm,
            models=aliases,
        ),
    )
    return BootstrapPlan(teams=tuple(teams), keys=keys)


class AdminClient:
    """LiteLLM's admin API over urllib, authenticated with the master key."""

    def __init__(self, base_url: str, master_key: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._master_key = master_key
        self.timeout = timeout

    def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """Send one request; return (status, parsed JSON or text). Transport errors propagate."""
        url = f"{self.base_url}{path}"
        if query:
            url = f"{url}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (URL from our own config)
        request.add_header("Authorization", f"Bearer {self._master_key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return int(response.status), _parse(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), _parse(error.read())

    def _expect(self, method: str, path: str, ok: Sequence[int], **kwargs: Any) -> tuple[int, Any]:
        status, payload = self.request(method, path, **kwargs)
        if status not in ok:
            raise GatewayAdminError(
                method, path, status, json.dumps(payload) if not isinstance(payload, str) else payload
            )
        return status, payload

    def wait_until_ready(self, timeout: float = 600.0, interval: float = 5.0) -> None:
        """Poll `/health/readiness` (database connected) until it answers 200 or `timeout` passes."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                status, payload = self.request("GET", "/health/readiness")
                if status == 200:
                    return
                last = f"{status} {payload}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last = str(error)
            time.sleep(interval)
        raise TimeoutError(f"{self.base_url}/health/readiness not ready after {timeout:.0f}s: {last}")

    def team_info(self, team_id: str) -> dict[str, Any] | None:
        status, payload = self._expect("GET", "/team/info", (200, 404), query={"team_id": team_id})
        if status == 404:
            return None
        info = payload.get("team_info", payload) if isinstance(payload, dict) else {}
        return dict(info)

    def new_team(self, body: Mapping[str, Any]) -> None:
        self._expect("POST", "/team/new", (200,), body=dict(body))

    def update_team(self, body: Mapping[str, Any]) -> None:
        self._expect("POST", "/team/update", (200,), body=dict(body))

    def key_info(self, key: str) -> dict[str, Any] | None:
        status, payload = self._expect("GET", "/key/info", (200, 404), query={"key": key})
        if status == 404:
            return None
        return dict(payload.get("info", {})) if isinstance(payload, dict) else {}

    def generate_key(self, body: Mapping[str, Any]) -> None:
        self._expect("POST", "/key/generate", (200,), body=dict(body))

    def update_key(self, body: Mapping[str, Any]) -> None:
        self._expect("POST", "/key/update", (200,), body=dict(body))


def _parse(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class KeyStore(Protocol):
    """Where service keys live (Secrets Manager in AWS)."""

    def read(self, secret_id: str) -> str | None: ...

    def write(self, secret_id: str, api_key: str, key_alias: str) -> None: ...


class SecretsManagerKeyStore:
    """Keys as JSON `{"api_key": ..., "key_alias": ...}` in secrets the stack created empty."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, secret_id: str) -> str | None:
        try:
            value = self._client.get_secret_value(SecretId=secret_id)["SecretString"]
        except self._client.exceptions.ResourceNotFoundException:
            return None  # a secret without any version yet
        try:
            api_key = json.loads(value).get("api_key")
        except (json.JSONDecodeError, AttributeError):
            logger.warning("secret %s does not hold JSON; a new key will be written", secret_id)
            return None
        return api_key if isinstance(api_key, str) and api_key.startswith(KEY_PREFIX) else None

    def write(self, secret_id: str, api_key: str, key_alias: str) -> None:
        self._client.put_secret_value(
            SecretId=secret_id, SecretString=json.dumps({"api_key": api_key, "key_alias": key_alias})
        )


def new_virtual_key() -> str:
    return f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"


def _team_body(team: TeamSpec) -> dict[str, Any]:
    return {
        "team_id": team.team_id,
        "team_alias": team.team_id,
        "max_budget": team.max_budget,
        "budget_duration": team.budget_duration,
        "rpm_limit": team.rpm_limit,
        "tpm_limit": team.tpm_limit,
    }


def _key_body(spec: KeySpec) -> dict[str, Any]:
    return {
        "key_alias": spec.key_alias,
        "team_id": spec.team_id,
        "max_budget": spec.max_budget,
        "budget_duration": spec.budget_duration,
        "rpm_limit": spec.rpm_limit,
        "models": list(spec.models),
        "metadata": {"service": spec.name, "managed_by": "gateway-bootstrap"},
    }


_TEAM_FIELDS = ("max_budget", "budget_duration", "rpm_limit", "tpm_limit")
_KEY_FIELDS = ("key_alias", "team_id", "max_budget", "budget_duration", "rpm_limit", "models")


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any], fields: Sequence[str]) -> bool:
    def normal(value: Any) -> Any:
        return sorted(value) if isinstance(value, list | tuple) else value

    return any(normal(current.get(name)) != normal(desired[name]) for name in fields)


def run_bootstrap(plan: BootstrapPlan, admin: AdminClient, store: KeyStore) -> BootstrapResult:
    """Make the gateway hold exactly the planned teams and keys; safe to run any number of times.

    Raises:
        GatewayAdminError: when the admin API refuses a request (nothing already done is undone; the
            next run picks up where this one stopped).
    """
    result = BootstrapResult()
    for team in plan.teams:
        body = _team_body(team)
        current = admin.team_info(team.team_id)
        if current is None:
            admin.new_team(body)
            result.teams_created.append(team.team_id)
        elif _differs(current, body, _TEAM_FIELDS):
            admin.update_team(body)
            result.teams_updated.append(team.team_id)
    for spec in plan.keys:
        api_key = store.read(spec.secret_id)
        if api_key is None:
            api_key = new_virtual_key()
            store.write(spec.secret_id, api_key, spec.key_alias)  # first: a lost response cannot orphan a key
        body = _key_body(spec)
        current = admin.key_info(api_key)
        if current is None:
            admin.generate_key({**body, "key": api_key})
            result.keys_created.append(spec.name)
        elif _differs(current, body, _KEY_FIELDS):
            admin.update_key({**body, "key": api_key})
            result.keys_updated.append(spec.name)
    logger.info("gateway bootstrap: %s", asdict(result))
    return result
