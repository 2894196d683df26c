"""``selfservice prices refresh``: rewrite a region's price table from the AWS Price List API.

The provisioner estimates a plan's monthly cost from the table it ships
(``services/provisioner/provisioner/prices/<region>.json``). This command asks the Price
List API (``pricing:GetProducts``; the API is served from us-east-1 whatever region is
priced) for each price the table holds — on-demand, Linux, shared tenancy, in an AWS
Region (not an Outpost or Local Zone) — and writes the table back with today's date.
A price the API does not answer unambiguously keeps its previous value and is reported,
so a refresh never silently drops a price. It needs credentials allowed
``pricing:GetProducts`` in a real account.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["PriceQuery", "Refresh", "add_parser", "queries", "refresh"]

PRICES_DIR = Path(__file__).resolve().parents[3] / "services/provisioner/provisioner/prices"
PRICING_REGION = "us-east-1"
SOURCE = (
    "AWS Price List API (pricing:GetProducts), on-demand, Linux, shared tenancy; "
    "refreshed by `selfservice prices refresh`"
)
_GIB = Decimal(1024)


@dataclass(frozen=True)
class PriceQuery:
    """One price of the table and how to ask the Price List API for it."""

    key: tuple[str, ...]
    """Where the price sits in the table (``("ec2_hourly", "t3.micro")``)."""
    service_code: str
    filters: dict[str, str]
    units: tuple[str, ...]
    """Accepted price units (lower case); the first is the table's own unit."""
    select: Callable[[dict[str, str]], bool] = field(default=lambda attributes: True)
    """Keeps only products whose attributes match (what TERM_MATCH cannot say)."""

    def per_table_unit(self, unit: str, price: Decimal) -> Decimal:
        """The price converted to the table's unit (GiB/s-month → MiB/s-month)."""
        if unit.lower().startswith("gibps") and self.units[0].startswith("mibps"):
            return price / _GIB
        return price


def _ec2(region: str, instance_type: str) -> PriceQuery:
    return PriceQuery(
        ("ec2_hourly", instance_type),
        "AmazonEC2",
        {
            "regionCode": region,
            "locationType": "AWS Region",
            "productFamily": "Compute Instance",
            "instanceType": instance_type,
            "operatingSystem": "Linux",
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "capacitystatus": "Used",
            "licenseModel": "No License required",
        },
        ("hrs",),
    )


def _ec2_family(region: str, family: str, **extra: str) -> dict[str, str]:
    return {"regionCode": region, "locationType": "AWS Region", "productFamily": family, **extra}


def queries(
    table: dict[str, Any], extra_instance_types: list[str] | None = None
) -> list[PriceQuery]:
    """Every price of ``table`` (plus extra instance types) as a Price List query."""
    region = table["region"]
    instance_types = sorted({*table.get("ec2_hourly", {}), *(extra_instance_types or [])})
    found = [_ec2(region, kind) for kind in instance_types]
    found += [
        PriceQuery(
            ("ebs", "gb_month", volume),
            "AmazonEC2",
            _ec2_family(region, "Storage", volumeApiName=volume),
            ("gb-mo",),
        )
        for volume in sorted(table.get("ebs", {}).get("gb_month", {}))
    ]
    found += [
        PriceQuery(
            ("ebs", "gp3_iops_month"),
            "AmazonEC2",
            _ec2_family(region, "System Operation", volumeApiName="gp3"),
            ("iops-mo",),
        ),
        PriceQuery(
            ("ebs", "gp3_throughput_mibps_month"),
            "AmazonEC2",
            _ec2_family(region, "Provisioned Throughput", volumeApiName="gp3"),
            ("mibps-mo", "gibps-mo"),
        ),
        PriceQuery(
            ("ebs", "io_iops_month"),
            "AmazonEC2",
            _ec2_family(region, "System Operation", volumeApiName="io2"),
            ("iops-mo",),
        ),
        PriceQuery(
            ("alb_hourly",),
            "AWSELB",
            _ec2_family(region, "Load Balancer-Application"),
            ("hrs",),
        ),
        PriceQuery(
            ("nlb_hourly",), "AWSELB", _ec2_family(region, "Load Balancer-Network"), ("hrs",)
        ),
        PriceQuery(
            ("nat_gateway_hourly",), "AmazonEC2", _ec2_family(region, "NAT Gateway"), ("hrs",)
        ),
        PriceQuery(
            ("public_ipv4_hourly",),
            "AmazonVPC",
            _ec2_family(region, "VPC Public IPv4 Address"),
            ("hrs",),
            select=lambda attributes: "InUseAddress" in attributes.get("usagetype", ""),
        ),
        PriceQuery(
            ("cloudwatch_alarm_month",),
            "AmazonCloudWatch",
            _ec2_family(region, "Alarm"),
            ("alarms",),
            # Standard resolution; high-resolution alarms cost three times as much.
            select=lambda attributes: attributes.get("usagetype", "").endswith(
                "CW:AlarmMonitorUsage"
            ),
        ),
    ]
    return found


