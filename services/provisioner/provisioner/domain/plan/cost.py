"""A monthly on-demand cost estimate of a plan: what runs before it and after it.

Priced by resource type, from the region's price table: EC2 instances (alone or as an
Auto Scaling group's capacity on its launch template), their EBS volumes and standalone
ones (gp3 performance above the baseline included), load balancers (hourly; LCUs are
usage and left out), NAT gateways (hourly; data processed left out), public IPv4
addresses (Elastic IPs) and CloudWatch alarms. Usage-based charges are named in
``not_priced``; every other resource type has no charge of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from provisioner.domain.plan.prices import PriceTable
from provisioner.domain.plan.terraform_plan import PlannedResource, TerraformPlan, lookup
from selfservice_contracts.plan import CostEstimate, CostLine

__all__ = ["estimate"]

_CENT = Decimal("0.01")
GP3_BASELINE_IOPS = 3000
GP3_BASELINE_THROUGHPUT = 125

# Charged by use, which a plan cannot know: said on the ticket rather than guessed.
_USAGE_NOTES = {
    "aws_lb": "load balancer capacity units (LCU) by traffic",
    "aws_nat_gateway": "NAT gateway data processed (per GB)",
    "aws_cloudwatch_log_group": "CloudWatch Logs ingestion and storage",
    "aws_flow_log": "VPC flow log delivery",
    "aws_s3_bucket": "S3 storage and requests",
    "aws_organizations_account": "whatever runs in the new account (billed to it)",
}


@dataclass
class _Priced:
    description: str
    monthly: Decimal


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


class _Pricer:
    """Prices one side (before or after) of the plan."""

    def __init__(self, plan: TerraformPlan, prices: PriceTable, side: str) -> None:
        self.plan, self.prices, self.side = plan, prices, side
        self.hours = Decimal(prices.hours_per_month)
        self.unpriced: list[str] = []

    def values(self, resource: PlannedResource) -> dict[str, Any] | None:
        if self.side == "before":
            return resource.before if resource.exists_before else None
        return resource.after if resource.exists_after else None

    def instance_hours(self, instance_type: Any, count: Decimal, address: str) -> _Priced | None:
        hourly = self.prices.ec2_hourly.get(str(instance_type))
        if hourly is None:
            self.unpriced.append(
                f"{address}: instance type {instance_type} has no price in the "
                f"{self.prices.region} table"
            )
            return None
        return _Priced(f"{count} x {instance_type} ({self.hours} h)", count * hourly * self.hours)

    def volume(self, block: dict[str, Any], count: Decimal, address: str) -> _Priced | None:
        size = _number(block.get("volume_size") or block.get("size"))
        kind = str(block.get("volume_type") or block.get("type") or "gp3")
        if size is None:
            self.unpriced.append(f"{address}: volume size known after apply (from the image)")
            return None
        per_gb = self.prices.ebs.gb_month.get(kind)
        if per_gb is None:
            self.unpriced.append(f"{address}: volume type {kind} has no price")
            return None
        monthly = size * per_gb
        extras = ""
        iops, throughput = _number(block.get("iops")), _number(block.get("throughput"))
        if kind == "gp3":
            if iops is not None and iops > GP3_BASELINE_IOPS:
                monthly += (iops - GP3_BASELINE_IOPS) * self.prices.ebs.gp3_iops_month
                extras += f", {iops} IOPS"
            if throughput is not None and throughput > GP3_BASELINE_THROUGHPUT:
                monthly += (
                    throughput - GP3_BASELINE_THROUGHPUT
                ) * self.prices.ebs.gp3_throughput_mibps_month
                extras += f", {throughput} MiB/s"
        elif kind in ("io1", "io2") and iops is not None:
            monthly += iops * self.prices.ebs.io_iops_month
            extras += f", {iops} IOPS"
        return _Priced(f"{count} x {size} GB {kind}{extras}", count * monthly)

    def launch_template_of(self, group: PlannedResource, values: dict[str, Any]) -> Any:
        """The values of the launch template the group launches from, on this side."""
        templates = [r for r in self.plan.resources if r.type == "aws_launch_template"]
        if self.side == "after":
            for address in group.refers_to("launch_template.id"):
                found = self.plan.by_address(address)
                if found is not None and found.type == "aws_launch_template":
                    return self.values(found)
        ids = {v for v in lookup(values, "launch_template.id") if v}
        names = {v for v in lookup(values, "launch_template.name") if v}
        for template in templates:
            side = self.values(template) or {}
            if side.get("id") in ids or side.get("name") in names:
                return side
        return None

    def group(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        capacity = _number(values.get("desired_capacity"))
        if capacity is None:
            capacity = _number(values.get("min_size")) or Decimal(0)
        template = self.launch_template_of(resource, values)
        if template is None:
            self.unpriced.append(f"{resource.address}: launch template not found in the plan")
            return []
        priced = []
        if (
            hours := self.instance_hours(template.get("instance_type"), capacity, resource.address)
        ) is not None:
            priced.append(hours)
        for block in lookup(template, "block_device_mappings.ebs"):
            if (volume := self.volume(block, capacity, resource.address)) is not None:
                priced.append(volume)
        return priced

    def instance(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        priced = []
        one = Decimal(1)
        if (
            hours := self.instance_hours(values.get("instance_type"), one, resource.address)
        ) is not None:
            priced.append(hours)
        for path in ("root_block_device", "ebs_block_device"):
            for block in lookup(values, path):
                if (volume := self.volume(block, one, resource.address)) is not None:
                    priced.append(volume)
        return priced

    def ebs_volume(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        volume = self.volume(values, Decimal(1), resource.address)
        return [volume] if volume is not None else []

    def load_balancer(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        lb_type = values.get("load_balancer_type") or "application"
        hourly = {"application": self.prices.alb_hourly, "network": self.prices.nlb_hourly}.get(
            lb_type
        )
        if hourly is None:
            self.unpriced.append(f"{resource.address}: {lb_type} load balancers are not priced")
            return []
        return [_Priced(f"{lb_type} load balancer ({self.hours} h)", hourly * self.hours)]

    def hourly(self, label: str, hourly: Decimal) -> list[_Priced]:
        return [_Priced(f"{label} ({self.hours} h)", hourly * self.hours)]

    def nat_gateway(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        return self.hourly("NAT gateway", self.prices.nat_gateway_hourly)

    def elastic_ip(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        return self.hourly("public IPv4 address", self.prices.public_ipv4_hourly)

    def alarm(self, resource: PlannedResource, values: dict[str, Any]) -> list[_Priced]:
        return [_Priced("metric alarm", self.prices.cloudwatch_alarm_month)]

    def price(self, resource: PlannedResource) -> list[_Priced]:
        values = self.values(resource)
        pricer = _PRICERS.get(resource.type)
        if values is None or pricer is None:
            return []
        return pricer(self, resource, values)


_PRICERS: dict[str, Callable[[_Pricer, PlannedResource, dict[str, Any]], list[_Priced]]] = {
    "aws_instance": _Pricer.instance,
    "aws_autoscaling_group": _Pricer.group,
    "aws_ebs_volume": _Pricer.ebs_volume,
    "aws_lb": _Pricer.load_balancer,
    "aws_alb": _Pricer.load_balancer,
    "aws_nat_gateway": _Pricer.nat_gateway,
    "aws_eip": _Pricer.elastic_ip,
    "aws_cloudwatch_metric_alarm": _Pricer.alarm,
}
"""Resource types with a charge of their own; every other type has none."""


def _describe(priced: list[_Priced]) -> str:
    return " + ".join(p.description for p in priced)


def estimate(plan: TerraformPlan, prices: PriceTable) -> CostEstimate:
    """The monthly cost of the plan's resources before and after the apply."""
    before, after = _Pricer(plan, prices, "before"), _Pricer(plan, prices, "after")
    lines = []
    for resource in plan.resources:
        was, will = before.price(resource), after.price(resource)
        if not was and not will:
            continue
        lines.append(
            CostLine(
                address=resource.address,
                type=resource.type,
                description=_describe(will) or f"removed (was {_describe(was)})",
                monthly_before=_cents(sum((p.monthly for p in was), Decimal(0))),
                monthly_after=_cents(sum((p.monthly for p in will), Decimal(0))),
            )
        )
    total_before = sum((line.monthly_before for line in lines), Decimal("0.00"))
    total_after = sum((line.monthly_after for line in lines), Decimal("0.00"))
    present = {r.type for r in plan.resources if r.exists_before or r.exists_after}
    notes = sorted(set(before.unpriced + after.unpriced)) + [
        f"not included: {note}" for kind, note in sorted(_USAGE_NOTES.items()) if kind in present
    ]
    return CostEstimate(
        region=prices.region,
        currency=prices.currency,
        prices_as_of=prices.as_of.isoformat(),
        prices_source=prices.source,
        monthly_before=total_before,
        monthly_after=total_after,
        monthly_delta=total_after - total_before,
        lines=lines,
        not_priced=notes,
    )
