"""The environment of the ops-API function, validated: exactly what its template sets."""

from selfservice_runtime.config import FunctionConfig


class OpsApiConfig(FunctionConfig):
    """Environment of ``OpsApiFunction`` (sam/ops-api.yaml)."""

    event_bus_name: str
    """Bus the ops-command-executed audit events are published to."""
    allow_tag_key: str
    """Only instances carrying this tag key …"""
    allow_tag_value: str
    """… with this value are eligible (also enforced by an IAM condition)."""
    ops_config_parameter: str
    """SSM parameter holding the ops configuration document (allow-list, limits)."""
