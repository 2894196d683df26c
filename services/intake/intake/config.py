"""Configuration of the intake functions: exactly the environment their template sets."""

from selfservice_contracts.config import FunctionConfig


class WebhookConfig(FunctionConfig):
    """Environment of ``WebhookFunction`` (sam/intake.yaml)."""

    event_bus_name: str
    """Bus the request events are published to."""
    idempotency_table_name: str
    """DynamoDB table that remembers deliveries already accepted (deduplication)."""
