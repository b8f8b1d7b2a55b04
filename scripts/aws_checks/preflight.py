"""`make preflight`: read-only checks that a first `make deploy` can succeed in this account and region.

    python -m scripts.aws_checks.preflight [-c key=value ...] [--docker docker] [--cdk-out cdk.out]

Checks (in order; a dispatch table of small functions, each returning a CheckResult): region, credentials,
CDK bootstrap, Docker buildx for linux/arm64, AgentCore in the region, Bedrock access to every model of
the catalog (and the knowledge base's embedding model), the AZ IDs the runtime's subnets would use, and
the service quotas a first deploy consumes. Prints a summary table with what to do for each failure and
exits 1 when any check fails. Sources for every AWS behaviour relied on: docs/deploy.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from config import AppConfig, ConfigError, load_config
from config.agentcore import AGENTCORE_RUNTIME_AZ_IDS, AGENTCORE_VPC_DOC_URL, unsupported_az_ids
from scripts.aws_checks.common import (
    AwsContext,
    Check,
    CheckResult,
    RegionMissing,
    Status,
    classify,
    console_url,
    context_from_args,
    error_code,
    render_table,
    resolve_region,
    run_checks,
)

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_STACK = "CDKToolkit"
DEFAULT_QUALIFIER = "hnb659fds"
# aws-cdk-lib 2.275.0, core/lib/stack-synthesizers/default-synthesizer.js: MIN_BOOTSTRAP_STACK_VERSION=6
# (deploy role and assets) and MIN_LOOKUP_ROLE_BOOTSTRAP_STACK_VERSION=8 (context lookups such as
# Vpc.from_lookup, used when network.vpc_id is set). A synthesized cdk.out states the exact number.
MIN_BOOTSTRAP_VERSION = 6
MIN_LOOKUP_BOOTSTRAP_VERSION = 8
HEALTHY_STACK = re.compile(r"^(CREATE|UPDATE|IMPORT)_COMPLETE$|^UPDATE_ROLLBACK_COMPLETE$")
DOCKER_TIMEOUT_SECONDS = 20
BINFMT_HINT = (
    "this host cannot build linux/arm64 images: install QEMU emulation with "
    "`docker run --privileged --rm tonistiigi/binfmt --install arm64` (Docker Desktop has it built in), "
    "then check `docker buildx ls` lists linux/arm64"
)
INFERENCE_PROFILE_ID = re.compile(r"^(us|eu|apac|jp|au|ca|us-gov|global)\.[a-z0-9-]+\.")
AVAILABLE = "AVAILABLE"


@dataclass
class Preflight:
    """What the checks share: the config, the AWS context, and facts found by earlier checks."""

    config: AppConfig
    aws: AwsContext | None
    region_error: str = ""
    docker: str = "docker"
    cdk_out: Path = REPO / "cdk.out"
    cdk_json: Path = REPO / "cdk.json"
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    machine: str = field(default_factory=platform.machine)
    account: str | None = None

    def client(self, service: str) -> Any:
        if self.aws is None:
            raise RegionMissing(self.region_error)
        return self.aws.client(service)


# --- region and credentials ---------------------------------------------------------------------------


def check_region(state: Preflight) -> CheckResult:
    if state.aws is None:
        failure = classify(RegionMissing(state.region_error), "region")
        return CheckResult("region", Status.FAIL, failure.cause, failure.fix)
    return CheckResult("region", Status.PASS, state.aws.region)


def check_credentials(state: Preflight) -> CheckResult:
    identity = state.client("sts").get_caller_identity()
    state.account = str(identity["Account"])
    return CheckResult("credentials", Status.PASS, f"account {state.account} as {identity['Arn']}")


# --- CDK bootstrap -----------------------------------------------------------------------------------


def bootstrap_qualifier(cdk_json: Path) -> str:
    """The bootstrap qualifier the app synthesizes for (cdk.json context, default hnb659fds)."""
    try:
        context = json.loads(cdk_json.read_text()).get("context", {})
    except (OSError, json.JSONDecodeError):
        return DEFAULT_QUALIFIER
    return str(context.get("@aws-cdk/core:bootstrapQualifier") or DEFAULT_QUALIFIER)


def required_bootstrap_version(config: AppConfig, cdk_out: Path) -> tuple[int, str]:
    """The bootstrap version the app needs: the highest `requiresBootstrapStackVersion` of a synthesized
    cloud assembly, else the pinned aws-cdk-lib's minimum (8 with context lookups, 6 without)."""
    try:
        manifest = json.loads((cdk_out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        manifest = None
    if isinstance(manifest, dict):
        found = [
            int(value)
            for value in _find_key(manifest, "requiresBootstrapStackVersion")
            if isinstance(value, int | str) and str(value).isdigit()
        ]
        if found:
            return max(found), f"{cdk_out.name}/manifest.json"
    if config.network.vpc_id is not None:
        return MIN_LOOKUP_BOOTSTRAP_VERSION, "aws-cdk-lib minimum with context lookups"
    return MIN_BOOTSTRAP_VERSION, "aws-cdk-lib minimum"


def _find_key(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        found = [node[key]] if key in node else []
        for value in node.values():
            found += _find_key(value, key)
        return found
    if isinstance(node, list):
        return [item for value in node for item in _find_key(value, key)]
    return []


def check_bootstrap(state: Preflight) -> CheckResult:
    region = state.aws.region if state.aws else "?"
    link = console_url(region, "cloudformation", "/stacks?filteringText=CDKToolkit")
    fix = "run `make bootstrap` (cdk bootstrap with the pinned CLI into this account and region)"
    try:
        stacks = state.client("cloudformation").describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError":  # DescribeStacks' code for a stack that does not exist
            return CheckResult(
                "cdk-bootstrap", Status.FAIL, f"no {BOOTSTRAP_STACK} stack in {region}", fix, link
            )
        raise
    status = str(stacks[0]["StackStatus"])
    if not HEALTHY_STACK.match(status):
        return CheckResult(
            "cdk-bootstrap",
            Status.FAIL,
            f"{BOOTSTRAP_STACK} is {status}",
            f"fix or delete the {BOOTSTRAP_STACK} stack in the console, then {fix}",
            link,
        )
    qualifier = bootstrap_qualifier(state.cdk_json)
    parameter = f"/cdk-bootstrap/{qualifier}/version"
    try:
        value = state.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            return CheckResult(
                "cdk-bootstrap",
                Status.FAIL,
                f"{parameter} is missing (bootstrapped with another qualifier?)",
                fix,
                link,
            )
        raise
    version = int(value)
    needed, source = required_bootstrap_version(state.config, state.cdk_out)
    if version < needed:
        return CheckResult(
            "cdk-bootstrap",
            Status.FAIL,
            f"bootstrap version {version} < {needed} required ({source})",
            f"{fix}: it upgrades the bootstrap stack in place",
            link,
        )
    return CheckResult(
        "cdk-bootstrap", Status.PASS, f"{BOOTSTRAP_STACK} {status}, version {version} >= {needed}"
    )


# --- Docker buildx -----------------------------------------------------------------------------------


def buildx_platforms(output: str) -> set[str]:
    """Every platform named in `docker buildx ls` output (the PLATFORMS column, comma-separated)."""
    return {match.rstrip("*") for match in re.findall(r"\blinux/[a-z0-9_]+(?:/v\d)?\*?", output)}


def check_docker(state: Preflight) -> CheckResult:
    """The agent and chat images are linux/arm64 Docker assets, built locally by `cdk deploy`."""
    try:
        done = state.runner(
            [state.docker, "buildx", "ls"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT_SECONDS,
            check=True,
        )
    except FileNotFoundError:
        return CheckResult(
            "docker-buildx",
            Status.FAIL,
            f"{state.docker!r} is not installed",
            "install Docker (Docker Desktop, or Docker Engine with the buildx plugin)",
        )
    except subprocess.TimeoutExpired:
        return CheckResult(
            "docker-buildx",
            Status.FAIL,
            f"`docker buildx ls` did not answer in {DOCKER_TIMEOUT_SECONDS} s",
            "start the Docker daemon (Docker Desktop) and retry",
        )
    except subprocess.CalledProcessError as error:
        first = (error.stderr or error.stdout or "").strip().splitlines()[:1]
        return CheckResult(
            "docker-buildx",
            Status.FAIL,
            f"`docker buildx ls` exited {error.returncode}: {first[0] if first else 'no output'}",
            "start the Docker daemon and install the buildx plugin (`docker buildx version` must work)",
        )
    platforms = buildx_platforms(done.stdout)
    if "linux/arm64" in platforms:
        return CheckResult("docker-buildx", Status.PASS, "a builder lists linux/arm64")
    native_arm = state.machine.lower() in ("arm64", "aarch64")
    fix = "create an arm64-capable builder: `docker buildx create --use`" if native_arm else BINFMT_HINT
    listed = ", ".join(sorted(platforms)) or "none"
    return CheckResult(
        "docker-buildx", Status.FAIL, f"no builder lists linux/arm64 (platforms: {listed})", fix
    )


# --- AgentCore ----------------------------------------------------------------------------------------


def check_agentcore(state: Preflight) -> CheckResult:
    region = state.aws.region if state.aws else "?"
    state.client("bedrock-agentcore-control").list_agent_runtimes(maxResults=1)
    return CheckResult(
        "agentcore",
        Status.PASS,
        f"AgentCore control plane answers in {region}",
        link=console_url(region, "bedrock-agentcore", "/agents"),
    )


# --- Bedrock models ---------------------------------------------------------------------------------


def catalog_models(config: AppConfig) -> list[tuple[str, str]]:
    """(label, model or inference profile id) of every Bedrock model the deployment calls."""
    models = [(entry.alias, entry.model_id) for entry in config.models.entries if entry.provider == "bedrock"]
    models.append(("knowledge-base embeddings", config.knowledge_base.embedding_model_id))
    return models


def _foundation_ids(bedrock: Any, model_id: str, region: str) -> tuple[list[str], str]:
    """The foundation model ids behind `model_id` (a profile's models in this region), and a note."""
    if not (INFERENCE_PROFILE_ID.match(model_id) or ":inference-profile/" in model_id):
        return [model_id], "foundation model"
    profile = bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
    if profile.get("status") != "ACTIVE":
        raise Problem(f"inference profile {model_id} is {profile.get('status')}")
    arns = [str(m["modelArn"]) for m in profile.get("models", [])]
    local = [arn for arn in arns if f":{region}::" in arn] or arns
    ids = list(dict.fromkeys(arn.rsplit("/", 1)[-1] for arn in local))
    if not ids:
        raise Problem(f"inference profile {model_id} lists no models")
    return ids, f"inference profile over {', '.join(ids)}"


class Problem(Exception):
    """Something the deployment needs is not usable; the message says what."""


AVAILABILITY_FIELDS: tuple[tuple[str, Callable[[dict[str, Any]], Any], Any], ...] = (
    ("authorizationStatus", lambda a: a.get("authorizationStatus"), "AUTHORIZED"),
    ("entitlementAvailability", lambda a: a.get("entitlementAvailability"), AVAILABLE),
    ("regionAvailability", lambda a: a.get("regionAvailability"), AVAILABLE),
    (
        "agreementAvailability.status",
        lambda a: (a.get("agreementAvailability") or {}).get("status"),
        AVAILABLE,
    ),
)
"""GetFoundationModelAvailability fields that must all be positive for the account to call the model."""


def _check_access(bedrock: Any, foundation_id: str, via_profile: bool) -> None:
    model = bedrock.get_foundation_model(modelIdentifier=foundation_id)["modelDetails"]
    lifecycle = (model.get("modelLifecycle") or {}).get("status", "ACTIVE")
    if lifecycle != "ACTIVE":
        raise Problem(f"{foundation_id} is {lifecycle}: pick a current model in config/foundation.yaml")
    inference = set(model.get("inferenceTypesSupported") or ())
    wanted = "INFERENCE_PROFILE" if via_profile else "ON_DEMAND"
    if wanted not in inference:
        raise Problem(
            f"{foundation_id} does not support {wanted} inference (supports {sorted(inference) or 'none'})"
        )
    availability = bedrock.get_foundation_model_availability(modelId=foundation_id)
    wrong = [
        f"{name}={read(availability)}"
        for name, read, expected in AVAILABILITY_FIELDS
        if read(availability) != expected
    ]
    if wrong:
        raise Problem(f"{foundation_id}: {', '.join(wrong)}")


def check_models(state: Preflight) -> CheckResult:
    region = state.aws.region if state.aws else "?"
    bedrock = state.client("bedrock")
    problems: list[str] = []
    checked: list[str] = []
    for label, model_id in catalog_models(state.config):
        try:
            foundation_ids, _ = _foundation_ids(bedrock, model_id, region)
            for foundation_id in foundation_ids:
                _check_access(bedrock, foundation_id, via_profile=foundation_ids != [model_id])
            checked.append(label)
        except Problem as problem:
            problems.append(f"{label}: {problem}")
        except ClientError as error:
            if error_code(error) in ("ResourceNotFoundException", "ValidationException"):
                problems.append(f"{label}: {model_id} is not offered in {region} ({error_code(error)})")
            else:
                raise
    link = console_url(region, "bedrock", "/model-catalog")
    if problems:
        return CheckResult(
            "bedrock-models",
            Status.FAIL,
            "; ".join(problems),
            "open each model once in the Bedrock console model catalog (Anthropic models: submit the "
            "first-time use case details), wait a few minutes for a PENDING agreement, or change "
            "`models.entries` in config/foundation.yaml to models offered in this region",
            link,
        )
    return CheckResult("bedrock-models", Status.PASS, f"access to {', '.join(checked)}")


# --- AZ IDs of the runtime subnets ------------------------------------------------------------------


def runtime_az_ids(state: Preflight) -> tuple[list[str], str]:
    """The AZ IDs the AgentCore runtime's subnets would be in, and where that came from.

    - `network.vpc_id` set: the VPC's private subnets (no public IP on launch), from DescribeSubnets.
    - `agentcore.runtime_az_ids` set: those ids (the new VPC is built in them).
    - otherwise the new VPC's first `network.max_azs` zones (at most 2 for an environment-agnostic
      synth, which uses Fn::GetAZs) in zone-name order, mapped to ids with DescribeAvailabilityZones.
    """
    ec2 = state.client("ec2")
    network = state.config.network
    if network.vpc_id is not None:
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [network.vpc_id]}])["Subnets"]
        private = [s for s in subnets if not s.get("MapPublicIpOnLaunch")]
        ids = sorted({str(s["AvailabilityZoneId"]) for s in private})
        if not ids:
            raise Problem(f"VPC {network.vpc_id} has no private subnets (or does not exist)")
        return ids, f"private subnets of {network.vpc_id}"
    configured = getattr(state.config.agentcore, "runtime_az_ids", None)
    if configured:
        return list(configured), "agentcore.runtime_az_ids"
    zones = ec2.describe_availability_zones(
        Filters=[
            {"Name": "state", "Values": ["available"]},
            {"Name": "zone-type", "Values": ["availability-zone"]},
        ]
    )["AvailabilityZones"]
    ordered = sorted(zones, key=lambda z: str(z["ZoneName"]))
    count = network.max_azs if state.config.environment.region else min(network.max_azs, 2)
    return [str(z["ZoneId"]) for z in ordered[:count]], f"first {count} zones of the new VPC"


def check_az_ids(state: Preflight) -> CheckResult:
    region = state.aws.region if state.aws else "?"
    try:
        ids, source = runtime_az_ids(state)
    except Problem as problem:
        return CheckResult(
            "runtime-az-ids", Status.FAIL, str(problem), "set network.vpc_id to a VPC with private subnets"
        )
    bad = unsupported_az_ids(region, ids)
    if not bad:
        return CheckResult("runtime-az-ids", Status.PASS, f"{', '.join(ids)} ({source})")
    supported = AGENTCORE_RUNTIME_AZ_IDS.get(region, ())
    if supported:
        fix = (
            f"AgentCore Runtime accepts subnets only in {', '.join(supported)} in {region}: set "
            f"`agentcore.runtime_az_ids` (e.g. -c agentcore.runtime_az_ids={','.join(supported[:2])}) or "
            f"network.vpc_id to a VPC whose private subnets are there ({AGENTCORE_VPC_DOC_URL})"
        )
    else:
        fix = f"{region} has no AgentCore VPC zones listed: choose a region from {AGENTCORE_VPC_DOC_URL}"
    return CheckResult(
        "runtime-az-ids", Status.FAIL, f"unsupported for AgentCore Runtime: {', '.join(bad)} ({source})", fix
    )


# --- service quotas -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """A quota a first deploy consumes: what it is, why it matters, how much the deploy needs."""

    label: str
    service_code: str
    quota_code: str
    why: str
    needed: Callable[[AppConfig], float]
    in_use: Callable[[Preflight], float] | None = None


def _vpcs_in_use(state: Preflight) -> float:
    pages = state.client("ec2").get_paginator("describe_vpcs").paginate()
    return float(sum(len(page["Vpcs"]) for page in pages))


def _eips_in_use(state: Preflight) -> float:
    return float(len(state.client("ec2").describe_addresses()["Addresses"]))


def fargate_vcpus(config: AppConfig, spot: bool) -> float:
    """The Fargate vCPUs the foundation's services run at their maximum task counts (on-demand or Spot)."""
    services: list[tuple[int, int, bool]] = []  # (cpu units, tasks, spot)
    gateway = config.llm_gateway
    if config.components.llm_gateway == "self_hosted":
        services.append((gateway.cpu, gateway.max_tasks, gateway.fargate_spot))
    observability = config.observability
    if config.components.observability == "self_hosted":
        for size in (observability.web, observability.worker, observability.clickhouse):
            services.append((size.cpu, size.tasks, observability.fargate_spot))
    if config.components.frontend:
        frontend = config.frontend
        tasks = int(getattr(frontend, "max_tasks", frontend.desired_tasks))
        services.append((frontend.cpu, tasks, frontend.fargate_spot))
    if config.components.observability != "disabled":
        evaluation = config.evaluation
        services.append((evaluation.cpu, 1, bool(getattr(evaluation, "fargate_spot", False))))
    return sum(cpu * tasks for cpu, tasks, on_spot in services if on_spot == spot) / 1024


QUOTAS: tuple[Quota, ...] = (
    Quota(
        "VPCs per Region",
        "vpc",
        "L-F678F1CE",
        "the network stack creates one VPC unless network.vpc_id is set",
        lambda c: 0.0 if c.network.vpc_id else 1.0,
        _vpcs_in_use,
    ),
    Quota(
        "EC2-VPC Elastic IPs",
        "ec2",
        "L-0263D0A3",
        "each NAT gateway needs an Elastic IP (network.nat_type gateway)",
        lambda c: (
            float(c.network.nat_gateways)
            if c.network.vpc_id is None and c.network.nat_type == "gateway"
            else 0.0
        ),
        _eips_in_use,
    ),
    Quota(
        "Fargate On-Demand vCPU",
        "fargate",
        "L-3032A538",
        "LiteLLM, Langfuse, chat and evaluation tasks run on Fargate; new accounts start with a low quota",
        lambda c: fargate_vcpus(c, spot=False),
    ),
    Quota(
        "Fargate Spot vCPU",
        "fargate",
        "L-36FBB829",
        "the dev profile runs LiteLLM, Langfuse and chat on Fargate Spot",
        lambda c: fargate_vcpus(c, spot=True),
    ),
)


def _quota_value(state: Preflight, quota: Quota) -> float:
    client = state.client("service-quotas")
    try:
        answer = client.get_service_quota(ServiceCode=quota.service_code, QuotaCode=quota.quota_code)
    except ClientError as error:
        if error_code(error) != "NoSuchResourceException":
            raise
        # No applied value for this account: the AWS default applies.
        answer = client.get_aws_default_service_quota(
            ServiceCode=quota.service_code, QuotaCode=quota.quota_code
        )
    return float(answer["Quota"]["Value"])


def check_quotas(state: Preflight) -> CheckResult:
    region = state.aws.region if state.aws else "?"
    short: list[str] = []
    fine: list[str] = []
    for quota in QUOTAS:
        needed = quota.needed(state.config)
        if needed <= 0:
            continue
        limit = _quota_value(state, quota)
        used = quota.in_use(state) if quota.in_use else 0.0
        text = f"{quota.label} {used:g}+{needed:g}/{limit:g}"
        (short if used + needed > limit else fine).append(
            text if used + needed <= limit else f"{text} ({quota.why})"
        )
    link = console_url(region, "servicequotas", "/services")
    if short:
        return CheckResult(
            "service-quotas",
            Status.FAIL,
            "; ".join(short),
            "request an increase in the Service Quotas console (or free the resources in use) before deploying",
            link,
        )
    return CheckResult("service-quotas", Status.PASS, "; ".join(fine) or "nothing needed")


def _only_with_credentials(
    check: Callable[[Preflight], CheckResult], name: str
) -> Callable[[Preflight], CheckResult]:
    """Skip AWS checks once the region or the credentials failed: their errors would only repeat it."""

    def run(state: Preflight) -> CheckResult:
        if state.aws is None or state.account is None:
            return CheckResult(name, Status.SKIP, "not run: region or credentials failed")
        return check(state)

    return run


CHECKS: tuple[Check[Preflight], ...] = (
    Check("region", check_region),
    Check(
        "credentials",
        lambda s: (
            check_credentials(s) if s.aws else CheckResult("credentials", Status.SKIP, "not run: no region")
        ),
        "sts:GetCallerIdentity",
    ),
    Check(
        "cdk-bootstrap",
        _only_with_credentials(check_bootstrap, "cdk-bootstrap"),
        "cloudformation:DescribeStacks",
    ),
    Check("docker-buildx", check_docker),
    Check(
        "agentcore",
        _only_with_credentials(check_agentcore, "agentcore"),
        "bedrock-agentcore:ListAgentRuntimes",
    ),
    Check(
        "bedrock-models",
        _only_with_credentials(check_models, "bedrock-models"),
        "bedrock:GetFoundationModelAvailability",
    ),
    Check(
        "runtime-az-ids",
        _only_with_credentials(check_az_ids, "runtime-az-ids"),
        "ec2:DescribeAvailabilityZones",
    ),
    Check(
        "service-quotas",
        _only_with_credentials(check_quotas, "service-quotas"),
        "servicequotas:GetServiceQuota",
    ),
)
"""The dispatch table of `make preflight`, in run order."""


def build_state(argv: Sequence[str], environ: dict[str, str] | None = None) -> Preflight:
    parser = argparse.ArgumentParser(prog="make preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docker", default="docker", help="the docker executable")
    parser.add_argument("--cdk-out", type=Path, default=REPO / "cdk.out", help="a synthesized cloud assembly")
    args, rest = parser.parse_known_args(list(argv))
    config = load_config(context_from_args(rest))
    try:
        aws: AwsContext | None = AwsContext(resolve_region(environ))
        region_error = ""
    except RegionMissing as missing:
        aws, region_error = None, str(missing)
    return Preflight(
        config=config, aws=aws, region_error=region_error, docker=args.docker, cdk_out=args.cdk_out
    )


def main(argv: Sequence[str] | None = None, state: Preflight | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if state is None:
        try:
            state = build_state(sys.argv[1:] if argv is None else argv)
        except (ConfigError, ValueError) as error:
            sys.stderr.write(f"error: {error}\n")
            return 2
    results = run_checks(CHECKS, state, state.aws)
    sys.stdout.write(render_table(results) + "\n")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
