"""Custom-resource handler (CDK Provider `onEvent`) that bootstraps the LiteLLM gateway on deploy.

Create and Update run `llm_gateway.bootstrap.run_bootstrap` with the plan in the resource properties
(`Plan`, JSON: teams, keys and their secret ARNs) against the gateway's internal URL, authenticated with
the master key read from Secrets Manager. Delete does nothing: teams and keys live in the gateway's
database, which the stack's removal policy keeps or deletes.

Packaged with `llm_gateway/bootstrap.py` and `functions/common.py` next to it (stdlib + boto3 only).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any

import boto3

from functions.common import MissingSettingError, require_env
from llm_gateway.bootstrap import AdminClient, BootstrapPlan, SecretsManagerKeyStore, run_bootstrap

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

ENV_GATEWAY_URL = "GATEWAY_URL"
ENV_MASTER_KEY_SECRET_ARN = "MASTER_KEY_SECRET_ARN"  # noqa: S105 (a variable name)
ENV_READY_TIMEOUT = "READY_TIMEOUT_SECONDS"
PHYSICAL_ID = "llm-gateway-bootstrap"


def on_event(event: dict[str, Any], context: Any, *, secrets_client: Any = None) -> dict[str, Any]:
    """CloudFormation custom-resource event -> bootstrap; returns the Provider framework's answer."""
    request_type = event.get("RequestType")
    physical_id = str(event.get("PhysicalResourceId") or PHYSICAL_ID)
    if request_type == "Delete":
        logger.info("delete: nothing to undo (teams and keys live in the gateway database)")
        return {"PhysicalResourceId": physical_id}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unknown RequestType {request_type!r}")
    plan_json = (event.get("ResourceProperties") or {}).get("Plan")
    if not plan_json:
        raise MissingSettingError("resource property Plan is missing")
    plan = BootstrapPlan.from_json(str(plan_json))

    client = secrets_client or boto3.client("secretsmanager")
    master_key = client.get_secret_value(SecretId=require_env(ENV_MASTER_KEY_SECRET_ARN))["SecretString"]
    admin = AdminClient(require_env(ENV_GATEWAY_URL), master_key)
    admin.wait_until_ready(timeout=float(os.environ.get(ENV_READY_TIMEOUT, "600")))
    result = run_bootstrap(plan, admin, SecretsManagerKeyStore(client))
    data = {name: ",".join(values) for name, values in asdict(result).items()}
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": data}
