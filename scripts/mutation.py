"""Mutation testing (mutmut) per package, each in its own work directory; kill rate gate.

Usage: python -m scripts.mutation [PACKAGE ...] [--max-children N] [--report FILE] [--only GLOB ...]
       (`make mutation`, `make mutation MUTATION_ARGS="tools --max-children 2"`)

For each package of PACKAGES the repository is copied (the files git sees: tracked and untracked, not
ignored; or the tree of `--rev REV`) into build/mutation/<package>/, a `[tool.mutmut]` section for that
package is written into the copy's pyproject.toml, and `mutmut run` runs there. mutmut writes only into
that copy (its `mutants/` directory), so runs of different packages never touch each other nor the
shared working tree; a second concurrent run of the SAME package is refused (lock file).

Per package it prints mutants, killed, timeout, survived, no tests, suspicious and the kill rate:

    kill rate = (killed + timeout + segfault + caught by type check) / (mutants - accepted equivalents)

"no tests", "suspicious", "skipped" and "survived" all count as NOT killed (never dropped from the
denominator); only mutants named in EQUIVALENT_MUTANTS (each with its reason, also listed in
docs/testing.md) that survived are left out. It writes mutation-reports/<package>.{json,md} with every
mutant that was not killed (file:line, status, diff) and a summary (--report, default
mutation-reports/summary.md + .json), and exits 1 when a package is under --fail-under (85 %), when a
mutmut run fails, or when a package's source is missing; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
WORK_ROOT = Path("build/mutation")
REPORT_DIR = Path("mutation-reports")
DEFAULT_FAIL_UNDER = 85.0
DEFAULT_TIMEOUT_MINUTES = 180


@dataclass(frozen=True)
class Package:
    """A package to mutate and the fast, in-process tests that exercise it (globs, repo-relative)."""

    name: str
    source: str
    tests: tuple[str, ...]


# Only in-process tests: `-m "not slow"` (PYTEST_ARGS) leaves out the tests that start real processes
# (proxy, servers, browser): mutmut runs each mutant by forking its own pytest process, and a server
# started by a test would run its own import of the code, outside mutmut's trampolines' bookkeeping.
PACKAGES: dict[str, Package] = {
    package.name: package
    for package in (
        Package("tools", "tools", ("tests/tools",)),
        Package("agent", "agent", ("tests/agent",)),
        Package(
            "functions/interceptor",
            "functions/interceptor",
            ("tests/functions/test_interceptor*.py", "tests/functions/test_jwt*.py"),
        ),
        Package("stacks/constructs", "stacks/constructs", ("tests/stacks/constructs",)),
    )
}

# Surviving mutants accepted as EQUIVALENT (no test can tell them from the original): mutant name ->
# why. Each is also named in docs/testing.md. Only these are left out of a kill rate's denominator,
# and only while they survive; a listed mutant that is killed or no longer exists is reported stale.
_RELAY_KIND = (
    "the relay's consumer compares a kind only with 'end' and 'error': any other kind is relayed as an event"
)
_SSE_STATUS = "an SSE error frame carries the ApiError's code and message, never its status"
_MUTABLE_HEADERS = "Starlette's MutableHeaders lower-cases names: 'connection: close' is sent either way"
_REQUIRED_IN_MODEL = (
    "a required member in the bedrock-agentcore service model (botocore): the default is never read"
)
_ROLE_DEFAULT = "a missing role must skip the message: '', 'None' and 'XXXX' are all not USER/ASSISTANT"
_UPPERCASED_ROLE = "bedrock-agentcore 1.25.0 MemoryClient.create_event sends MessageRole(role.upper())"
_HTTPX_HEADER_CASE = "httpx Headers are case-insensitive: the same header goes on the wire"
_GUARDRAIL_REQUIRED = (
    "a required member of ApplyGuardrailResponse in the bedrock-runtime model: the default is never read"
)
_HTTPX_FORM = "httpx sets Content-Type application/x-www-form-urlencoded itself for data= (httpx _content.py)"
_SPLIT_FIRST = "the first field of str.split is the text before the first separator for any maxsplit >= 1"
_FRESH_COPY = (
    "when nothing changed an equal fresh copy is returned instead of the same object: the input is never"
    " modified either way and the Lambda runtime serialises the result as JSON"
)
_PYJWK_RS256 = (
    "PyJWT 2.15.1 jwt/api_jwk.py 37-55 takes the JWK's alg, else RS256 for kty RSA; _signing_key already"
    " required kty RSA and alg RS256 or absent"
)
_CF_LOGGING = (
    "aws-cdk-lib 2.275.0 aws-cloudfront/lib/distribution.js renderLogging enables logging whenever logBucket"
    " is set"
)
_CODEC_CASE = "codec names are case-insensitive: 'UTF-8' is 'utf-8'"
_ASSET_HASH_TYPE = (
    "aws-cdk-lib 2.275.0 core/lib/asset-staging.js determineHashType: CUSTOM whenever an asset hash is given"
)
EQUIVALENT_MUTANTS: dict[str, str] = {
    # stacks/constructs/
    "stacks.constructs.cache.xǁValkeyCacheǁ__init____mutmut_15": (
        "set('XX...XX') adds 'X', already in the alphanumeric set: the same set"
    ),
    "stacks.constructs.private_origin_distribution.xǁPrivateOriginDistributionǁ__init____mutmut_46": _CF_LOGGING
    + " (enable_logging=None)",
    "stacks.constructs.private_origin_distribution.xǁPrivateOriginDistributionǁ__init____mutmut_55": _CF_LOGGING
    + " (enable_logging dropped)",
    "stacks.constructs.private_origin_distribution.xǁPrivateOriginDistributionǁ__init____mutmut_78": (
        "renderLogging returns early without enableLogging/logBucket, so the prefix is never read"
    ),
    "stacks.constructs.packaging.x_lambda_code__mutmut_3": _ASSET_HASH_TYPE,
    "stacks.constructs.packaging.x_lambda_code__mutmut_7": _ASSET_HASH_TYPE,
    "stacks.constructs.packaging.x_generated_file_asset__mutmut_7": _ASSET_HASH_TYPE,
    "stacks.constructs.packaging.x_generated_file_asset__mutmut_13": _ASSET_HASH_TYPE,
    "stacks.constructs.packaging.x_bundling_options__mutmut_7": "typing.cast returns its value at runtime",
    "stacks.constructs.packaging.xǁBundleǁ_contents__mutmut_7": _CODEC_CASE,
    "stacks.constructs.packaging.xǁBundleǁfingerprint__mutmut_12": _CODEC_CASE,
    "stacks.constructs.packaging.xǁBundleǁwrite__mutmut_44": _CODEC_CASE,
    # functions/interceptor/handler.py
    "functions.interceptor.handler.x__intercept_request__mutmut_114": _SPLIT_FIRST + " (maxsplit dropped)",
    "functions.interceptor.handler.x__intercept_request__mutmut_116": _SPLIT_FIRST + " (maxsplit 2)",
    "functions.interceptor.handler.x__strip_identity__mutmut_18": _FRESH_COPY + " (list)",
    "functions.interceptor.handler.x__strip_identity__mutmut_72": _FRESH_COPY + " (dict)",
    "functions.interceptor.handler.x__strip_identity__mutmut_38": (
        "changed = 1 for changed += 1: changed is 0 two lines earlier and nothing adds to it in between"
    ),
    # functions/interceptor/jwt_verify.py
    "functions.interceptor.jwt_verify.x__signing_key__mutmut_29": _PYJWK_RS256 + " (algorithm=None)",
    "functions.interceptor.jwt_verify.x__signing_key__mutmut_31": _PYJWK_RS256 + " (no algorithm)",
    # agent/citations.py, tool_events.py, telemetry.py
    "agent.citations.x_source_file_name__mutmut_7": _SPLIT_FIRST,
    "agent.citations.x_source_file_name__mutmut_12": _SPLIT_FIRST,
    "agent.citations.x_source_file_name__mutmut_15": _SPLIT_FIRST,
    "agent.citations.x_source_file_name__mutmut_18": _SPLIT_FIRST,
    "agent.citations.x_source_file_name__mutmut_38": "the last field of str.rsplit is the text after the last separator for any maxsplit >= 1",
    "agent.citations.x_source_file_name__mutmut_41": "the last field of str.rsplit is the text after the last separator for any maxsplit >= 1",
    "agent.tool_events.x__result_payloads__mutmut_4": "get(k, None) or [] and get(k) or []: the `or []` makes a missing key [] either way",
    "agent.tool_events.x__result_payloads__mutmut_6": "get(k, None) or [] and get(k) or []: the `or []` makes a missing key [] either way",
    "agent.tool_events.x__result_text__mutmut_7": "get(k, None) or [] and get(k) or []: the `or []` makes a missing key [] either way",
    "agent.tool_events.x__result_text__mutmut_9": "get(k, None) or [] and get(k) or []: the `or []` makes a missing key [] either way",
    "agent.tool_events.x_collect_citations__mutmut_6": "get(k, None) or [] and get(k) or []: the `or []` makes a missing key [] either way",
    "agent.tool_events.x_collect_citations__mutmut_8": "get(k, None) or [] and get(k) or []: the `or []` makes a missing key [] either way",
    "agent.telemetry.xǁTelemetryǁlangfuse__mutmut_20": "header names are case-insensitive (RFC 9110 5.1); requests 2.34.2 CaseInsensitiveDict",
    "agent.telemetry.xǁTelemetryǁlangfuse__mutmut_21": "header names are case-insensitive (RFC 9110 5.1); requests 2.34.2 CaseInsensitiveDict",
    "agent.telemetry.xǁTelemetryǁlangfuse__mutmut_23": "header names are case-insensitive (RFC 9110 5.1); requests 2.34.2 CaseInsensitiveDict",
    # agent/main.py
    "agent.main.x__sse__mutmut_2": "json.dumps(ensure_ascii=None): the flag is only tested for truth, None is falsy like False",
    "agent.main.x__relay__mutmut_8": _RELAY_KIND,
    "agent.main.x__relay__mutmut_12": _RELAY_KIND,
    "agent.main.x__relay__mutmut_13": _RELAY_KIND,
    "agent.main.x__relay__mutmut_21": "for kind 'error' the consumer sends a fixed generic frame and never reads the item",
    "agent.main.x__relay__mutmut_42": (
        "start() is queued before cancel() on the same loop, so the task exists; cancel() of a done task is a no-op"
    ),
    "agent.main.x__relay__mutmut_55": _SSE_STATUS,
    "agent.main.x__relay__mutmut_61": _SSE_STATUS,
    "agent.main.x__send_error__mutmut_6": _MUTABLE_HEADERS,
    "agent.main.x__send_error__mutmut_7": _MUTABLE_HEADERS,
    "agent.main.x__send_error__mutmut_11": "a plain Response (starlette 1.10.0 responses.py __call__) never calls receive",
    # agent/guardrails.py
    "agent.guardrails.x__luhn_ok__mutmut_14": "a doubled digit is even, never 9: '> 9' and '>= 9' agree",
    "agent.guardrails.x__luhn_ok__mutmut_20": "total % 10 == 0 exactly when (-total) % 10 == 0",
    "agent.guardrails.xǁBedrockGuardrailǁcheck__mutmut_48": _GUARDRAIL_REQUIRED + " (outputs)",
    "agent.guardrails.xǁBedrockGuardrailǁcheck__mutmut_50": _GUARDRAIL_REQUIRED + " (outputs)",
    "agent.guardrails.xǁBedrockGuardrailǁcheck__mutmut_56": _GUARDRAIL_REQUIRED + " (assessments)",
    "agent.guardrails.xǁBedrockGuardrailǁcheck__mutmut_58": _GUARDRAIL_REQUIRED + " (assessments)",
    # agent/identity.py
    "agent.identity.x_caller_from_authorization__mutmut_36": (
        "Python's base64 decoder ignores excess '=': +len % 4 pads 4n+2 and 4n+3 segments enough (4n+1 is invalid either way)"
    ),
    "agent.identity.x_caller_from_authorization__mutmut_43": "codec names are case-insensitive: 'ASCII' is 'ascii'",
    # agent/memory.py
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_9": "bedrock-agentcore 1.25.0 MemoryClient.list_events defaults max_results to 100",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_19": _REQUIRED_IN_MODEL + " (Event.eventTimestamp)",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_21": _REQUIRED_IN_MODEL + " (Event.eventTimestamp)",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_25": _REQUIRED_IN_MODEL + " (Event.eventTimestamp)",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_29": _REQUIRED_IN_MODEL + " (Event.payload)",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_31": _REQUIRED_IN_MODEL + " (Event.payload)",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_43": _ROLE_DEFAULT,
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_45": _ROLE_DEFAULT,
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_48": _ROLE_DEFAULT,
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_51": "a missing text must skip the message: None is as falsy as ''",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_53": "a missing text must skip the message: None is as falsy as ''",
    "agent.memory.xǁAgentCoreMemoryǁhistory__mutmut_60": (
        "text is the only member of the Content union, so it is set; a payload without it has role '' and is skipped"
    ),
    "agent.memory.xǁAgentCoreMemoryǁrecord__mutmut_10": _UPPERCASED_ROLE,
    "agent.memory.xǁAgentCoreMemoryǁrecord__mutmut_12": _UPPERCASED_ROLE,
    # agent/tool_client.py
    "agent.tool_client.xǁBearerFromProviderǁauth_flow__mutmut_3": _HTTPX_HEADER_CASE,
    "agent.tool_client.xǁBearerFromProviderǁauth_flow__mutmut_4": _HTTPX_HEADER_CASE,
    "agent.tool_client.xǁClientCredentialsTokenǁ_fetch__mutmut_5": _HTTPX_FORM,
    "agent.tool_client.xǁClientCredentialsTokenǁ_fetch__mutmut_9": _HTTPX_FORM,
    "agent.tool_client.xǁClientCredentialsTokenǁ_fetch__mutmut_17": _HTTPX_HEADER_CASE,
    "agent.tool_client.xǁClientCredentialsTokenǁ_fetch__mutmut_18": _HTTPX_HEADER_CASE,
}

PYTEST_ARGS = ("-m", "not slow")

# mutmut's statuses (mutmut.stats.status_by_exit_code) -> does it count as killed?
DETECTED_STATUSES = frozenset({"killed", "timeout", "segfault", "caught by type check"})
STATUS_FIELDS: dict[str, str] = {
    "killed": "killed",
    "timeout": "timeout",
    "segfault": "segfault",
    "caught by type check": "caught_by_type_check",
    "survived": "survived",
    "no tests": "no_tests",
    "suspicious": "suspicious",
    "skipped": "skipped",
    "check was interrupted by user": "interrupted",
    "not checked": "not_checked",
}

# What the snapshot leaves out when git cannot list the files (git's ignore rules do otherwise).
_FALLBACK_EXCLUDES = frozenset(
    {".git", ".venv", "node_modules", "cdk.out", "build", "mutants", "mutation-reports", "test-artifacts"}
)


class MutationError(Exception):
    """A run could not produce a result (setup, mutmut failure, missing package): names the cause."""


class UsageError(MutationError):
    """Bad command-line input."""


class RunTimedOut(MutationError):
    """mutmut ran past the time limit: the mutants checked so far are still reported."""


# --- results and the kill rate ------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    name: str
    status: str
    path: str  # source file, repo-relative
    line: int | None = None
    diff: str = ""
    accepted: str | None = None  # the reason, when accepted as equivalent

    @property
    def module(self) -> str:
        return self.path


@dataclass
class PackageResult:
    package: str
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    partial: bool = False  # --only: a subset was checked, no gate
    error: str | None = None
    stale_equivalents: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        by_status = Counter(m.status for m in self.mutants)
        counts = {f: 0 for f in STATUS_FIELDS.values()}
        for status, n in by_status.items():
            counts[STATUS_FIELDS.get(status, "suspicious")] += n
        counts["total"] = len(self.mutants)
        counts["accepted_equivalent"] = sum(1 for m in self.mutants if m.accepted is not None)
        return counts

    def checked(self) -> list[Mutant]:
        return [m for m in self.mutants if m.status != "not checked"]

    def kill_rate(self) -> float | None:
        """Percent; None when there is nothing to rate (no mutant checked)."""
        pool = [m for m in self.checked() if m.accepted is None]
        if not pool:
            return None
        detected = sum(1 for m in pool if m.status in DETECTED_STATUSES)
        return 100.0 * detected / len(pool)

    def not_killed(self) -> list[Mutant]:
        return [m for m in self.checked() if m.status not in DETECTED_STATUSES]

    def passes(self, fail_under: float) -> bool:
        if self.error is not None:
            return False
        if self.partial:
            return True
        if any(m.status == "not checked" for m in self.mutants):
            return False
        rate = self.kill_rate()
        return rate is not None and rate >= fail_under

    def to_json(self) -> dict[str, object]:
        return {
            "package": self.package,
            "seconds": round(self.seconds, 1),
            "partial": self.partial,
            "error": self.error,
            "counts": self.counts(),
            "kill_rate": None if self.kill_rate() is None else round(self.kill_rate() or 0.0, 2),
            "not_killed_by_module": dict(sorted(Counter(m.path for m in self.not_killed()).items())),
            "stale_equivalents": self.stale_equivalents,
            "not_killed": [asdict(m) for m in self.not_killed()],
        }


def classify(
    exit_code_by_key: Mapping[str, int | None], status_of: Mapping[int | None, str]
) -> dict[str, str]:
    """Mutant name -> mutmut status name, for one meta file's `exit_code_by_key`."""
    return {name: status_of.get(code, "suspicious") for name, code in exit_code_by_key.items()}


