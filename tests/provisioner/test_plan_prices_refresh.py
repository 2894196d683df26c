"""``selfservice prices refresh`` against a stubbed Price List API (botocore's Stubber).

Responses have the shape ``pricing:GetProducts`` returns: ``PriceList`` is a list of JSON
strings, each a product with its attributes and its ``terms.OnDemand`` price dimensions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from provisioner.domain.plan.prices import PRICES_DIR, PriceTable
from selfservice import cli
from selfservice.develop import prices as refresher

TODAY = "2026-12-02"


def price_item(attributes: dict[str, str], *dimensions: tuple[str, str], begin: str = "0") -> str:
    """One Price List product as the API returns it (a JSON string)."""
    sku = hashlib.sha256(json.dumps([attributes, dimensions]).encode()).hexdigest()[:14].upper()
    return json.dumps(
        {
            "product": {"productFamily": "x", "attributes": attributes, "sku": sku},
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "offerTermCode": "JRTCKXETXF",
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "termAttributes": {},
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.{i}": {
                                "unit": unit,
                                "beginRange": begin,
                                "endRange": "Inf",
                                "description": f"${usd} per {unit}",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.{i}",
                                "pricePerUnit": {"USD": usd},
                            }
                            for i, (unit, usd) in enumerate(dimensions)
                        },
                    }
                }
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def small_table() -> dict[str, Any]:
    """The shipped eu-west-1 table cut down to one instance type and one volume type."""
    table: dict[str, Any] = json.loads((PRICES_DIR / "eu-west-1.json").read_text())
    table["ec2_hourly"] = {"t3.micro": table["ec2_hourly"]["t3.micro"]}
    table["ebs"]["gb_month"] = {"gp3": table["ebs"]["gb_month"]["gp3"]}
    return table


def answers() -> Iterator[tuple[str, dict[str, Any]]]:
    """The API's answer to each query of ``small_table``, in the order they are asked."""
    yield "ec2_hourly.t3.micro", {"PriceList": [], "NextToken": "page-2"}
    yield (
        "ec2_hourly.t3.micro",
        {"PriceList": [price_item({"instanceType": "t3.micro"}, ("Hrs", "0.0118000000"))]},
    )
    yield "ebs.gb_month.gp3", {"PriceList": [price_item({}, ("GB-Mo", "0.0880000000"))]}
    yield "ebs.gp3_iops_month", {"PriceList": [price_item({}, ("IOPS-Mo", "0.0055000000"))]}
    # Throughput is priced per GiB/s-month; the table keeps MiB/s-month.
    yield (
        "ebs.gp3_throughput_mibps_month",
        {"PriceList": [price_item({}, ("GiBps-mo", "45.0560000000"))]},
    )
    yield "ebs.io_iops_month", {"PriceList": []}
    # The application load balancer's hour, not its LCU-hour.
    yield (
        "alb_hourly",
        {"PriceList": [price_item({}, ("LCU-Hrs", "0.0080000000"), ("Hrs", "0.0260000000"))]},
    )
    yield (
        "nlb_hourly",
        {
            "PriceList": [
                price_item({"usagetype": "EU-LoadBalancerUsage"}, ("Hrs", "0.0252")),
                price_item({"usagetype": "EU-Other"}, ("Hrs", "0.0300")),
            ]
        },
    )
    yield "nat_gateway_hourly", {"PriceList": [price_item({}, ("Hrs", "0.0480000000"))]}
    yield (
        "public_ipv4_hourly",
        {
            "PriceList": [
                price_item({"usagetype": "EU-PublicIPv4:IdleAddress"}, ("Hrs", "0.0050000000")),
                price_item({"usagetype": "EU-PublicIPv4:InUseAddress"}, ("Hrs", "0.0050000000")),
            ]
        },
    )
    yield (
        "cloudwatch_alarm_month",
        {
            "PriceList": [
                price_item({"usagetype": "EU-CW:AlarmMonitorUsage"}, ("Alarms", "0.1000000000")),
                price_item(
                    {"usagetype": "EU-CW:HighResAlarmMonitorUsage"}, ("Alarms", "0.3000000000")
                ),
            ]
        },
    )


