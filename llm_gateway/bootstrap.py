"""Idempotent bootstrap of the deployed gateway: teams with budgets, and virtual keys for the services.

Runs on every relevant deploy (a Lambda-backed custom resource, functions/gateway_bootstrap) against
LiteLLM's admin API with the master key:

- Teams (one per Cognito team group, plus `llm_gateway.default_team` for callers in none):
  `GET /team/info?team_id=` -> `POST /team/new` when absent (404), `POST /team/update` only when
  budget or limits differ from the plan.
- The agent's team keys: one virtual key per team (alias `<prefix>-team-<team>`, the team's budget,
  rpm and tpm), all in the agent's one secret (`team_keys_document`): `{"api_key": <default team's
  key>, "key_alias": ..., "default_team": ..., "team_keys": {team: key, ...}}`. The agent picks the
  key per call by the caller's team (docs/spend.md). A secret from before team keys (`api_key` only)
  keeps its value as the default team's key, so the old key is re-attributed, not orphaned.
- The evaluation's key: `{"api_key": ..., "key_alias": ...}` in its own secret.

Every key value is generated here and written to its secret BEFORE LiteLLM learns it; then
`GET /key/info?key=` -> `POST /key/generate` with that value when absent, `POST /key/update` when
its budget, limits, team or models differ. A run interrupted anywhere therefore converges on the
next run without duplicate teams or keys: the secret already holds the values the next run registers.
Nothing is ever deleted: a team removed from the config keeps its LiteLLM team and key (its key
leaves the agent's secret, so the agent stops using it).

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
    tpm_limit: int | None = None  # sent only when set (the team keys carry their team's tpm)


@dataclass(frozen=True)
class TeamKeysSpec:
    """The agent's keys, one per team (`keys[i].team_id`), stored together in `secret_id`."""

    secret_id: str
    default_team: str
    keys: tuple[KeySpec, ...]


@dataclass(frozen=True)
class BootstrapPlan:
    """What the gateway must hold after a bootstrap run."""

    teams: tuple[TeamSpec, ...]
    keys: tuple[KeySpec, ...]
    team_keys: TeamKeysSpec | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BootstrapPlan:
        data = json.loads(text)
        team_keys = data.get("team_keys")
        return cls(
            teams=tuple(TeamSpec(**team) for team in data["teams"]),
            keys=tuple(_key_spec(key) for key in data["keys"]),
            team_keys=None
            if team_keys is None
            else TeamKeysSpec(
                secret_id=team_keys["secret_id"],
                default_team=team_keys["default_team"],
                keys=tuple(_key_spec(key) for key in team_keys["keys"]),
            ),
        )


def _key_spec(data: Mapping[str, Any]) -> KeySpec:
    return KeySpec(**{**data, "models": tuple(data.get("models", ()))})


@dataclass
class BootstrapResult:
    """What a run changed (empty lists: everything was already as planned)."""

    teams_created: list[str] = field(default_factory=list)
    teams_updated: list[str] = field(default_factory=list)
    keys_created: list[str] = field(default_factory=list)
    keys_updated: list[str] = field(default_factory=list)


def plan_from_config(config: AppConfig, *, agent_secret_id: str, eval_secret_id: str) -> BootstrapPlan:
    """Teams from `identity.teams` plus `llm_gateway.default_team`, with budgets from
    `llm_gateway.team_budgets`; one agent key per team (in `agent_secret_id`) and the evaluation key.

    Raises:
        ValueError: naming the config key when a team has no budget, the default team is a Cognito
            team, or the evaluation key's team is not a team.
    """
    gateway = config.llm_gateway
    budgets = {budget.team: budget for budget in gateway.team_budgets}
    if gateway.default_team in config.identity.teams:
        raise ValueError(
            f"config key 'llm_gateway.default_team': {gateway.default_team!r} is one of identity.teams; "
            "the default team is for callers in no team group, so it must not be a Cognito group"
        )
    teams = []
    for team in (*config.identity.teams, gateway.default_team):
        if team not in budgets:
            raise ValueError(
                f"config key 'llm_gateway.team_budgets': team {team!r} (identity.teams) has no budget; "
                f"budgeted teams: {sorted(budgets)}"
            )
        budget = budgets[team]
        teams.append(TeamSpec(team, budget.max_budget_usd, budget.budget_duration, budget.rpm, budget.tpm))
    if gateway.eval_key_team not in config.identity.teams:
        raise ValueError(
            f"config key 'llm_gateway.eval_key_team': {gateway.eval_key_team!r} is not one of "
            f"identity.teams {list(config.identity.teams)}"
        )
    aliases = tuple(entry.alias for entry in config.models.entries)
    team_keys = TeamKeysSpec(
        secret_id=agent_secret_id,
        default_team=gateway.default_team,
        keys=tuple(
            KeySpec(
                name=f"team-{team.team_id}",
                key_alias=f"{config.prefix}-team-{team.team_id}",
                team_id=team.team_id,
                secret_id=agent_secret_id,
                max_budget=team.max_budget,
                budget_duration=team.budget_duration,
                rpm_limit=team.rpm_limit,
                tpm_limit=team.tpm_limit,
                models=aliases,
            )
            for team in teams
        ),
    )
    keys = (
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
    return BootstrapPlan(teams=tuple(teams), keys=keys, team_keys=team_keys)


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
    """Where keys live (Secrets Manager in AWS): one JSON object per secret."""

    def read_document(self, secret_id: str) -> dict[str, Any]: ...

    def write_document(self, secret_id: str, document: Mapping[str, Any]) -> None: ...


def _is_key(value: object) -> bool:
    return isinstance(value, str) and value.startswith(KEY_PREFIX)


class SecretsManagerKeyStore:
    """Keys as JSON objects (`{"api_key": ..., "key_alias": ...}`, or `team_keys_document`) in secrets
    the stack created empty."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read_document(self, secret_id: str) -> dict[str, Any]:
        """The secret's JSON object; `{}` for a secret without a version or without a JSON object."""
        try:
            value = self._client.get_secret_value(SecretId=secret_id)["SecretString"]
        except self._client.exceptions.ResourceNotFoundException:
            return {}  # a secret without any version yet
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            logger.warning("secret %s does not hold a JSON object; new keys will be written", secret_id)
            return {}
        return document

    def write_document(self, secret_id: str, document: Mapping[str, Any]) -> None:
        self._client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(dict(document)))


