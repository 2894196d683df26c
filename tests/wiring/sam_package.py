"""What ``sam package`` makes of a template, for tests that transform or lint it offline."""

from __future__ import annotations

import copy
from typing import Any


def packaged(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as ``sam package`` leaves it: local CodeUri/ContentUri/Location replaced by
    S3 locations."""
    result = copy.deepcopy(body)
    for logical_id, resource in result.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://artifacts/{logical_id}.zip"
        if resource.get("Type") == "AWS::Serverless::Application":
            properties["Location"] = (
                f"https://s3.us-east-1.amazonaws.com/artifacts/{logical_id}.template"
            )
    return result
