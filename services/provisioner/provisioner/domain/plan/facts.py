"""What planned AWS resources expose, run and keep: read once, used by summary and policies.

This is knowledge of AWS resource types (which attribute makes an instance public, where
IMDS is configured, which types hold data), not of any product: a product built from
these types needs no code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.domain.plan.terraform_plan import PlannedResource, lookup

__all__ = [
    "STATEFUL_TYPES",
    "PublicIngress",
    "http_tokens",
    "instance_types",
    "internet_facing",
    "public_ingress",
    "public_ip",
    "tags",
]

PUBLIC_CIDRS = frozenset({"0.0.0.0/0", "::/0"})

# Deleting one of these loses data (or, for an account, everything in it).
STATEFUL_TYPES = frozenset(
    {
        "aws_ebs_volume",
        "aws_s3_bucket",
        "aws_db_instance",
        "aws_rds_cluster",
        "aws_dynamodb_table",
        "aws_efs_file_system",
        "aws_elasticache_cluster",
        "aws_elasticache_replication_group",
        "aws_docdb_cluster",
        "aws_opensearch_domain",
        "aws_organizations_account",
    }
)


@dataclass(frozen=True)
class PublicIngress:
    """Traffic the resource admits from anywhere on the internet."""

    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str

    def covers(self, port: int) -> bool:
        """Whether ``port`` (TCP) is admitted."""
        if self.protocol in ("-1", "all"):
            return True
        if self.protocol not in ("tcp", "6"):
            return False
        low = self.from_port if self.from_port is not None else 0
        high = self.to_port if self.to_port is not None else 65535
        return low <= port <= high

    def describe(self) -> str:
        """``tcp 80 from 0.0.0.0/0``."""
        if self.protocol in ("-1", "all"):
            ports = "all traffic"
        elif self.from_port == self.to_port:
            ports = f"{self.protocol} {self.from_port}"
        else:
            ports = f"{self.protocol} {self.from_port}-{self.to_port}"
        return f"{ports} from {self.cidr}"


def _truthy(value: Any) -> bool:
    # The launch template's network interface flags are strings ("true") in the provider.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _port(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def public_ingress(values: dict[str, Any], resource_type: str) -> list[PublicIngress]:
    """Ingress from 0.0.0.0/0 or ::/0 that a security group (or one of its rules) admits."""
    if resource_type == "aws_vpc_security_group_ingress_rule":
        cidrs = [values.get("cidr_ipv4"), values.get("cidr_ipv6")]
        return [
            PublicIngress(
                str(values.get("ip_protocol")),
                _port(values.get("from_port")),
                _port(values.get("to_port")),
                cidr,
            )
            for cidr in cidrs
            if cidr in PUBLIC_CIDRS
        ]
    if resource_type == "aws_security_group_rule" and values.get("type") != "ingress":
        return []
    if resource_type == "aws_security_group":
        blocks = values.get("ingress") or []
    elif resource_type == "aws_security_group_rule":
        blocks = [values]
    else:
        return []
    found = []
    for block in blocks:
        for cidr in [*(block.get("cidr_blocks") or []), *(block.get("ipv6_cidr_blocks") or [])]:
            if cidr in PUBLIC_CIDRS:
                found.append(
                    PublicIngress(
                        str(block.get("protocol")),
                        _port(block.get("from_port")),
                        _port(block.get("to_port")),
                        cidr,
                    )
                )
    return found


def public_ip(values: dict[str, Any], resource_type: str) -> str | None:
    """Why instances of the resource get a public IP address, if they do."""
    if resource_type == "aws_instance" and _truthy(values.get("associate_public_ip_address")):
        return "associate_public_ip_address = true"
    if resource_type == "aws_launch_template" and any(
        _truthy(v) for v in lookup(values, "network_interfaces.associate_public_ip_address")
    ):
        return "network_interfaces.associate_public_ip_address = true"
    if resource_type == "aws_subnet" and _truthy(values.get("map_public_ip_on_launch")):
        return "map_public_ip_on_launch = true"
    return None


def internet_facing(values: dict[str, Any], resource_type: str) -> bool:
    """Whether a load balancer is reachable from the internet."""
    return resource_type in ("aws_lb", "aws_alb", "aws_elb") and values.get("internal") is False


def http_tokens(values: dict[str, Any], resource_type: str) -> str | None:
    """The IMDS token setting of something that launches instances (``None``: not one).

    No ``metadata_options`` block means AWS's default, which still allows IMDSv1.
    """
    if resource_type not in ("aws_instance", "aws_launch_template"):
        return None
    tokens = [t for t in lookup(values, "metadata_options.http_tokens") if t]
    return str(tokens[0]) if tokens else "optional"


def instance_types(values: dict[str, Any], resource_type: str) -> list[str]:
    """Instance types the resource runs or launches."""
    if resource_type in ("aws_instance", "aws_launch_template", "aws_launch_configuration"):
        value = values.get("instance_type")
        return [value] if isinstance(value, str) and value else []
    return []


def tags(resource: PlannedResource) -> dict[str, str] | None:
    """Tags the resource will carry (``tags_all``: default tags included); ``None``: untaggable.

    Tags known only after the apply count as present: they come from the configuration.
    """
    after = resource.after or {}
    if "tags_all" not in after and "tags" not in after:
        return None
    if resource.unknown("tags_all"):
        return None
    value = after.get("tags_all") if "tags_all" in after else after.get("tags")
    return {str(k): str(v) for k, v in (value or {}).items()}
