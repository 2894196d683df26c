"""The price table: on-demand AWS prices per region, shipped as data with the platform.

One JSON document per supported region in ``provisioner/prices/<region>.json``, with the
date it was taken (``as_of``) and where from (``source``). ``selfservice prices refresh
--region …`` rewrites a document from the AWS Price List API.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PRICES_DIR",
    "EbsPrices",
    "PriceTable",
    "UnsupportedRegionError",
    "load_prices",
    "supported_regions",
]

PRICES_DIR = Path(__file__).resolve().parents[2] / "prices"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

Price = Annotated[Decimal, Field(ge=0)]


class UnsupportedRegionError(KeyError):
    """The platform ships no price table for the region."""


class _Prices(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EbsPrices(_Prices):
    """EBS volume prices per month: storage per GB, and gp3 performance above its baseline."""

    gb_month: dict[str, Price]
    """Volume type (gp3, gp2, io1, io2, st1, sc1) → USD per GB-month."""
    gp3_iops_month: Price
    """Per provisioned IOPS-month above gp3's 3000 baseline."""
    gp3_throughput_mibps_month: Price
    """Per MiB/s-month above gp3's 125 MiB/s baseline."""
    io_iops_month: Price
    """Per provisioned IOPS-month of io1/io2 (the first tier)."""


class PriceTable(_Prices):
    """The prices of one region."""

    region: str
    currency: str = "USD"
    as_of: date
    source: str
    hours_per_month: Annotated[int, Field(ge=672, le=744)] = 730
    ec2_hourly: dict[str, Price]
    """Instance type → on-demand Linux, shared tenancy, USD per hour."""
    ebs: EbsPrices
    alb_hourly: Price
    nlb_hourly: Price
    nat_gateway_hourly: Price
    public_ipv4_hourly: Price
    """Each public IPv4 address (an Elastic IP, in use or not)."""
    cloudwatch_alarm_month: Price
    """Each standard-resolution metric alarm."""


def supported_regions() -> list[str]:
    """Regions whose price table ships with the platform."""
    return sorted(p.stem for p in PRICES_DIR.glob("*.json"))


@cache
def load_prices(region: str) -> PriceTable:
    """The price table of ``region`` (read once)."""
    path = PRICES_DIR / f"{region}.json"
    if not _REGION.match(region) or not path.is_file():
        raise UnsupportedRegionError(region)
    return PriceTable.model_validate_json(path.read_text())