def _products(client: Any, query: PriceQuery) -> Iterator[dict[str, Any]]:
    filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in query.filters.items()]
    token: str | None = None
    while True:
        page = client.get_products(
            ServiceCode=query.service_code,
            Filters=filters,
            FormatVersion="aws_v1",
            MaxResults=100,
            **({"NextToken": token} if token else {}),
        )
        for item in page.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item
        token = page.get("NextToken")
        if not token:
            return


def _on_demand(product: dict[str, Any], query: PriceQuery) -> Iterator[Decimal]:
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            unit = str(dimension.get("unit", "")).lower()
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if unit in query.units and usd is not None and dimension.get("beginRange", "0") == "0":
                yield query.per_table_unit(unit, Decimal(usd))


@dataclass
class Refresh:
    """A refreshed table and what happened to each price."""

    table: dict[str, Any]
    changed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _get(table: dict[str, Any], key: tuple[str, ...]) -> Any:
    value: Any = table
    for part in key:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _set(table: dict[str, Any], key: tuple[str, ...], value: str) -> None:
    for part in key[:-1]:
        table = table.setdefault(part, {})
    table[key[-1]] = value


def _text(price: Decimal) -> str:
    return format(price.normalize(), "f")


def refresh(
    client: Any,
    table: dict[str, Any],
    today: str,
    extra_instance_types: list[str] | None = None,
) -> Refresh:
    """``table`` with every price the API answers with exactly one positive value."""
    updated = json.loads(json.dumps(table))
    result = Refresh(updated)
    for query in queries(table, extra_instance_types):
        name = ".".join(query.key)
        prices = {
            price
            for product in _products(client, query)
            if query.select(product.get("product", {}).get("attributes", {}))
            for price in _on_demand(product, query)
            if price > 0
        }
        previous = _get(table, query.key)
        if len(prices) != 1:
            why = "no price" if not prices else f"{len(prices)} different prices"
            result.kept.append(f"{name}: the API gave {why}; kept {previous}")
            continue
        (price,) = prices
        if previous is None or Decimal(str(previous)) != price:
            result.changed.append(f"{name}: {previous} -> {_text(price)}")
        _set(updated, query.key, _text(price))
    updated["as_of"] = today
    updated["source"] = SOURCE
    return result


def _run(args: Any) -> int:
    import boto3  # noqa: PLC0415 - only this command talks to AWS

    path = args.directory / f"{args.region}.json"
    if not path.is_file():
        sys.stderr.write(
            f"no price table for {args.region} in {args.directory}; copy one to start from\n"
        )
        return 2
    table = json.loads(path.read_text())
    client = boto3.client("pricing", region_name=PRICING_REGION)
    today = datetime.now(UTC).date().isoformat()
    result = refresh(client, table, today, args.instance_type)
    for line in result.changed:
        sys.stdout.write(f"changed {line}\n")
    for line in result.kept:
        sys.stderr.write(f"kept    {line}\n")
    if args.dry_run:
        sys.stdout.write(f"dry run: {path} not written\n")
        return 0
    path.write_text(json.dumps(result.table, indent=2) + "\n")
    sys.stdout.write(
        f"wrote {path} (as of {today}; {len(result.changed)} changed, {len(result.kept)} kept)\n"
    )
    return 0


def add_parser(commands: Any) -> None:
    """Add ``prices refresh`` to the ``selfservice`` parser."""
    prices = commands.add_parser("prices", help="the price tables cost estimates use")
    sub = prices.add_subparsers(dest="prices_command", required=True)
    refresh_parser = sub.add_parser(
        "refresh", help="rewrite a region's price table from the AWS Price List API"
    )
    refresh_parser.add_argument("--region", required=True, help="region whose table to refresh")
    refresh_parser.add_argument(
        "--instance-type",
        action="append",
        default=[],
        help="also price this instance type (repeatable)",
    )
    refresh_parser.add_argument(
        "--directory", type=Path, default=PRICES_DIR, help="where the price tables are"
    )
    refresh_parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    refresh_parser.set_defaults(func=_run)