def team_keys_document(spec: TeamKeysSpec, values: Mapping[str, str]) -> dict[str, Any]:
    """The agent's secret: the default team's key as `api_key` (what single-key readers use, e.g.
    `make verify`), and every team's key under `team_keys` in the plan's team order."""
    default = next(key for key in spec.keys if key.team_id == spec.default_team)
    return {
        "api_key": values[spec.default_team],
        "key_alias": default.key_alias,
        "default_team": spec.default_team,
        "team_keys": {key.team_id: values[key.team_id] for key in spec.keys},
    }


def local_teams_document(config: AppConfig) -> dict[str, Any]:
    """Fresh team keys for a local gateway run, in the agent secret's format plus each team's budget:
    the file both `LOCAL_GATEWAY_TEAMS_FILE` (llm_gateway/local_auth.py) and the agent's
    `LLM_GATEWAY_TEAMS_FILE` read."""
    plan = plan_from_config(config, agent_secret_id="local", eval_secret_id="local")  # noqa: S106 (ids, not secrets)
    assert plan.team_keys is not None  # plan_from_config always plans the team keys
    document = team_keys_document(
        plan.team_keys, {key.team_id: new_virtual_key() for key in plan.team_keys.keys}
    )
    document["budgets"] = {team.team_id: team.max_budget for team in plan.teams}
    return document


def _team_key_values(spec: TeamKeysSpec, stored: Mapping[str, Any]) -> dict[str, str]:
    """The stored value of each team's key, a fresh one where none is stored. A secret from before
    team keys (only `api_key`) gives its key to the default team."""
    current = stored.get("team_keys")
    current = dict(current) if isinstance(current, dict) else {}
    if spec.default_team not in current and _is_key(stored.get("api_key")):
        current[spec.default_team] = stored["api_key"]
    return {
        key.team_id: current[key.team_id] if _is_key(current.get(key.team_id)) else new_virtual_key()
        for key in spec.keys
    }


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
    body: dict[str, Any] = {
        "key_alias": spec.key_alias,
        "team_id": spec.team_id,
        "max_budget": spec.max_budget,
        "budget_duration": spec.budget_duration,
        "rpm_limit": spec.rpm_limit,
        "models": list(spec.models),
        "metadata": {"service": spec.name, "managed_by": "gateway-bootstrap"},
    }
    if spec.tpm_limit is not None:
        body["tpm_limit"] = spec.tpm_limit
    return body


_TEAM_FIELDS = ("max_budget", "budget_duration", "rpm_limit", "tpm_limit")
_KEY_FIELDS = ("key_alias", "team_id", "max_budget", "budget_duration", "rpm_limit", "tpm_limit", "models")


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any], fields: Sequence[str]) -> bool:
    def normal(value: Any) -> Any:
        return sorted(value) if isinstance(value, list | tuple) else value

    return any(normal(current.get(name)) != normal(desired[name]) for name in fields if name in desired)


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
    registrations: list[tuple[KeySpec, str]] = []
    if plan.team_keys is not None:
        stored = store.read_document(plan.team_keys.secret_id)
        values = _team_key_values(plan.team_keys, stored)
        document = team_keys_document(plan.team_keys, values)
        if document != stored:  # first: a lost response cannot orphan a key
            store.write_document(plan.team_keys.secret_id, document)
        registrations += [(spec, values[spec.team_id]) for spec in plan.team_keys.keys]
    for spec in plan.keys:
        stored = store.read_document(spec.secret_id)
        api_key = stored.get("api_key")
        if not _is_key(api_key):
            api_key = new_virtual_key()
            store.write_document(spec.secret_id, {"api_key": api_key, "key_alias": spec.key_alias})
        registrations.append((spec, str(api_key)))
    for spec, api_key in registrations:
        _register(admin, spec, api_key, result)
    logger.info("gateway bootstrap: %s", asdict(result))
    return result


def _register(admin: AdminClient, spec: KeySpec, api_key: str, result: BootstrapResult) -> None:
    body = _key_body(spec)
    current = admin.key_info(api_key)
    if current is None:
        admin.generate_key({**body, "key": api_key})
        result.keys_created.append(spec.name)
    elif _differs(current, body, _KEY_FIELDS):
        admin.update_key({**body, "key": api_key})
        result.keys_updated.append(spec.name)