def pricing_client() -> Any:
    """A pricing client whose calls a Stubber answers (credentials are never sent)."""
    return boto3.client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stubbed(table: dict[str, Any]) -> tuple[Any, Stubber]:
    client = pricing_client()
    stubber = Stubber(client)
    names = [".".join(q.key) for q in refresher.queries(table)]
    asked = [name for name, _ in answers()]
    assert sorted(set(asked)) == sorted(names)  # every query is answered, in order
    for _, response in answers():
        stubber.add_response("get_products", {"FormatVersion": "aws_v1", **response})
    stubber.activate()
    return client, stubber


def test_an_instance_price_is_asked_for_linux_shared_on_demand_in_the_region() -> None:
    client = pricing_client()
    filters = {
        "regionCode": "eu-west-1",
        "locationType": "AWS Region",
        "productFamily": "Compute Instance",
        "instanceType": "t3.micro",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [price_item({}, ("Hrs", "0.0114"))]},
            {
                "ServiceCode": "AmazonEC2",
                "Filters": [
                    {"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()
                ],
                "FormatVersion": "aws_v1",
                "MaxResults": 100,
            },
        )
        (query,) = [q for q in refresher.queries(small_table()) if q.key[0] == "ec2_hourly"]
        products = list(refresher._products(client, query))
        stubber.assert_no_pending_responses()
    assert len(products) == 1


def test_refresh_updates_what_the_api_answers_and_keeps_what_it_does_not() -> None:
    table = small_table()
    client, stubber = stubbed(table)
    result = refresher.refresh(client, table, TODAY)
    stubber.assert_no_pending_responses()
    refreshed = result.table
    assert refreshed["ec2_hourly"] == {"t3.micro": "0.0118"}
    assert refreshed["alb_hourly"] == "0.026"
    assert refreshed["ebs"]["gp3_throughput_mibps_month"] == "0.044"  # 45.056 / 1024
    assert refreshed["cloudwatch_alarm_month"] == "0.1"
    assert refreshed["as_of"] == TODAY
    assert "Price List API" in refreshed["source"]
    assert result.changed == [
        "ec2_hourly.t3.micro: 0.0114 -> 0.0118",
        "alb_hourly: 0.0252 -> 0.026",
    ]
    assert result.kept == [
        "ebs.io_iops_month: the API gave no price; kept 0.072",
        "nlb_hourly: the API gave 2 different prices; kept 0.0252",
    ]
    assert refreshed["ebs"]["io_iops_month"] == table["ebs"]["io_iops_month"]
    assert PriceTable.model_validate(refreshed).as_of.isoformat() == TODAY


def test_the_command_writes_a_table_the_provisioner_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "eu-west-1.json").write_text(json.dumps(small_table()))
    client, _ = stubbed(small_table())
    made: list[tuple[str, str]] = []

    def fake_client(service: str, region_name: str) -> Any:
        made.append((service, region_name))
        return client

    monkeypatch.setattr(boto3, "client", fake_client)
    assert (
        cli.main(["prices", "refresh", "--region", "eu-west-1", "--directory", str(tmp_path)]) == 0
    )
    assert made == [("pricing", "us-east-1")]  # the API's own region, whatever is priced
    table = PriceTable.model_validate_json((tmp_path / "eu-west-1.json").read_text())
    assert str(table.ec2_hourly["t3.micro"]) == "0.0118"
    out = capsys.readouterr()
    assert "changed ec2_hourly.t3.micro: 0.0114 -> 0.0118" in out.out
    assert "kept    nlb_hourly" in out.err


def test_a_region_without_a_table_is_refused(tmp_path: Path) -> None:
    assert (
        cli.main(["prices", "refresh", "--region", "ap-south-2", "--directory", str(tmp_path)]) == 2
    )