def acceptance(name: str, status: str, accepted: Mapping[str, str] | None = None) -> str | None:
    """The reason a mutant is accepted as equivalent: only a listed one, and only while it SURVIVES
    (a listed mutant without tests, or suspicious, still counts against the kill rate)."""
    table = EQUIVALENT_MUTANTS if accepted is None else accepted
    return table.get(name) if status == "survived" else None


def mutmut_status_table() -> Mapping[int | None, str]:
    """mutmut's own exit-code -> status table (the one `mutmut results` prints from)."""
    from mutmut.stats import status_by_exit_code

    return dict(status_by_exit_code)


def read_meta_files(workdir: Path, source: str) -> dict[str, dict[str, int | None]]:
    """Source path (repo-relative) -> mutmut's recorded exit code per mutant name."""
    root = workdir / "mutants"
    found: dict[str, dict[str, int | None]] = {}
    for meta in sorted((root / source).rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        found[str(meta.relative_to(root))[: -len(".meta")]] = data["exit_code_by_key"]
    return found


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


def first_changed_line(diff: str) -> int | None:
    """1-based line, within the function's text, of the first line the mutant removes or adds."""
    line: int | None = None
    for text in diff.splitlines():
        match = _HUNK.match(text)
        if match:
            line = int(match.group(1))
            continue
        if line is None or text.startswith(("---", "+++")):
            continue
        if text.startswith(("-", "+")):
            return line
        line += 1
    return None


def source_line(source_text: str, function_text: str, offset: int | None) -> int | None:
    """File line of `offset` (1-based within `function_text`, the function as mutmut prints it)."""
    if offset is None:
        return None
    lines = source_text.splitlines()
    wanted = [line.strip() for line in function_text.strip().splitlines()]
    if not wanted:
        return None
    matcher = difflib.SequenceMatcher(None, [line.strip() for line in lines], wanted, autojunk=False)
    for block in matcher.get_matching_blocks():
        if block.b <= offset - 1 < block.b + block.size:
            return block.a + (offset - 1 - block.b) + 1
    starts = [i for i, line in enumerate(lines) if line.strip() == wanted[0]]
    return starts[0] + offset if starts else None


def original_function_text(diff: str) -> str:
    """The unmutated function text, rebuilt from a full-context unified diff."""
    out = []
    for text in diff.splitlines():
        if text.startswith(("---", "+++", "@@")):
            continue
        if text.startswith((" ", "-")):
            out.append(text[1:])
        elif text == "":
            out.append("")
    return "\n".join(out)


# --- the work directory ---------------------------------------------------------------------------


def slug(name: str) -> str:
    return name.replace("/", "-")


def project_files(repo: Path) -> list[Path]:
    """Repo-relative files of the working tree that git sees (tracked or untracked, not ignored)."""
    git = shutil.which("git")
    try:
        if git is None:
            raise FileNotFoundError("git")
        out = subprocess.run(  # noqa: S603 - fixed argv, the git found on PATH
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        logger.warning("git cannot list the files of %s: copying the tree minus build output", repo)
        files = []
        for root, dirs, names in os.walk(repo):
            dirs[:] = [d for d in dirs if d not in _FALLBACK_EXCLUDES and not d.startswith(".")]
            files += [Path(root, n).relative_to(repo) for n in names if not n.endswith(".pyc")]
        return sorted(files)
    return sorted(Path(p) for p in out.decode().split("\0") if p and (repo / p).is_file())


def snapshot(repo: Path, dest: Path, rev: str | None = None) -> None:
    """Copy the project into `dest`: the working tree (modification times kept) or git revision `rev`."""
    dest.mkdir(parents=True)
    if rev is not None:
        git, tar = shutil.which("git"), shutil.which("tar")
        if git is None or tar is None:
            raise UsageError("--rev needs git and tar on PATH")
        archive = subprocess.run(  # noqa: S603 - argv list, rev is only an argument of git archive
            [git, "archive", "--format=tar", rev, "--"], cwd=repo, capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise UsageError(f"--rev {rev}: git archive failed: {archive.stderr.decode().strip()}")
        subprocess.run([tar, "-x", "-C", str(dest)], input=archive.stdout, check=True)  # noqa: S603
        return
    for rel in project_files(repo):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)


def also_copy(workdir: Path, source: str) -> list[str]:
    """Everything in the copy except the mutated package: the tests import the rest of the project."""
    keep: list[str] = []
    parts = Path(source).parts
    parent = workdir
    for depth, part in enumerate(parts):
        for entry in sorted(parent.iterdir()):
            if entry.name == part or entry.name in {"mutants", "pyproject.toml", "mutmut.log"}:
                continue
            keep.append(str(Path(*parts[:depth], entry.name)))
        parent = parent / part
    return keep


def test_selection(workdir: Path, package: Package) -> list[str]:
    """The package's test globs, expanded in the copy; an empty selection is an error."""
    selected: list[str] = []
    for pattern in package.tests:
        matches = sorted(str(p.relative_to(workdir)) for p in workdir.glob(pattern))
        selected += matches
    if not selected:
        raise MutationError(f"{package.name}: no tests match {', '.join(package.tests)}")
    return selected


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_SECTION = re.compile(r"^\[tool\.mutmut\][^\n]*\n(?:(?!\[)[^\n]*\n?)*", re.MULTILINE)


def write_config(pyproject: Path, settings: Mapping[str, object]) -> None:
    """Replace the `[tool.mutmut]` section of `pyproject` (the copy's) with `settings`."""
    text = _SECTION.sub("", pyproject.read_text(encoding="utf-8")).rstrip("\n")
    body = "\n".join(f"{key} = {_toml(value)}" for key, value in settings.items())
    pyproject.write_text(f"{text}\n\n[tool.mutmut]\n{body}\n", encoding="utf-8")


def base_settings(pyproject: Path) -> dict[str, object]:
    """The repository's shared `[tool.mutmut]` settings (timeouts, isolation, ...)."""
    import tomllib

    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    settings = dict(data.get("tool", {}).get("mutmut", {}))
    return settings


def package_settings(workdir: Path, package: Package, base: Mapping[str, object]) -> dict[str, object]:
    settings: dict[str, object] = dict(base)
    settings["source_paths"] = [package.source]
    settings["also_copy"] = also_copy(workdir, package.source)
    settings["pytest_add_cli_args_test_selection"] = test_selection(workdir, package)
    extra = [str(a) for a in settings.get("pytest_add_cli_args", []) or []]  # type: ignore[attr-defined]
    settings["pytest_add_cli_args"] = extra + [a for a in PYTEST_ARGS if a not in extra]
    settings["use_git_change_detection"] = False  # the copy sits inside the repository's git tree
    return settings


def test_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a mutmut run: fake AWS credentials, no metadata service, no cost-map fetch."""
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - a fake, tests never leave the machine
        AWS_SESSION_TOKEN="testing",  # noqa: S106 - a fake
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@contextlib.contextmanager
def package_lock(work_root: Path, name: str) -> Iterator[None]:
    work_root.mkdir(parents=True, exist_ok=True)
    lock_path = work_root / f"{slug(name)}.lock"
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise MutationError(
                f"{name}: another mutation run of this package is in progress ({lock_path}); wait for it"
            ) from exc
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def mutmut_executable() -> str:
    beside = Path(sys.executable).parent / "mutmut"
    found = str(beside) if beside.exists() else shutil.which("mutmut")
    if not found:
        raise MutationError("mutmut is not installed: `make mutation` installs requirements-dev.txt")
    return found


def run_mutmut(workdir: Path, args: Sequence[str], timeout_s: float) -> None:
    """`mutmut run` in `workdir`, output to workdir/mutmut.log; bounded by `timeout_s`."""
    log_path = workdir / "mutmut.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(  # noqa: S603 - the venv's mutmut, our own arguments
            [mutmut_executable(), "run", *args],
            cwd=workdir,
            env=test_environment(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RunTimedOut(f"mutmut run exceeded {timeout_s / 60:.0f} min; log: {log_path}") from None
        finally:  # timeout, Ctrl-C or SIGTERM: mutmut and its forked workers go too
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if code != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise MutationError(f"mutmut run exited {code}; log: {log_path}\n{tail}")


def collect(workdir: Path, package: Package, *, partial: bool) -> PackageResult:
    """Read mutmut's results in `workdir` and the diff of every mutant that was not killed."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    status_of = mutmut_status_table()
    result = PackageResult(package=package.name, partial=partial)
    seen: set[str] = set()
    for path, codes in read_meta_files(workdir, package.source).items():
        source_text = (workdir / path).read_text(encoding="utf-8")
        for name, status in sorted(classify(codes, status_of).items()):
            seen.add(name)
            accepted = acceptance(name, status)
            if status in DETECTED_STATUSES or status == "not checked":
                result.mutants.append(Mutant(name, status, path))
                continue
            with contextlib.chdir(workdir):
                diff = get_diff_for_mutant(name, path=path)
            line = source_line(source_text, original_function_text(diff), first_changed_line(diff))
            result.mutants.append(Mutant(name, status, path, line, diff, accepted))
    prefix = package.source.replace("/", ".") + "."
    result.stale_equivalents = sorted(
        name
        for name in EQUIVALENT_MUTANTS
        if name.startswith(prefix)
        and (name not in seen or next(m for m in result.mutants if m.name == name).accepted is None)
    )
    return result


def run_package(
    package: Package,
    *,
    repo: Path,
    work_root: Path,
    max_children: int,
    only: Sequence[str],
    rev: str | None,
    timeout_s: float,
    collect_only: bool = False,
) -> PackageResult:
    """Copy, configure, `mutmut run`, collect. `collect_only`: only re-read the last run's work dir."""
    started = time.monotonic()
    name = slug(package.name) + (f"@{slug(rev)}" if rev else "")
    with package_lock(work_root, name):
        workdir = work_root / name
        if collect_only:
            if not (workdir / "mutants").is_dir():
                raise MutationError(f"{package.name}: no earlier run in {workdir} to collect")
            return collect(workdir, package, partial=bool(only))
        if workdir.exists():
            shutil.rmtree(workdir)
        snapshot(repo, workdir, rev)
        if not (workdir / package.source).is_dir():
            raise MutationError(f"{package.name}: {package.source}/ does not exist in the copied tree")
        settings = package_settings(workdir, package, base_settings(workdir / "pyproject.toml"))
        write_config(workdir / "pyproject.toml", settings)
        logger.info("%s: mutmut run in %s (log: %s)", package.name, workdir, workdir / "mutmut.log")
        timed_out: str | None = None
        try:
            run_mutmut(workdir, ["--max-children", str(max_children), *only], timeout_s)
        except RunTimedOut as exc:
            timed_out = str(exc)  # report what was checked; "not checked" mutants fail the gate
        result = collect(workdir, package, partial=bool(only))
        result.error = timed_out
    result.seconds = time.monotonic() - started
    return result


# --- reports ----------------------------------------------------------------------------------------

COLUMNS = ("total", "killed", "timeout", "survived", "no_tests", "suspicious", "accepted_equivalent")


def rate_text(result: PackageResult) -> str:
    if result.error is not None and not result.mutants:
        return "error"
    rate = result.kill_rate()
    text = "n/a" if rate is None else f"{rate:.1f} %"
    unchecked = result.counts()["not_checked"]
    if unchecked and not result.partial:
        return f"{text} (incomplete: {unchecked} not checked)"
    return f"{text} (partial)" if result.partial else text


def summary_markdown(results: Sequence[PackageResult], fail_under: float) -> str:
    lines = [
        f"# Mutation testing (gate: kill rate >= {fail_under:g} %)",
        "",
        "| package | mutants | killed | timeout | survived | no tests | suspicious | equivalent | kill rate | time |",
        "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    for r in results:
        c = r.counts()
        cells = " | ".join(str(c[k]) for k in COLUMNS)
        took = f"{r.seconds / 60:.1f} min" if r.seconds else "-"
        lines.append(f"| {r.package} | {cells} | {rate_text(r)} | {took} |")
    for r in results:
        if r.error:
            lines += ["", f"**{r.package}: {r.error}**"]
    return "\n".join(lines) + "\n"


def package_markdown(result: PackageResult) -> str:
    lines = [f"# {result.package}: kill rate {rate_text(result)}", ""]
    by_module = Counter(m.path for m in result.not_killed())
    if by_module:
        lines += ["| module | not killed |", "| --- | --: |"]
        lines += [f"| {path} | {n} |" for path, n in sorted(by_module.items())]
    if result.stale_equivalents:
        lines += ["", "Stale EQUIVALENT_MUTANTS entries: " + ", ".join(result.stale_equivalents)]
    for m in sorted(result.not_killed(), key=lambda m: (m.path, m.line or 0, m.name)):
        where = f"{m.path}:{m.line}" if m.line else m.path
        note = f" — accepted as equivalent: {m.accepted}" if m.accepted else ""
        lines += ["", f"## {where} `{m.name}` ({m.status}){note}", "", "```diff", m.diff, "```"]
    return "\n".join(lines) + "\n"


def write_reports(results: Sequence[PackageResult], report: Path, fail_under: float) -> None:
    report_dir = report.parent
    report_dir.mkdir(parents=True, exist_ok=True)
    for r in results:
        (report_dir / f"{slug(r.package)}.json").write_text(json.dumps(r.to_json(), indent=2) + "\n")
        (report_dir / f"{slug(r.package)}.md").write_text(package_markdown(r))
    summary = {"fail_under": fail_under, "packages": [r.to_json() | {"not_killed": None} for r in results]}
    report.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    report.with_suffix(".md").write_text(summary_markdown(results, fail_under))


# --- command line -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.mutation",
        description="Mutation testing (mutmut) per package; exits 1 when a kill rate is under the gate.",
    )
    parser.add_argument(
        "packages", nargs="*", metavar="PACKAGE", help=f"default: all of {', '.join(PACKAGES)}"
    )
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant workers (default 1)")
    parser.add_argument(
        "--report", type=Path, default=REPORT_DIR / "summary.md", help="summary (.md + .json)"
    )
    parser.add_argument(
        "--fail-under", type=float, default=DEFAULT_FAIL_UNDER, help="kill rate gate, percent"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GLOB",
        help="check only mutants whose name matches (e.g. 'tools.server.*'); the result is partial, no gate",
    )
    parser.add_argument("--rev", help="mutate this git revision's tree instead of the working tree")
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="do not run: re-read the last run's work dir (build/mutation/<package>[@REV]) and report",
    )
    parser.add_argument(
        "--timeout-minutes", type=float, default=DEFAULT_TIMEOUT_MINUTES, help="per package, wall clock"
    )
    args = parser.parse_args(argv)
    unknown = [p for p in args.packages if p not in PACKAGES]
    if unknown:
        parser.error(f"unknown package(s) {', '.join(unknown)}; known: {', '.join(PACKAGES)}")
    if args.max_children < 1:
        parser.error("--max-children must be at least 1")
    return args


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_mutmut's cleanup


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, _stop)
    args = parse_args(argv)
    results: list[PackageResult] = []
    for name in args.packages or list(PACKAGES):
        try:
            result = run_package(
                PACKAGES[name],
                repo=REPO,
                work_root=REPO / WORK_ROOT,
                max_children=args.max_children,
                only=args.only,
                rev=args.rev,
                timeout_s=args.timeout_minutes * 60,
                collect_only=args.collect_only,
            )
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except MutationError as exc:
            result = PackageResult(package=name, error=str(exc))
        results.append(result)
        print(f"{name}: {rate_text(result)} {result.counts()}", flush=True)
    report = args.report if args.report.is_absolute() else REPO / args.report
    write_reports(results, report, args.fail_under)
    print()
    print(summary_markdown(results, args.fail_under))
    print(f"survivors per package: {report.parent}/<package>.md (file:line + diff)")
    failing = [r.package for r in results if not r.passes(args.fail_under)]
    if failing:
        print(f"FAILED: {', '.join(failing)} (gate {args.fail_under:g} %)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
