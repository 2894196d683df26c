"""A function body for the role tests: who the execution environment's credentials are."""

from __future__ import annotations

from typing import Any

import boto3


def lambda_handler(event: dict[str, Any], context: Any) -> str:
    """The caller's ARN (``sts:GetCallerIdentity`` needs no permission, as in AWS)."""
    arn: str = boto3.client("sts").get_caller_identity()["Arn"]
    return arn
