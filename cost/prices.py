"""Dated price tables (cost/prices/<region>.json) and their validation."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PRICES_DIR = Path(__file__).resolve().parent / "prices"


class PriceError(ValueError):
    """A price table is missing, unreadable or lacks a price the model needs; the message says which."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ComputePrice(_Strict):
    vcpu_hour: float = Field(ge=0)
    gb_hour: float = Field(ge=0)


class FargatePrices(_Strict):
    x86_64: ComputePrice
    arm64: ComputePrice
    spot_x86_64: ComputePrice
    spot_arm64: ComputePrice | None = None
    ephemeral_gb_hour_over_20: float = Field(ge=0)


class AuroraPrices(_Strict):
    serverless_v2_acu_hour: float = Field(ge=0)
    serverless_v2_io_optimized_acu_hour: float = Field(ge=0)
    storage_gb_month: float = Field(ge=0)
    io_optimized_storage_gb_month: float = Field(ge=0)
    instance_hour: dict[str, float]


class RdsPrices(_Strict):
    postgres_single_az_instance_hour: dict[str, float]
    gp3_storage_gb_month: float = Field(ge=0)


class NetworkPrices(_Strict):
    nat_gateway_hour: float = Field(ge=0)
    public_ipv4_hour: float = Field(ge=0)
    interface_endpoint_az_hour: float = Field(ge=0)
    application_load_balancer_hour: float = Field(ge=0)
    network_load_balancer_hour: float = Field(ge=0)
    cloudfront_fixed_month: float = Field(ge=0)
    route53_hosted_zone_month: float = Field(ge=0)


class ServerlessCachePrice(_Strict):
    gb_hour: float = Field(ge=0)
    minimum_gb: float = Field(ge=0)


class ElastiCachePrices(_Strict):
    node_hour: dict[str, dict[str, float]]
    serverless: dict[str, ServerlessCachePrice]


class StoragePrices(_Strict):
    efs_standard_gb_month: float = Field(ge=0)
    efs_backup_gb_month: float = Field(ge=0)
    s3_standard_gb_month: float = Field(ge=0)
    s3_vectors_gb_month: float = Field(ge=0)


class Ec2Prices(_Strict):
    instance_hour: dict[str, float]
    ebs_gp3_gb_month: float = Field(ge=0)
    note: str = ""


class SearchPrices(_Strict):
    opensearch_serverless_ocu_hour: float = Field(ge=0)


class DynamoDbPrices(_Strict):
    wcu_hour: float = Field(ge=0)
    rcu_hour: float = Field(ge=0)


class SecurityPrices(_Strict):
    secrets_manager_secret_month: float = Field(ge=0)
    kms_key_month: float = Field(ge=0)
    waf_web_acl_month: float = Field(ge=0)
    waf_rule_month: float = Field(ge=0)


class CloudWatchPrices(_Strict):
    dashboard_month: float = Field(ge=0)
    standard_alarm_metric_month: float = Field(ge=0)
    high_resolution_alarm_metric_month: float = Field(ge=0)
    composite_alarm_month: float = Field(ge=0)
    custom_metric_month: float = Field(ge=0)
    log_ingestion_gb: float = Field(ge=0)
    log_storage_gb_month: float = Field(ge=0)


class Assumptions(_Strict):
    aurora_idle_acu_when_min_is_zero: float = Field(ge=0)
    aurora_storage_gb: float = Field(ge=0)
    efs_gb: float = Field(ge=0)
    log_group_idle_gb_month: float = Field(ge=0)
    container_insights_metrics_per_cluster: int = Field(ge=0)
    container_insights_metrics_per_service: int = Field(ge=0)
    notes: dict[str, str] = {}


class PriceTable(_Strict):
    """Monthly and hourly list prices for one region, with the date they were taken."""

    region: str
    currency: str
    as_of: date
    source: str = Field(min_length=10)
    hours_per_month: float = Field(gt=0)
    fargate: FargatePrices
    aurora: AuroraPrices
    rds: RdsPrices
    network: NetworkPrices
    elasticache: ElastiCachePrices
    storage: StoragePrices
    ec2: Ec2Prices
    search: SearchPrices
    dynamodb: DynamoDbPrices
    security: SecurityPrices
    cloudwatch: CloudWatchPrices
    assumptions: Assumptions

    def hourly(self, price_per_hour: float) -> float:
        """A per-hour price as a monthly amount."""
        return price_per_hour * self.hours_per_month


def available_regions(prices_dir: Path = PRICES_DIR) -> list[str]:
    return sorted(path.stem for path in prices_dir.glob("*.json"))


def load_prices(region: str, prices_dir: Path = PRICES_DIR) -> PriceTable:
    """The price table of `region`.

    Raises:
        PriceError: when no table exists for the region (the message lists those that do) or the file
            is not a valid table (the message names the field).
    """
    path = prices_dir / f"{region}.json"
    if not path.is_file():
        raise PriceError(
            f"no price table for region {region!r} (environment.region); available: {available_regions(prices_dir)}. "
            f"Add {path.relative_to(prices_dir.parent.parent) if prices_dir.is_relative_to(prices_dir.parent.parent) else path}."
        )
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PriceError(f"{path}: not valid JSON ({exc})") from None
    try:
        table = PriceTable.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PriceError(f"{path}: field {where!r}: {first['msg']}") from None
    if table.region != region:
        raise PriceError(f"{path}: declares region {table.region!r}, expected {region!r}")
    return table
