"""Price tables: dated, complete, and clear errors for a missing region or a broken file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cost.prices import PRICES_DIR, PriceError, available_regions, load_prices


def test_every_checked_in_table_loads() -> None:
    regions = available_regions()
    assert "us-east-1" in regions
    for region in regions:
        assert load_prices(region).region == region


def test_unknown_region_lists_the_available_tables() -> None:
    with pytest.raises(PriceError, match=r"no price table for region 'mars-1'.*available: \['us-east-1'"):
        load_prices("mars-1")


def test_a_missing_price_names_the_field(tmp_path: Path) -> None:
    table = json.loads((PRICES_DIR / "us-east-1.json").read_text(encoding="utf-8"))
    del table["network"]["nat_gateway_hour"]
    (tmp_path / "us-east-1.json").write_text(json.dumps(table), encoding="utf-8")
    with pytest.raises(PriceError, match=r"field 'network\.nat_gateway_hour': Field required"):
        load_prices("us-east-1", tmp_path)


def test_a_negative_price_is_rejected(tmp_path: Path) -> None:
    table = json.loads((PRICES_DIR / "us-east-1.json").read_text(encoding="utf-8"))
    table["security"]["kms_key_month"] = -1
    (tmp_path / "us-east-1.json").write_text(json.dumps(table), encoding="utf-8")
    with pytest.raises(PriceError, match=r"security\.kms_key_month"):
        load_prices("us-east-1", tmp_path)


def test_a_table_for_another_region_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "eu-west-1.json").write_text((PRICES_DIR / "us-east-1.json").read_text(encoding="utf-8"))
    with pytest.raises(PriceError, match="declares region 'us-east-1', expected 'eu-west-1'"):
        load_prices("eu-west-1", tmp_path)


def test_invalid_json_is_reported(tmp_path: Path) -> None:
    (tmp_path / "us-east-1.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PriceError, match="not valid JSON"):
        load_prices("us-east-1", tmp_path)
